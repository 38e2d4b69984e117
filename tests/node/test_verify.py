"""Unsealing over the cores: worker processes for large batches, threads for small ones.

The process path must give, event for event, what `unseal` gives in this process: the same
Envelope for an accepted event, the same refusal code for a bad one.
"""

from __future__ import annotations

import hashlib
import random

import anyio
import msgspec
import pytest

from coopnet.node.engine.verify import PROCESS_MIN, Verifier, unseal_chunk
from coopnet.protocol import Envelope, InvalidEvent, seal
from coopnet.protocol.envelope import encode_wire
from tests.node.test_chains import NET, OAK, history

OTHER_NET = hashlib.sha256(b"another federation").digest()[:16]


def wires(n: int) -> list[bytes]:
    return [e.wire for e in history(OAK, n)]


def spoiled(good: list[bytes], seed: int) -> list[bytes]:
    """Good events with every kind of damage mixed in at random places."""
    rng = random.Random(seed)
    header, sig, body = msgspec.msgpack.decode(good[3], type=tuple[bytes, bytes, bytes])
    foreign = seal(
        signing_key=OAK.signing_key, net=OTHER_NET, author="oakley", seq=1, prev=None,
        at=1_800_000_000_000, body=OAK.founding_body("Oak", "C1"),
    )  # fmt: skip
    bad = [
        encode_wire(header, sig, msgspec.msgpack.encode({"text": "changed"})),  # body hash
        encode_wire(header, bytes(64), body),  # signature
        foreign,  # wrong network
        b"\x93\xc4\x00",  # malformed
        b"\x00" * 70_000,  # too large
        good[5][:-1] + bytes([good[5][-1] ^ 1]),  # one flipped bit
    ]
    out = list(good)
    for _ in range(40):
        out.insert(rng.randrange(len(out)), rng.choice(bad))
    return out


def outcome(item: Envelope | InvalidEvent) -> Envelope | str:
    return item.code if isinstance(item, InvalidEvent) else item


@pytest.mark.parametrize("seed", [1, 2])
async def test_worker_processes_give_what_unseal_gives(seed: int) -> None:
    batch = spoiled(wires(PROCESS_MIN + 20), seed)
    verifier = Verifier(NET, processes=True)
    got = await verifier.unseal_many(batch)
    assert verifier.in_processes == len(batch)
    assert [outcome(r) for r in got] == [outcome(r) for r in unseal_chunk(batch, NET)]
    codes = {r.code for r in got if isinstance(r, InvalidEvent)}
    must = {"body_hash_mismatch", "bad_signature", "wrong_network", "malformed", "too_large"}
    assert must <= codes <= must | {"non_canonical"}  # a flipped bit may land anywhere
    assert sum(isinstance(r, Envelope) for r in got) == PROCESS_MIN + 20


async def test_small_batches_stay_in_threads() -> None:
    verifier = Verifier(NET, processes=True)
    batch = wires(PROCESS_MIN - 1)
    got = await verifier.unseal_many(batch)
    assert verifier.in_processes == 0
    assert [e.seq for e in got if isinstance(e, Envelope)] == list(range(1, PROCESS_MIN))


async def test_a_broken_pool_falls_back_to_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake: a worker process that fails to start cannot be provoked portably, so
    `anyio.to_process.run_sync` is replaced by one that raises what anyio raises then."""

    async def broken(*args: object, **kwargs: object) -> object:
        raise anyio.BrokenWorkerProcess("Error during worker process initialization")

    monkeypatch.setattr(anyio.to_process, "run_sync", broken)
    verifier = Verifier(NET, processes=True)
    batch = wires(PROCESS_MIN)
    got = await verifier.unseal_many(batch)
    assert all(isinstance(e, Envelope) for e in got)
    assert (verifier.use_processes, verifier.in_processes) == (False, 0)
