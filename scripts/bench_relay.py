#!/usr/bin/env python3
"""Time one event from a node to a peer in a federation *with credentials*: `ana` posts a
note, how long until `ben` holds it. Real nats-server from `federation init`'s config, the
nodes in this process. The path `coopnet bench` does not take (it runs without
credentials): since issue 15 a member publishes into its own stream `COOP_<slug>`, which
`COOP` sources, so this measures that extra hop.

    python scripts/bench_relay.py [N]      # prints one JSON object: p50 / p99 ms of N notes

Runs against whichever tree it is in (before/after figures in BENCHMARKS.md). Events are
posted one at a time (the next after the previous one is held), so this is latency, not
throughput.
"""

from __future__ import annotations

import json
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import anyio

from coopnet.deploy import federation as fed
from coopnet.deploy.launcher import ensure_stream, start_hubs
from coopnet.node.runtime import Node
from coopnet.protocol import Envelope, NotePosted


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "fed"
        ports = fed.Ports(client=[_free_port()], http=[_free_port()], leaf=[_free_port()])
        config = await fed.init_federation(root, name="Bench", slugs=["ana", "ben"], ports=ports)
        hubs = start_hubs(root, config)
        try:
            await ensure_stream(root, config)
            ana, ben = (
                Node(fed.neighborhood_dir(root, "ana")),
                Node(fed.neighborhood_dir(root, "ben")),
            )
            ana.serve_api = ben.serve_api = False
            async with anyio.create_task_group() as tg:
                for node in (ana, ben):
                    await tg.start(node.run)
                for node in (ana, ben):
                    await node.ready.wait()
                samples: list[float] = []
                want = {"seq": 0}
                held = anyio.Event()

                def on_accepted(events: Sequence[Envelope]) -> None:
                    if any(e.author == "ana" and e.seq >= want["seq"] for e in events):
                        held.set()

                ben.listeners.append(on_accepted)
                for i in range(n + 10):  # the first 10 warm up
                    held = anyio.Event()
                    start = time.perf_counter()
                    env = await ana.post(NotePosted(text=f"note {i}"))
                    want["seq"] = env.seq
                    head = ben.chains.head_of("ana")
                    if head is None or head.seq < env.seq:
                        await held.wait()
                    if i >= 10:
                        samples.append((time.perf_counter() - start) * 1000)
                for node in (ana, ben):
                    node.stop()
        finally:
            for hub in hubs:
                hub.stop()
    samples.sort()
    print(json.dumps({
        "bench": "relay", "notes": n,
        "p50_ms": round(samples[len(samples) // 2], 2),
        "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 2),
    }))  # fmt: skip


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 200)
