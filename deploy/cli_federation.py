"""`coopnet federation init|up|status` and `coopnet neighborhood add|retire|rotate-key`: the
operator's commands (docs/OPERATIONS.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import nats.errors
from rich.console import Console

from coopnet.deploy import federation as fed
from coopnet.deploy.nats_auth import Authority, ClaimsUpdateError, push_account
from coopnet.node.engine.client import API_URL_FILE
from coopnet.node.engine.config import ConfigError
from coopnet.protocol.charter import Policies


def _cmd_init(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    slugs = [s.strip() for s in args.neighborhoods.split(",") if s.strip()]
    policies = Policies(credit_limit=args.credit_limit, quorum_percent=args.quorum_percent)
    config = anyio.run(
        lambda: fed.init_federation(
            root, name=args.name, slugs=slugs, hubs=args.hubs, base_port=args.port,
            policies=policies, sync_always=not args.no_sync_always,
        )
    )  # fmt: skip
    units: list[str] = []
    if args.systemd:
        from coopnet.deploy.systemd import write_units

        units = [str(p) for p in write_units(root, config)]
    net = (root / "charter.net").read_text().strip()
    result = {
        "federation": args.name,
        "net": net,
        "dir": str(root),
        "hub_configs": [str(p) for p in config.hub_configs(root)],
        "nats_urls": config.urls,
        "neighborhoods": slugs,
        "systemd_units": units,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    console = Console()
    console.print(f"[bold]{args.name}[/]: federation id (net) {net}")
    console.print(f"  charter       {root / 'charter.json'}")
    for path in result["hub_configs"]:
        console.print(f"  hub config    {path}")
    for slug in slugs:
        console.print(f"  neighborhood  {fed.neighborhood_dir(root, slug)}")
    console.print(f"  observer      {root / 'observer'}")
    for unit in units:
        console.print(f"  systemd unit  {unit}")
    console.print(f"\nRun it all here: [bold]coopnet federation up {root}[/]")
    return 0


def _cmd_up(args: argparse.Namespace) -> int:
    from coopnet.deploy.launcher import run_federation
    from coopnet.node.cli import setup_logging

    setup_logging(quiet=True)
    return anyio.run(lambda: run_federation(Path(args.dir), Console(), seconds=args.seconds))


def _cmd_status(args: argparse.Namespace) -> int:
    from coopnet.deploy.launcher import gather_status, status_table

    status = anyio.run(gather_status, Path(args.dir))
    if args.json:
        print(json.dumps(status))
    else:
        Console().print(status_table(status))
    return 0


def _cmd_cluster(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    config = fed.move_to_cluster(root, base_port=args.port)
    paths = [str(p) for p in config.hub_configs(root)]
    if args.json:
        print(json.dumps({"hub_configs": paths, "nats_urls": config.urls}))
    else:
        print("three hub configs: " + ", ".join(paths))
        print(f"every node now connects to {config.urls}")
        print("stop the federation, then `coopnet federation up` starts the cluster and")
        print("raises the stream to 3 replicas (see docs/OPERATIONS.md §8)")
    return 0


def _cmd_add(args: argparse.Namespace) -> int:
    root = Path(args.federation)
    data = anyio.run(
        lambda: fed.add_neighborhood(
            root, args.slug, display_name=args.display_name or "", area=args.area,
            about=args.about, reason=args.reason, leaf=args.leaf,
        )
    )  # fmt: skip
    result = {"slug": args.slug, "data": str(data), "leaf": args.leaf}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.slug}: identity, credentials and config in {data}")
        if args.leaf:
            print(f"  its leaf nats-server config: {data / 'leaf.conf'}")
        print(
            "  start it (or restart `coopnet federation up`): it applies to join at once;\n"
            f"  members answer with `coopnet membership consent {args.slug} --data …`"
        )
    return 0


def _node_api(root: Path, slug: str, method: str, path: str, body: Any = None) -> Any:
    url_file = fed.neighborhood_dir(root, slug) / API_URL_FILE
    try:
        base = url_file.read_text().strip()
    except FileNotFoundError:
        raise ConfigError(f"{slug}'s node is not running: start it first") from None
    try:
        r = httpx.request(method, base + path, json=body, timeout=30)
    except httpx.TransportError as exc:
        raise ConfigError(f"{slug}'s node at {base} does not answer ({exc})") from None
    if r.status_code >= 400:
        raise ConfigError(f"{slug}'s node refused: {r.text}")
    return r.json()


async def _revoke(root: Path, user: str) -> list[str]:
    """Revoke a NATS user: in the account JWT, in the hub configs (so a restarted hub keeps
    it), and on every running hub. Returns the hubs that took it now."""
    authority = Authority.load(root)
    account_jwt = authority.revoke(user)
    config = fed.read_federation(root)
    fed.write_hub_configs(root, config, authority)
    took: list[str] = []
    failures: list[str] = []
    for url in config.urls.split(","):  # a cluster shares it; each hub is tried anyway
        try:
            took += await push_account([url], root / "nats" / "sys.creds", account_jwt)
        except (ClaimsUpdateError, nats.errors.Error, OSError, TimeoutError) as exc:
            failures.append(f"{url}: {exc}")
    if not took:
        print(
            f"coopnet: no hub took the revocation now ({'; '.join(failures)}); it is in the hub "
            "configs and takes effect when they restart (or run this command again)",
            file=sys.stderr,
        )
    return took


def _cmd_retire(args: argparse.Namespace) -> int:
    root = Path(args.federation)
    signed = _node_api(root, args.slug, "POST", "/membership/retire", {"reason": args.reason})
    pushed = anyio.run(_revoke, root, fed.node_user(root, args.slug))
    result = {"slug": args.slug, "retired_seq": signed["seq"], "revoked_on": pushed}
    print(json.dumps(result) if args.json else f"{args.slug} retired; credentials revoked")
    return 0


def _cmd_rotate(args: argparse.Namespace) -> int:
    """The node rotates (its log says so), then its credentials follow the new key and the
    old user is revoked: nats-py reads the creds file again when it reconnects."""
    root = Path(args.federation)
    old_user = fed.node_user(root, args.slug)
    rotated = _node_api(root, args.slug, "POST", "/keys/rotate")
    new_user = fed.issue_node_creds(root, args.slug, Authority.load(root))
    pushed = anyio.run(_revoke, root, old_user)
    result = {"slug": args.slug, "seq": rotated["seq"], "key": rotated["key"],
              "nats_user": new_user, "revoked": old_user, "revoked_on": pushed}  # fmt: skip
    print(json.dumps(result) if args.json else f"{args.slug}: key rotated; now {new_user}")
    return 0


def add_federation_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    f = sub.add_parser("federation", help="create and run a federation (operators)")
    cmds = f.add_subparsers(dest="federation_command", metavar="COMMAND", required=True)
    p = cmds.add_parser(
        "init",
        help="charter, NATS keys and configs, one node per founding neighborhood",
        description="Write a federation into DIR: charter.json (net commits to it), the "
        "NATS operator/account keys and hub config(s), each founder's node with its own "
        "credentials, and the observer's read-only credentials.",
    )
    p.add_argument("dir", help="the federation's directory (created)")
    p.add_argument("--name", required=True, help="the federation's name")
    p.add_argument("--neighborhoods", required=True, help="founding slugs, e.g. a,b,c")
    p.add_argument("--hubs", type=int, choices=(1, 3), default=1, help="1 server or a cluster")
    p.add_argument("--port", type=int, default=4222, help="first client port (default 4222)")
    p.add_argument("--credit-limit", type=int, default=Policies().credit_limit, help="cents")
    p.add_argument("--quorum-percent", type=int, default=Policies().quorum_percent)
    p.add_argument(
        "--no-sync-always",
        action="store_true",
        help="let JetStream acknowledge before it syncs to disk (faster; can lose "
        "acknowledged writes on power loss: see docs/OPERATIONS.md)",
    )
    p.add_argument("--systemd", action="store_true", help="also write systemd units")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_init)
    p = cmds.add_parser("up", help="run the hub(s) and every node here, with a live table")
    p.add_argument("dir")
    p.add_argument("--seconds", type=float, help="stop after this long (default: Ctrl-C)")
    p.set_defaults(func=_cmd_up)
    p = cmds.add_parser("cluster", help="move to a three-server cluster (same keys)")
    p.add_argument("dir")
    p.add_argument("--port", type=int, help="first client port (default: the current one)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_cluster)
    p = cmds.add_parser("status", help="hubs and nodes: up, membership, heads, outboxes")
    p.add_argument("dir")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_status)

    n = sub.add_parser("neighborhood", help="add, retire, re-key a neighborhood (operators)")
    cmds = n.add_subparsers(dest="neighborhood_command", metavar="COMMAND", required=True)
    p = cmds.add_parser("add", help="a new identity, credentials and config; it applies")
    p.add_argument("slug")
    p.add_argument("--federation", required=True, help="the federation's directory")
    p.add_argument("--display-name", help="the name residents see (default: from the slug)")
    p.add_argument("--area", default="local", help="a coarse area code, never an address")
    p.add_argument("--about", default="", help="who the neighborhood is (members see it)")
    p.add_argument("--reason", required=True, help="why it wants to join (members see it)")
    p.add_argument("--leaf", action="store_true", help="also a leaf nats-server config")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_add)
    p = cmds.add_parser("retire", help="the node signs its retirement; its user is revoked")
    p.add_argument("slug")
    p.add_argument("--federation", required=True)
    p.add_argument("--reason", default="")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_retire)
    p = cmds.add_parser("rotate-key", help="rotate a node's key; its credentials follow")
    p.add_argument("slug")
    p.add_argument("--federation", required=True)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_rotate)
