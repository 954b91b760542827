"""``python -m demo``: see demo/cli.py (arguments) and demo/run.py (the steps)."""

import sys

from demo.cli import main

sys.exit(main())
