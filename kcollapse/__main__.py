"""``python -m kcollapse``: same as the ``kcollapse`` console script."""

import sys

from .cli import main

sys.exit(main())
