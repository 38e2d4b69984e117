"""Unsealing many events at once, spread over the machine's cores (PROTOCOL.md §4).

Small batches (live traffic: a few events) are unsealed in worker threads: PyNaCl releases
the GIL while it verifies. One or two events are unsealed on the event loop itself, which
is quicker than the round trip to a thread. Large batches (a catch-up, a
sync reply, a burst) go to worker processes. Threads share one interpreter, and the rest of
the receive path (the event loop, the chain checks, the projections) holds the GIL often
enough that two verify threads do not keep two cores busy (BENCHMARKS.md, "Ingest").

A worker process runs the whole `unseal` of each event and sends back only its verdict:
None, or the refusal with its code. This process then decodes the accepted bytes once more
without verifying them again (`decode_unsealed`), a few microseconds an event. Worker
processes are anyio's shared pool, so every node and observer in one process shares them.
If the pool cannot start (no `fork`/`spawn` here, a broken worker), verification falls back
to threads and says so once in the log.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import anyio
import anyio.to_process
import anyio.to_thread

from coopnet.protocol import Envelope, InvalidEvent, decode_unsealed, unseal

log = logging.getLogger("coopnet.verify")
T = TypeVar("T")

# From this many events a batch goes to worker processes: below it, the pickling and the
# pipe round trip cost more than the cores they buy.
PROCESS_MIN = 256
PROCESS_CHUNK = 256
THREAD_CHUNK = 64
# Up to this many events are unsealed right on the event loop (~120 µs each): a live event
# waits less for that than for a worker thread to take it and hand it back.
INLINE_MAX = 2


class Verifier:
    """Unseal batches of wire bytes for one federation, results in input order."""

    def __init__(self, net: bytes, *, processes: bool | None = None) -> None:
        self.net = net
        cores = os.cpu_count() or 1
        self.threads = anyio.CapacityLimiter(cores)
        # One core cannot verify in parallel with anything: processes would only add hops.
        self.use_processes = cores > 1 if processes is None else processes
        self.in_processes = 0  # events verified in worker processes (status, tests)

    async def unseal_many(self, wires: Sequence[bytes]) -> list[Envelope | InvalidEvent]:
        if self.use_processes and len(wires) >= PROCESS_MIN:
            broken: BaseException | None = None
            try:
                return await self._in_processes(wires)
            except* anyio.BrokenWorkerProcess as group:
                broken = group.exceptions[0]
            self._give_up_processes(broken)
        return await self._in_threads(wires)

    def _give_up_processes(self, why: BaseException | None) -> None:
        if self.use_processes:  # said once, not by every batch that was in flight
            self.use_processes = False
            log.warning("worker processes unavailable (%s); verifying in threads", why)

    async def warm_up(self) -> None:
        """Start the worker processes now rather than at the first large batch (~0.3 s each)."""
        if not self.use_processes:
            return
        workers = int(anyio.to_process.current_default_process_limiter().total_tokens)
        try:
            async with anyio.create_task_group() as tg:
                for _ in range(workers):
                    tg.start_soon(anyio.to_process.run_sync, verdict_chunk, [], self.net)
        except* anyio.BrokenWorkerProcess as group:
            self._give_up_processes(group.exceptions[0])

    async def _in_threads(self, wires: Sequence[bytes]) -> list[Envelope | InvalidEvent]:
        if len(wires) <= INLINE_MAX:
            return unseal_chunk(wires, self.net)

        async def in_thread(chunk: Sequence[bytes]) -> list[Envelope | InvalidEvent]:
            return await anyio.to_thread.run_sync(
                unseal_chunk, chunk, self.net, limiter=self.threads
            )

        return await _by_chunks(wires, THREAD_CHUNK, in_thread)

    async def _in_processes(self, wires: Sequence[bytes]) -> list[Envelope | InvalidEvent]:
        async def in_process(chunk: Sequence[bytes]) -> list[InvalidEvent | None]:
            # The shared default limiter: every node in this process uses the same workers.
            return await anyio.to_process.run_sync(verdict_chunk, list(chunk), self.net)

        verdicts = await _by_chunks(wires, PROCESS_CHUNK, in_process)
        self.in_processes += len(wires)
        return [
            decode_unsealed(wire) if refused is None else refused
            for wire, refused in zip(wires, verdicts, strict=True)
        ]


async def _by_chunks(
    items: Sequence[bytes], size: int, run: Callable[[Sequence[bytes]], Awaitable[list[T]]]
) -> list[T]:
    """`run` each chunk of `size` items, all at once; the results flattened, in order."""
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    results: list[list[T]] = [[] for _ in chunks]

    async def one(i: int) -> None:
        results[i] = await run(chunks[i])

    if len(chunks) == 1:
        await one(0)
    else:
        async with anyio.create_task_group() as tg:
            for i in range(len(chunks)):
                tg.start_soon(one, i)
    return [r for chunk in results for r in chunk]


def unseal_chunk(wires: Sequence[bytes], net: bytes) -> list[Envelope | InvalidEvent]:
    """`unseal` each wire; a refusal is returned in its place, never raised."""
    out: list[Envelope | InvalidEvent] = []
    for wire in wires:
        try:
            out.append(unseal(wire, net=net))
        except InvalidEvent as exc:
            out.append(exc)
    return out


def verdict_chunk(wires: Sequence[bytes], net: bytes) -> list[InvalidEvent | None]:
    """Run in a worker process: each wire's refusal, or None when `unseal` accepts it."""
    _lower_priority()
    return [r if isinstance(r, InvalidEvent) else None for r in unseal_chunk(wires, net)]


_NICENESS = 10
_niced = False


def _lower_priority() -> None:
    """Worker processes yield the CPU to the node's own threads: verification is the wide
    stage of the pipeline, the commit (the event loop and the database thread) the narrow
    one, and a commit that waits for a core holds up every batch behind it."""
    global _niced
    if not _niced:
        _niced = True
        os.nice(_NICENESS)
