"""The project's tools, not installed by ``pip install .``: the local cloud, the demo, the scaling simulator and the
cost model."""
