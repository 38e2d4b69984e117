"""`coopnet node init|run|status`: the commands of one neighborhood node."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import anyio
import anyio.to_thread
import msgspec
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from coopnet.node.engine.chains import Chains
from coopnet.node.engine.client import API_URL_FILE, call_api
from coopnet.node.engine.config import (
    DEV_NET,
    ConfigError,
    NodeConfig,
    db_path,
    read_config,
    write_config,
    write_identity,
)
from coopnet.node.engine.private_files import private_dir
from coopnet.node.engine.status import read_status, status_dict
from coopnet.node.engine.store import StorageFailure, Store
from coopnet.node.notes.cli import add_note_commands
from coopnet.node.pools.cli import add_pool_commands
from coopnet.node.runtime import Node, domain_tables
from coopnet.node.timebank.cli import add_hours_commands
from coopnet.protocol import Identity
from coopnet.protocol.envelope import AUTHOR_RE
from coopnet.protocol.text import hidden_characters

log = logging.getLogger("coopnet")


def setup_logging(verbose: bool = False, *, quiet: bool = False) -> None:
    """Readable logs on stderr; `quiet` keeps only warnings (under a live view)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO,
        format="%(name)s: %(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=Console(stderr=True), show_path=False)],
    )
    for noisy in ("nats", "uvicorn", "litestar", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def init_node(
    data: Path,
    *,
    slug: str,
    display_name: str,
    area: str,
    net: bytes,
    nats_url: str = "",
    api_port: int = 0,
    identity: Identity | None = None,
    auto_trade: bool = False,
    settings: Mapping[str, object] | None = None,
    ticket: bytes | None = None,
) -> NodeConfig:
    """Create a node's data dir: config, key files (0600), store, and its founding event
    (`ticket`: the operator's admission ticket for a neighborhood that is not a founder,
    PROTOCOL.md §16.6)."""
    config = NodeConfig(
        slug=slug,
        display_name=display_name,
        area=area,
        net=net.hex(),
        nats_url=nats_url,
        api_port=api_port,
        auto_trade=auto_trade,
    )
    if settings:
        config = msgspec.structs.replace(config, **settings)
    ident = identity or Identity.generate(slug)
    await anyio.to_thread.run_sync(_write_node_files, data, config, ident)
    projections, tables = domain_tables()
    store = await Store.open(db_path(data), net=net, projections=projections, tables=tables)
    try:
        chains = Chains(store, net)
        await chains.append(
            slug, ident.signing_key, ident.founding_body(display_name, area, ticket)
        )
    finally:
        await store.close()
    return config


def _slug_like(name: str) -> str:
    """A valid slug close to `name` ("Oakley" → "oakley"), or "" when there is none."""
    slug = "-".join(
        "".join(c if c.isascii() and c.isalnum() else " " for c in name.lower()).split()
    )
    return slug[:32] if AUTHOR_RE.fullmatch(slug[:32]) else ""


def _write_node_files(data: Path, config: NodeConfig, ident: Identity) -> None:
    if not AUTHOR_RE.fullmatch(config.slug):
        raise ConfigError(
            f"slug {config.slug!r} is not a valid author name: 2-32 characters, a lowercase "
            "letter then lowercase letters, digits or '-' (PROTOCOL.md §2.1), e.g. 'oakley'",
            f"try --name {_slug_like(config.slug)}" if _slug_like(config.slug) else "",
        )
    if (data / "node.toml").exists():
        raise ConfigError(f"{data} already holds a node")
    hidden = hidden_characters(config.display_name)
    if hidden:  # a node signs no name that hides characters (PROTOCOL.md §18)
        raise ConfigError(
            f"the display name {config.display_name!r} holds invisible or control characters"
            f" ({', '.join(hidden)}); choose one without them"
        )
    private_dir(data, announce=False)  # 0700 whatever the umask: the store, keys go here
    write_identity(data, ident)
    write_config(data, config)
    read_config(data)  # the same checks as at start


def _cmd_init(args: argparse.Namespace) -> int:
    net = bytes.fromhex(args.federation_id) if args.federation_id else DEV_NET
    config = anyio.run(
        lambda: init_node(
            Path(args.data),
            slug=args.name,
            display_name=args.display_name or args.name.replace("-", " ").title(),
            area=args.area,
            net=net,
            nats_url=args.nats or "",
            api_port=args.api_port,
            auto_trade=args.auto_trade,
        )
    )
    if args.json:
        print(json.dumps({"slug": config.slug, "data": str(args.data), "net": config.net}))
    else:
        print(f"node {config.slug} created in {args.data} (federation {config.net})")
        print(f"run it with: coopnet node run --data {args.data}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    setup_logging(args.verbose)

    async def main() -> Node:
        node = Node(
            Path(args.data),
            nats_url=args.nats,
            api_port=args.api_port,
            trust_local_head=args.trust_local_head,
        )
        async with anyio.create_task_group() as tg:

            async def on_signals() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for signum in signals:
                        log.info("%s: %s received, shutting down", node.slug, signum.name)
                        node.stop()
                        tg.cancel_scope.cancel()
                        return

            tg.start_soon(on_signals)
            await tg.start(node.run)
            log.info("%s: running; API at %s", node.slug, node.api_url or "(off)")
            await node.stopped.wait()
            tg.cancel_scope.cancel()
        return node

    cannot_open: list[BaseException] = []
    node: Node | None = None
    try:
        node = anyio.run(main)
    except* StorageFailure as group:  # the store could not even be opened
        cannot_open.extend(group.exceptions)
    if cannot_open:
        for exc in cannot_open:
            print(
                f"error: {exc} (hint: is the disk full, or the data folder read-only?)",
                file=sys.stderr,
            )
        return 3
    assert node is not None
    if node.failure is not None:
        print(f"error: the node stopped: {node.failure}", file=sys.stderr)
        return 3
    if node.retired_line:  # plain, whole: the log line may be wrapped by the terminal's width
        print(f"coopnet: {node.retired_line}", file=sys.stderr)
    return 0


def node_status(args: argparse.Namespace) -> dict[str, object]:
    """The node's status: asked of the node itself when it runs (`GET /status` with the
    CLI's token, `running: true`), else read from its store (`running: false`, and the
    live parts empty: not connected, nothing published since a start)."""
    data = Path(args.data)
    config = read_config(data)  # a clear error when no node was made here
    if (data / API_URL_FILE).exists():
        try:
            live: dict[str, object] = call_api(args, "GET", "/status")
            return {**live, "running": True}
        except ConfigError:
            pass  # api.url left by a node that died: read the store instead

    async def from_store() -> dict[str, object]:
        projections, tables = domain_tables()
        store = await Store.open(
            db_path(data), net=config.net_bytes, projections=projections, tables=tables
        )
        try:
            return status_dict(await read_status(store, config))
        finally:
            await store.close()

    return {**anyio.run(from_store), "running": False}


def _cmd_status(args: argparse.Namespace) -> int:
    status = node_status(args)
    if args.json:
        print(json.dumps(status))
        return 0
    console = Console()
    console.print(
        f"[bold]{status['slug']}[/] · own head {status['own_head']} · "
        f"{status['events_stored']} events · outbox {status['outbox_depth']}"
    )
    if status["running"]:
        bus = "connected to" if status["bus_connected"] else "not connected to"
        signing = "ready to sign" if status["ready_to_sign"] else "not ready to sign"
        if not status["ready_to_sign"] and status.get("not_ready"):
            signing += f" ({status['not_ready']})"
        console.print(
            f"running · API {status['api_url']} · {bus} the bus {status['bus_url'] or ''} · "
            f"{status['published']} published since start · {signing}",
            markup=False,
            highlight=False,
        )
    else:
        console.print(f"not running (start it with `coopnet node run --data {args.data}`)",
                      markup=False, highlight=False)  # fmt: skip
    refused = status.get("publish_refused")
    if isinstance(refused, dict):  # OPERATIONS.md §12
        console.print(f"[bold red]PUBLISH REFUSED[/] ({refused['code']}): {refused['reason']}")
    table = Table("author", "head", title="Authors followed", title_justify="left")
    authors = status["authors"]
    assert isinstance(authors, dict)
    for author, head in authors.items():
        table.add_row(author, str(head))
    console.print(table)
    rejected = status["rejected"]
    assert isinstance(rejected, dict)
    if rejected:
        rej = Table("code", "count", title="Rejected, by code", title_justify="left")
        for code, count in sorted(rejected.items()):
            rej.add_row(code, str(count))
        console.print(rej)
    forks = status["forks"]
    assert isinstance(forks, list)
    for fork in forks:
        console.print(
            f"[bold red]FORK[/] {fork['author']} at seq {fork['seq']}: "
            f"{fork['held_id'][:16]}… vs {fork['other_id'][:16]}…"
        )
    return 0


def _cmd_rotate_key(args: argparse.Namespace) -> int:
    r = call_api(args, "POST", "/keys/rotate")
    if args.json:
        print(json.dumps(r))
    else:
        print(
            f"key rotated (event #{r['seq']}): now signing with {r['key'][:16]}…\n"
            f"NATS user {r['nkey']}: its credentials must be issued to this key "
            "(an operator: `coopnet neighborhood rotate-key SLUG --federation DIR` does both)"
        )
    return 0


def _cmd_invite(args: argparse.Namespace) -> int:
    r = call_api(
        args,
        "POST",
        "/accounts/invitations",
        {"role": args.role, "expires_in_hours": args.hours},
    )
    if args.json:
        print(json.dumps(r))
    else:
        until = datetime.fromtimestamp(r["expires_at"] / 1000).astimezone()
        print(
            f"invitation {r['id']} for a {r['role']}, single use, until"
            f" {until:%Y-%m-%d %H:%M %Z}:\n{r['link']}\n"
            "Open it in a browser that reaches the node; whoever opens it first makes the account."
        )
    return 0


def add_node_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    node = sub.add_parser("node", help="run a neighborhood node")
    cmds = node.add_subparsers(dest="node_command", metavar="COMMAND", required=True)

    p = cmds.add_parser("init", help="create a node: identity, key files, store, founding event")
    p.add_argument("--name", required=True, help="the neighborhood's slug, e.g. oakley")
    p.add_argument("--data", required=True, help="the node's data directory")
    p.add_argument("--display-name", help="the name residents see (default: from the slug)")
    p.add_argument("--area", default="local", help="a coarse area code, never an address")
    p.add_argument("--federation-id", help="16 bytes of hex (default: the dev federation)")
    p.add_argument("--nats", help="NATS URL to use (default: the embedded nats-server)")
    p.add_argument("--api-port", type=int, default=0, help="resident API port (0: any free)")
    p.add_argument(
        "--auto-trade",
        action="store_true",
        help="answer trades automatically within the rules (accept what offers cover, ship, "
        "confirm receipt); can be changed later in node.toml",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_init)

    p = cmds.add_parser(
        "run",
        help="run the node until SIGINT/SIGTERM",
        description="Run the node: resident API, bus, sync. Without --nats it starts (or "
        "shares) an embedded nats-server beside the data directory. A node signs nothing "
        "until it has confirmed its own head with the stream or a peer, so a store restored "
        "from an old backup can never fork its author.",
    )
    p.add_argument("--data", required=True, help="the node's data directory")
    p.add_argument("--nats", help="NATS URL (default: node.toml, else the embedded server)")
    p.add_argument("--api-port", type=int, help="resident API port (default: node.toml)")
    p.add_argument(
        "--trust-local-head",
        action="store_true",
        help="sign before the head is confirmed (only if this store surely lost nothing)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.set_defaults(func=_cmd_run)

    p = cmds.add_parser(
        "status",
        help="own head, authors, outbox, rejections, forks; bus and API when it runs",
        description="A running node is asked (its API, with the CLI's token): bus, "
        "readiness, what it published; a stopped one is read from its store (`running: "
        "false`).",
    )
    p.add_argument("--data", required=True, help="the node's data directory")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_status)

    p = cmds.add_parser(
        "rotate-key", help="sign with the key committed in advance; commit a new next key"
    )
    p.add_argument(
        "--data",
        default=os.environ.get("COOPNET_DATA", "."),
        help="the node's data directory (the node must be running; default $COOPNET_DATA or .)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_rotate_key)

    p = cmds.add_parser(
        "invite",
        help="print a single-use link that makes an account in the node's web app",
        description="Invite a coordinator or resident: prints a link to the node's web app "
        "that makes one account with that role (the first coordinator is made this way; "
        "coordinators invite others from the app). The node must be running.",
    )
    p.add_argument(
        "--data",
        default=os.environ.get("COOPNET_DATA", "."),
        help="the node's data directory (default $COOPNET_DATA or .)",
    )
    p.add_argument(
        "--role", choices=("coordinator", "resident"), default="coordinator", help="the role"
    )
    p.add_argument("--hours", type=int, default=72, help="how long the link works (1-720)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_invite)
    from coopnet.node.backup_cli import add_backup_commands  # `node backup|restore`

    add_backup_commands(cmds)

    add_note_commands(sub)  # `coopnet note …`: a node's own public notes
    add_pool_commands(sub)  # `coopnet pool …`: pooled purchases
    add_hours_commands(sub)  # `coopnet hours …`: the time bank
