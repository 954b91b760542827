import sys

from sqs_decoupling.redrive.cli import main

sys.exit(main())
