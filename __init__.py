"""coopnet: a federation fabric for neighborhood community co-operatives."""

from __future__ import annotations

__version__ = "0.1.0"
