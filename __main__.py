from __future__ import annotations

import sys

from coopnet.deploy.cli import main

sys.exit(main())
