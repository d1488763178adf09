"""Allow ``python -m newsletter``."""

import sys

from newsletter.cli import main

sys.exit(main())
