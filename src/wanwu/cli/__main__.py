"""``python -m wanwu.cli ...``: the ``wanwu`` command, for tests and scripts that run it with a
given interpreter."""

import sys

from . import main

sys.exit(main())
