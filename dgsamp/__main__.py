"""``python -m dgsamp ...`` is the ``dgsamp`` command."""

import sys

from dgsamp.cli import main

sys.exit(main())
