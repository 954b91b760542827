"""The local cloud: one harness for the demo, the tests and the benchmarks. No AWS account, no Docker, no CDK import.

- :mod:`tools.localcloud.server`: moto server on a free localhost port (with the work-arounds below), dummy credentials,
  boto3 clients for it.
- :mod:`tools.localcloud.moto_compat`: narrow patches for moto bugs that stop the real templates and events.
- :mod:`tools.localcloud.cdk`: the pinned CDK CLI pointed at the server, and what it deployed.
- :mod:`tools.localcloud.poller`: Lambda's SQS event source mapping, played locally (moto cannot run Lambda).
- :mod:`tools.localcloud.lambda_local` and :mod:`tools.localcloud.worker_process`: the real handler in this process,
the real
  worker as a subprocess.
- :mod:`tools.localcloud.paths`: where the repository is.

Importing this package imports nothing heavy: each module imports moto, boto3 or the consumers itself.
"""
