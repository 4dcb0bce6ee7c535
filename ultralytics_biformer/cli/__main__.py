"""``python -m ultralytics_biformer.cli``: the same as the ``ultralytics-biformer`` command."""

import sys

from . import main

sys.exit(main())
