"""The key files' format (`node.key`, `node.next.key`) as docs/OPERATIONS.md states it."""

from __future__ import annotations

import base64

import nacl.signing
import pytest

from coopnet.node.engine.config import (
    ConfigError,
    decode_nkey_seed,
    encode_nkey_seed,
    nkey_public,
)

# The example of docs/OPERATIONS.md, "Key files".
SEED = bytes(range(32))
SEED_TEXT = "SUAAAAICAMCAKBQHBAEQUCYMBUHA6EARCIJRIFIWC4MBSGQ3DQOR4H776Y"
PUBLIC_KEY = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
NATS_USER = "UAB2CB576PHBBPQ5ODORRZ2LYCMWPZGWGCN2KDK7DXOIMZASKUY3RLKK"


def crc16_xmodem(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def documented_seed_text(seed: bytes) -> str:
    """The encoding written out from the documentation, without the nkeys library."""
    raw = bytes([0x95, 0x00]) + seed
    raw += crc16_xmodem(raw).to_bytes(2, "little")
    return base64.b32encode(raw).decode("ascii").rstrip("=")


def documented_nats_user(public_key: bytes) -> str:
    raw = bytes([0xA0]) + public_key
    raw += crc16_xmodem(raw).to_bytes(2, "little")
    return base64.b32encode(raw).decode("ascii").rstrip("=")


def test_the_documented_example() -> None:
    assert encode_nkey_seed(SEED) == SEED_TEXT == documented_seed_text(SEED)
    assert len(SEED_TEXT) == 58
    public = bytes(nacl.signing.SigningKey(SEED).verify_key)
    assert public.hex() == PUBLIC_KEY
    assert nkey_public(SEED) == NATS_USER == documented_nats_user(public)
    assert decode_nkey_seed(SEED_TEXT + "\n") == SEED  # as written to the file


@pytest.mark.parametrize("seed", [b"\x00" * 32, b"\xff" * 32, bytes(range(100, 132))])
def test_documented_encoding_is_the_written_one(seed: bytes) -> None:
    assert encode_nkey_seed(seed) == documented_seed_text(seed)
    assert decode_nkey_seed(documented_seed_text(seed)) == seed


def test_a_damaged_or_foreign_seed_is_refused() -> None:
    flipped = SEED_TEXT[:20] + ("B" if SEED_TEXT[20] != "B" else "C") + SEED_TEXT[21:]
    account_seed = base64.b32encode(  # an NKey *account* seed (SA…) of the same key
        bytes([0x90, 0x00]) + SEED + b"\x00\x00"
    ).decode()
    for text in (flipped, SEED_TEXT[:-1], SEED_TEXT + "AAAA", "", "not a seed", account_seed):
        with pytest.raises(ConfigError):
            decode_nkey_seed(text)
