import sys

from sqs_decoupling.producer.cli import main

sys.exit(main())
