"""``python -m demo``: see demo/run.py."""

import sys

from demo.run import main

sys.exit(main())
