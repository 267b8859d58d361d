"""``python -m agrivision`` runs the CLI."""

import sys

from agrivision.cli import main

sys.exit(main())
