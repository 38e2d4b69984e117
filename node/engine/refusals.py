"""Refusals a node makes before it signs anything: local decisions with their own codes."""

from __future__ import annotations


class Refused(Exception):
    """The node will not sign this: a local decision, before any event exists."""

    def __init__(self, code: str, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


__all__ = ["Refused"]
