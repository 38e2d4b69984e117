from __future__ import annotations

import sys

from coopnet.deploy.cli import main

# Guarded: the worker processes that verify large batches (node/engine/verify.py) import the main
# module of the process that started them, and must not run the command line again.
if __name__ == "__main__":
    sys.exit(main())
