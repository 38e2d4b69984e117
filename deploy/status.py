"""`coopnet federation status`, and `up`'s live table: each hub (its monitoring port) and
each neighborhood's node (its API), whether `federation up` runs them here or they run
under systemd; the state `up` recorded for a node that does not answer (deploy/control.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from rich import box
from rich.table import Table

from coopnet.deploy.control import node_state
from coopnet.deploy.federation import neighborhood_dir, neighborhoods, read_federation
from coopnet.deploy.nats_config import MONITOR_HOST
from coopnet.node.engine.bus import STREAM
from coopnet.node.engine.client import API_URL_FILE


def _coop_messages(jsz: dict[str, Any]) -> int:
    """The messages `COOP` holds, from a hub's `/jsz?accounts=true&streams=true`: the
    server's total would count every event twice, once in its member stream (§12)."""
    for account in jsz.get("account_details") or []:
        for stream in account.get("stream_detail") or []:
            if stream.get("name") == STREAM:
                return int((stream.get("state") or {}).get("messages", 0))
    return int(jsz.get("messages", 0))


async def gather_status(root: Path) -> dict[str, Any]:
    """Each hub (monitoring port) and each node (its API), as one JSON-able object."""
    config = read_federation(root)
    out: dict[str, Any] = {"federation": config.name, "hubs": [], "neighborhoods": []}
    async with httpx.AsyncClient(timeout=2) as client:
        for i, port in enumerate(config.ports.http):
            hub: dict[str, Any] = {"url": config.urls.split(",")[i], "up": False}
            try:
                # Monitoring listens on this machine only (nats_config.MONITOR_HOST).
                varz = (await client.get(f"http://{MONITOR_HOST}:{port}/varz")).json()
                jsz = (
                    await client.get(f"http://{MONITOR_HOST}:{port}/jsz?accounts=true&streams=true")
                ).json()
                hub |= {
                    "up": True,
                    "server": varz.get("server_name", ""),
                    "connections": varz.get("connections", 0),
                    "stream_messages": _coop_messages(jsz),
                }
            except (httpx.HTTPError, ValueError):
                pass
            out["hubs"].append(hub)
        members: dict[str, str] = {}
        for slug in neighborhoods(root):
            row: dict[str, Any] = {"slug": slug, "running": False, "state": node_state(root, slug)}
            url_file = neighborhood_dir(root, slug) / API_URL_FILE
            try:
                base = url_file.read_text().strip()
                status = (await client.get(base + "/status")).json()
                if not members:
                    view = (await client.get(base + "/membership")).json()
                    members = {m["slug"]: m["status"] for m in view["members"]}
                row |= {
                    "running": True,
                    "api": base,
                    "own_head": status["own_head"],
                    "bus_connected": status["bus_connected"],
                    "outbox": status["outbox_depth"],
                    "events": status["events_stored"],
                    "rejected": sum(status["rejected"].values()),
                    # The bus refuses its events (its quota: OPERATIONS.md §12), or "".
                    "publish_refused": (status.get("publish_refused") or {}).get("code", ""),
                }
            except (OSError, httpx.HTTPError, ValueError, KeyError):
                pass
            out["neighborhoods"].append(row)
        for row in out["neighborhoods"]:
            row["membership"] = members.get(row["slug"], "unknown")
            if row["running"]:
                row["state"] = "running"
            elif row["membership"] == "retired" or row["state"] == "retired":
                row["state"] = "retired"
    return out


def status_table(status: dict[str, Any]) -> Table:
    # Slugs and counts are never cut (`millbro…`) in an 80-column terminal: people copy
    # them into their next command. A light frame (no edges, no column rules) leaves them
    # room; the words beside them wrap instead (as node/engine/terminal.py `table`).
    table = Table(
        title=_title(status), title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
        pad_edge=False, collapse_padding=True,
    )  # fmt: skip
    for name in ("neighborhood", "membership"):
        table.add_column(name, no_wrap=True, overflow="ignore")
    for name in ("running", "bus"):
        table.add_column(name, overflow="fold")
    for name in ("own head", "events", "outbox", "rejected"):
        table.add_column(name, justify="right", overflow="fold")
    for n in status["neighborhoods"]:
        if not n["running"]:
            state = n.get("state") or "no"
            style = "dim" if state in ("stopped", "retired") else "red"
            table.add_row(n["slug"], n["membership"], f"[{style}]{state}[/]", *[""] * 5)
            continue
        table.add_row(
            n["slug"], n["membership"], "[green]yes[/]",
            f"[red]refused: {n['publish_refused']}[/]" if n.get("publish_refused")
            else "[green]up[/]" if n["bus_connected"] else "[yellow]down[/]",
            str(n["own_head"]), str(n["events"]), str(n["outbox"]), str(n["rejected"]),
        )  # fmt: skip
    return table


def _title(status: dict[str, Any]) -> str:
    hubs = ", ".join(
        f"{h['url']} {'up' if h['up'] else 'DOWN'}"
        + (f" ({h['connections']} conns, {h['stream_messages']} msgs)" if h["up"] else "")
        for h in status["hubs"]
    )
    return f"federation {status['federation']} — hubs: {hubs}"
