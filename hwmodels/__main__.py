"""``python -m hwmodels``: the engine's command line (train, profiles) without a server."""

import sys

from hwmodels.cli import main

sys.exit(main())
