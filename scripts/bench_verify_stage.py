"""The verification stage alone, two ways (BENCHMARKS.md, "What is next"): `unseal` in two
worker threads, as `Chains` does, against the bare Ed25519 verify in a process pool.

    python scripts/bench_verify_stage.py
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import anyio
import anyio.to_process
import anyio.to_thread
import msgspec
import nacl.bindings

from coopnet.deploy.bench import NET, presealed
from coopnet.node.engine.verify import unseal_chunk
from coopnet.protocol.envelope import SIGNING_CONTEXT

_dec = msgspec.msgpack.Decoder(tuple[bytes, bytes, bytes])
_hdr = msgspec.msgpack.Decoder()


def verify_chunk(wires: Sequence[bytes]) -> list[bool]:
    out: list[bool] = []
    for w in wires:
        try:
            h, s, _body = _dec.decode(w)
            key = _hdr.decode(h)[3]
            nacl.bindings.crypto_sign_open(s + SIGNING_CONTEXT + h, key)
            out.append(True)
        except Exception:
            out.append(False)
    return out


async def _in_thread(chunk: Sequence[bytes], limiter: anyio.CapacityLimiter) -> None:
    await anyio.to_thread.run_sync(unseal_chunk, chunk, NET, limiter=limiter)


async def _in_process(chunk: Sequence[bytes]) -> None:
    await anyio.to_process.run_sync(verify_chunk, chunk)


async def threads(wires: list[bytes]) -> None:
    lim = anyio.CapacityLimiter(2)
    chunks = [wires[i : i + 64] for i in range(0, len(wires), 64)]
    async with anyio.create_task_group() as tg:
        for c in chunks:
            tg.start_soon(_in_thread, c, lim)


async def procs(wires: list[bytes]) -> None:
    chunks = [wires[i : i + 256] for i in range(0, len(wires), 256)]
    async with anyio.create_task_group() as tg:
        for c in chunks:
            tg.start_soon(_in_process, c)


async def main() -> None:
    wires = presealed(20000, 8)
    await procs(wires[:600])  # warm up workers
    for f in (threads, procs, threads, procs):  # alternated: the machine is noisy
        t = time.perf_counter()
        await f(wires)
        dt = time.perf_counter() - t
        print(f.__name__, round(len(wires) / dt), "/s")


if __name__ == "__main__":
    anyio.run(main)
