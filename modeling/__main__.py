"""``python -m modeling``: see modeling.cli."""

import sys

from modeling.cli import main

sys.exit(main())
