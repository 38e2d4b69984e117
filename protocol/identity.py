"""A neighborhood's signing identity with its pre-committed next key (docs/PROTOCOL.md §5).

Pure: seeds in, keys out. Where the seeds are kept (a key file readable by the owner only)
is the node's business.
"""

from __future__ import annotations

import functools
import hashlib

import msgspec
import nacl.signing

from coopnet.protocol.envelope import key_digest
from coopnet.protocol.kinds import NodeFounded, NodeKeyRotated


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    """The seed that signs now and the seed committed to sign after the next rotation."""

    author: str
    seed: bytes
    next_seed: bytes

    @classmethod
    def generate(cls, author: str) -> Identity:
        return cls(
            author=author,
            seed=bytes(nacl.signing.SigningKey.generate()),
            next_seed=bytes(nacl.signing.SigningKey.generate()),
        )

    @classmethod
    def from_passphrase(cls, author: str, passphrase: str) -> Identity:
        """A deterministic identity for tests, vectors and demos. Never for real nodes."""
        seed = hashlib.sha256(f"coopnet-test-seed/{author}/{passphrase}/0".encode()).digest()
        nxt = hashlib.sha256(f"coopnet-test-seed/{author}/{passphrase}/1".encode()).digest()
        return cls(author=author, seed=seed, next_seed=nxt)

    @property
    def signing_key(self) -> nacl.signing.SigningKey:
        return _signing_key(self.seed)

    @property
    def public_key(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    @property
    def next_public_key(self) -> bytes:
        return bytes(nacl.signing.SigningKey(self.next_seed).verify_key)

    def founding_body(
        self, display_name: str, area: str, ticket: bytes | None = None
    ) -> NodeFounded:
        """The `node.founded` of this identity; `ticket` is the operator's admission ticket
        for a neighborhood that is not a founder (§16.6)."""
        return NodeFounded(
            display_name=display_name,
            area=area,
            key=self.public_key,
            next_key_digest=key_digest(self.next_public_key),
            ticket=ticket,
        )

    def rotated(self, following_seed: bytes | None = None) -> tuple[Identity, NodeKeyRotated]:
        """The identity after a rotation and the body announcing it (to be sealed by it)."""
        following = following_seed or bytes(nacl.signing.SigningKey.generate())
        after = Identity(author=self.author, seed=self.next_seed, next_seed=following)
        body = NodeKeyRotated(
            key=after.public_key, next_key_digest=key_digest(after.next_public_key)
        )
        return after, body


@functools.lru_cache(maxsize=256)
def _signing_key(seed: bytes) -> nacl.signing.SigningKey:
    """Deriving a key pair from its seed is a scalar multiplication, about as costly as a
    signature: a node signing every post would pay it twice per event without this cache."""
    return nacl.signing.SigningKey(seed)
