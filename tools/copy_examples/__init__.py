"""The smallest app that uses each component of tools/copying.py, as a user writes it in a `cdk init` app after a
copy (docs/copy-a-component.md shows them; tests/unit/stacks/test_copy_a_component.py synthesizes each in a copy)."""
