"""``python -m rolewarden.cli``: the same as the ``rolewarden`` console script."""

import sys

from rolewarden.cli.main import main

sys.exit(main())
