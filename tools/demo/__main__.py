"""``python -m tools.demo``: see tools/demo/cli.py (arguments) and tools/demo/run.py (the steps)."""

import sys

from tools.demo.cli import main

sys.exit(main())
