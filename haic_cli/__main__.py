"""`python -m haic_cli ...` is `haic ...`."""

import sys

from haic_cli.main import main

sys.exit(main())
