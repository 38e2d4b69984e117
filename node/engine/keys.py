"""Rotating a running node's key (docs/PROTOCOL.md §5), crash-safe on disk.

The rotation event must be signed by the committed next key, and from then on the old key
signs nothing. On disk: the seed that will follow is written first (`node.following.key`),
then the rotation is signed and committed to the log, then `node.key` and `node.next.key`
are replaced. A crash anywhere in between is repaired at the next start by
`reconcile_keys`, which picks, among the seeds on disk, the ones the node's own log says
are current and next: the log decides, never the files.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import nacl.signing

from coopnet.node.engine.config import (
    ConfigError,
    decode_nkey_seed,
    encode_nkey_seed,
    write_identity,
    write_secret,
)
from coopnet.protocol import Identity, KeyState
from coopnet.protocol.kinds import NodeKeyRotated

log = logging.getLogger("coopnet.keys")

FOLLOWING = "node.following.key"


def _public(seed: bytes) -> bytes:
    return bytes(nacl.signing.SigningKey(seed).verify_key)


def prepare_rotation(data: Path, identity: Identity) -> tuple[Identity, NodeKeyRotated]:
    """Step 1: the identity after the rotation and its body; the following seed is on disk
    before anything is signed with the next key."""
    following = bytes(nacl.signing.SigningKey.generate())
    write_secret(data / FOLLOWING, encode_nkey_seed(following))
    return identity.rotated(following_seed=following)


def finish_rotation(data: Path, after: Identity) -> None:
    """Step 3, once the rotation is in the log: the key files follow it."""
    write_identity(data, after)
    (data / FOLLOWING).unlink(missing_ok=True)


def reconcile_keys(data: Path, identity: Identity, keys: KeyState) -> Identity:
    """The identity the own log says this node signs with, repairing the key files if a
    rotation was interrupted. Raises ConfigError when no seed on disk fits the log."""
    seeds = [identity.seed, identity.next_seed]
    following = data / FOLLOWING
    if following.exists():
        seeds.append(decode_nkey_seed(following.read_text(encoding="ascii")))
    current = next((s for s in seeds if _public(s) == keys.current_key), None)
    nxt = next(
        (s for s in seeds if hashlib.sha256(_public(s)).digest() == keys.next_key_digest), None
    )
    if current is None or nxt is None:
        raise ConfigError(
            f"{data}: the key files do not hold the key this node's log signs with now "
            f"({keys.current_key.hex()[:16]}…): restore node.key and node.next.key"
        )
    fixed = Identity(author=identity.author, seed=current, next_seed=nxt)
    if fixed != identity:
        log.warning("%s: finishing an interrupted key rotation on disk", identity.author)
        finish_rotation(data, fixed)
    elif following.exists():  # the rotation was never signed: forget its following seed
        following.unlink()
    return fixed
