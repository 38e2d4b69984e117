"""Refusals a node makes before it signs anything: local decisions with their own codes."""

from __future__ import annotations


class Refused(Exception):
    """The node will not sign this: a local decision, before any event exists."""

    def __init__(
        self, code: str, message: str, status: int = 409, *, retry_after_s: int = 0
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.retry_after_s = retry_after_s  # > 0: sent as the answer's Retry-After


__all__ = ["Refused"]
