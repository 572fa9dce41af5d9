"""``python -m mobilevos.cli`` (torchrun's way to start the command line)."""

import sys

from mobilevos.cli import main

sys.exit(main())
