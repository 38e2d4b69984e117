#!/usr/bin/env python3
"""Time a node's own writes alone: `Chains.append` of N notes into a fresh store, no bus.

    python scripts/bench_append.py [N]      # prints ms per event

Used for the before/after figures in BENCHMARKS.md (it isolates the store's write path).
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
import time
from pathlib import Path

import anyio

from coopnet.node.engine.chains import Chains
from coopnet.node.engine.store import Store
from coopnet.node.runtime import domain_tables
from coopnet.protocol import Identity, NotePosted

NET = hashlib.sha256(b"bench append").digest()[:16]


async def open_node_store(path: Path) -> Store:
    """The store as a node opens it: every domain's projections fold what is stored."""
    projections, tables = domain_tables()
    return await Store.open(path, net=NET, projections=projections, tables=tables)


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = await open_node_store(Path(tmp) / "node.db")
        chains = Chains(store, NET)
        ident = Identity.from_passphrase("bench", "append")
        await chains.append("bench", ident.signing_key, ident.founding_body("Bench", "B1"))
        start = time.perf_counter()
        for i in range(n):
            await chains.append("bench", ident.signing_key, NotePosted(text=f"note {i}"))
        elapsed = time.perf_counter() - start
        await store.close()
    print(f"{n} own events: {elapsed / n * 1000:.2f} ms per event ({n / elapsed:.0f}/s)")


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 500)
