"""Decoupling systems with Amazon SQS, on AWS CDK in Python: one folder per component, each with its constructs and
the runtime they deploy. Importing a package of this namespace imports nothing heavy: no ``__init__.py`` here loads
the CDK, boto3, ffmpeg or Powertools."""
