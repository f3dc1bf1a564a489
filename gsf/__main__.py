"""``python -m gsf``: the ``gsf`` command (:mod:`gsf.cli`)."""

import sys

from gsf.cli import main

sys.exit(main())
