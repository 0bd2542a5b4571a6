"""``python -m dfkd.cli``."""

import sys

from . import main

sys.exit(main())
