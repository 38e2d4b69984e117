"""Passwords: hashed with argon2id by argon2-cffi, off the event loop, a few at a time.

A well-kept library rather than our own: argon2-cffi wraps the reference implementation,
encodes parameters and salt in the hash (so they can be raised later: `needs_rehash`) and
compares in constant time. Its defaults (RFC 9106's second recommended option: 64 MiB,
3 passes, 4 lanes) cost about 0.1 s on one core here; `HASHING_AT_ONCE` bounds the memory
a burst of sign-ins can take (docs/APP.md).
"""

from __future__ import annotations

import functools

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from coopnet.node.engine.refusals import Refused

MIN_PASSWORD = 10  # characters: NIST SP 800-63B's floor is 8; a co-op's node holds its money
MAX_PASSWORD = 1024  # characters: beyond this, hashing is a way to make the node work
HASHING_AT_ONCE = 2  # each hash takes 64 MiB for ~0.1 s

_hasher = PasswordHasher()
_limiter = anyio.CapacityLimiter(HASHING_AT_ONCE)


@functools.cache
def _decoy() -> str:
    """What an unknown name is checked against, so it costs what a known one does (made
    on first use: importing the node must not take 64 MiB and 0.1 s)."""
    return _hasher.hash("no account has this password, it only takes the same time")


def check_strength(password: str) -> None:
    """Raise Refused(`weak_password`, 400) for a password shorter than `MIN_PASSWORD` or
    longer than `MAX_PASSWORD` characters."""
    if len(password) < MIN_PASSWORD:
        raise Refused("weak_password", f"a password has at least {MIN_PASSWORD} characters", 400)
    if len(password) > MAX_PASSWORD:
        raise Refused("weak_password", f"a password has at most {MAX_PASSWORD} characters", 400)


async def hash_password(password: str) -> str:
    """The argon2id hash of `password` (PHC string: `$argon2id$v=19$m=…`)."""
    return await anyio.to_thread.run_sync(_hasher.hash, password, limiter=_limiter)


async def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches the `stored` hash; None (no such account) checks a decoy
    and answers False, in the same time. Never raises for a wrong or malformed password."""
    if len(password) > MAX_PASSWORD:
        return False

    def verify() -> bool:
        try:
            return _hasher.verify(stored or _decoy(), password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await anyio.to_thread.run_sync(verify, limiter=_limiter)


__all__ = ["MAX_PASSWORD", "MIN_PASSWORD", "check_strength", "hash_password", "verify_password"]
