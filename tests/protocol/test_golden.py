"""Golden bytes: one event per kind, pinned. If this fails, the wire format changed.

The wire format is frozen (docs/PROTOCOL.md): never update these strings to make a test
pass. A new kind adds a golden event here.
"""

from __future__ import annotations

import hashlib

import pytest

from coopnet.protocol import Body, Identity, NotePosted, seal, unseal

NET = hashlib.sha256(b"golden").digest()[:16]
T0 = 1_767_225_600_000

GOLDEN = {
    "node.founded": (
        "93c4779901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420d8b1b7f9ab074136938e5002"
        "89e0ab6d543e2c4cb80d7b85ae0d16dcd89858f101c0cf0000019b76daa800ac6e6f64652e666f756e646564"
        "c420efa28b0ab89da41f6c7092d1f86e881d316103ecb2a6cc0749593c7ff72f627ac4400eeb26b33f3d2816"
        "3c34422d2b484671ca7817a341ed528b4db057bc3dfed08d9f16fed21a2777eed0bfc158c0dc51a2cc22aa38"
        "17754950da14349683506404c47584ac646973706c61795f6e616d65a64f616b6c6579a461726561a24e31a3"
        "6b6579c420d8b1b7f9ab074136938e500289e0ab6d543e2c4cb80d7b85ae0d16dcd89858f1af6e6578745f6b"
        "65795f646967657374c4207d8bcb56383e053dc357dbbcbc1b6d958e111ccfb6cd0e4af12970a3d3841809"
    ),
    "note.posted": (
        "93c4979901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420d8b1b7f9ab074136938e5002"
        "89e0ab6d543e2c4cb80d7b85ae0d16dcd89858f102c420e029a0ce38a18cfa65295fd6938ea714e93cddae52"
        "e42e810d38ee53b9bfb5becf0000019b76daa801ab6e6f74652e706f73746564c420cd2797bed8cce446e8bc"
        "6927378a474e7eff9adcc188e3cd0504cb41c30e577ac4409cf77885320819b8e25d271a5f16d67b4da88848"
        "6b7be324c577057959e1363334926abbd75bc9e62b1844c7793457ecae8292606a8b0747a7a25ebfb9b6990f"
        "c41081a474657874a942726f7420f09f8d9e"
    ),
    "node.key_rotated": (
        "93c49c9901c410dd56de4137951d9c92681b03416ec15fa66f616b6c6579c420fabe81a3cf43d7057e980e09"
        "9265a55f538aa747f7eca53d3ff1bae8ca2d921403c420b8846fb78a986677e38faa14ff1c5d1c353e68f14c"
        "faf34f09b10c2915ab1f36cf0000019b76daa802b06e6f64652e6b65795f726f7461746564c420d0f8564a82"
        "30b64dea2014dca137e4f129c7c551fa15712cd78d29e814193738c44069e36244a1ddeb3bf10f4a0913cb21"
        "006f043d631ac371e37352fb8ad124fc733aba7f742e9b8a0993bc9929b8c7dfc96d43d0c7a1dfe85a69b370"
        "9fcaeb8f06c45982a36b6579c420fabe81a3cf43d7057e980e099265a55f538aa747f7eca53d3ff1bae8ca2d"
        "9214af6e6578745f6b65795f646967657374c4200a1f0cb40643d2176624db815ee3e8541cc7f6ff02a3b4fe"
        "c2400fd1b3a8ac15"
    ),
}


def _history() -> dict[str, bytes]:
    oak = Identity.from_passphrase("oakley", "golden")
    rotated, rotation = oak.rotated(following_seed=hashlib.sha256(b"third").digest())
    steps: list[tuple[Identity, Body]] = [
        (oak, oak.founding_body("Oakley", "N1")),
        (oak, NotePosted(text="Brot 🍞")),
        (rotated, rotation),
    ]
    out: dict[str, bytes] = {}
    prev: bytes | None = None
    for seq, (signer, body) in enumerate(steps, start=1):
        wire = seal(
            signing_key=signer.signing_key,
            net=NET,
            author="oakley",
            seq=seq,
            prev=prev,
            at=T0 + seq - 1,
            body=body,
        )
        prev = unseal(wire, net=NET).id
        out[body.kind] = wire
    return out


@pytest.mark.parametrize("kind", sorted(GOLDEN))
def test_sealing_gives_the_golden_bytes(kind: str) -> None:
    assert _history()[kind].hex() == GOLDEN[kind]


@pytest.mark.parametrize("kind", sorted(GOLDEN))
def test_golden_bytes_unseal(kind: str) -> None:
    env = unseal(bytes.fromhex(GOLDEN[kind]), net=NET)
    assert env.kind == kind
    assert env.author == "oakley"


def test_every_registered_kind_has_a_golden_event() -> None:
    from coopnet.protocol import KINDS

    assert set(KINDS) == set(GOLDEN)
