"""``python -m moola.cli``: what a pod and the local runner run."""

import sys

from moola.cli.main import main

sys.exit(main())
