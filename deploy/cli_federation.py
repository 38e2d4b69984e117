"""`coopnet federation init|up|stop|start|status` and `coopnet neighborhood add|retire|
rotate-key`: the operator's commands (docs/OPERATIONS.md). A failure the operator can act
on is raised as an OperatorError (what, and a hint), which deploy/cli.py prints as one line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import msgspec
import nats.errors
from rich.console import Console

from coopnet.deploy import federation as fed
from coopnet.deploy.admission import admission_ticket
from coopnet.deploy.federation import OperatorError
from coopnet.deploy.launcher import (
    choose_free_ports,
    node_file,
    node_state,
    pid_alive,
    read_pid,
    retired_marker,
    running_up,
)
from coopnet.deploy.nats_auth import Authority, ClaimsUpdateError, push_account
from coopnet.deploy.nats_config import TlsFiles
from coopnet.deploy.quotas import MIB, Quotas
from coopnet.node.engine.bus import STREAM, member_stream
from coopnet.node.engine.client import API_URL_FILE
from coopnet.node.engine.config import ConfigError
from coopnet.protocol.charter import Policies

DEFAULT_PORT = 4222  # the usual NATS client port; `init` moves it if it is taken


def _cmd_init(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    slugs = [s.strip() for s in args.neighborhoods.split(",") if s.strip()]
    for slug in slugs:  # before --force deletes anything
        fed.check_slug(slug)
    policies = Policies(credit_limit=args.credit_limit, quorum_percent=args.quorum_percent)
    own_tls = [args.tls_ca, args.tls_cert, args.tls_key]
    if any(own_tls) and not all(own_tls):
        raise ConfigError("--tls-ca, --tls-cert and --tls-key go together")
    tls_files = TlsFiles(*own_tls) if all(own_tls) else None
    hosts = [h.strip() for h in (args.host or "").split(",") if h.strip()]
    removed = _replace_or_refuse(root, force=args.force)
    base = DEFAULT_PORT if args.port is None else args.port
    per_hub = hosts * args.hubs if len(hosts) == 1 else hosts or ["127.0.0.1"] * args.hubs
    ports, moved = fed.default_ports(base, args.hubs), list[dict[str, Any]]()
    if len(per_hub) == args.hubs:  # else init_federation refuses --host; check nothing
        ports, moved = choose_free_ports(ports, per_hub, keep_client=args.port is not None)
    config = anyio.run(
        lambda: fed.init_federation(
            root, name=args.name, slugs=slugs, hubs=args.hubs, base_port=base, ports=ports,
            policies=policies, sync_always=not args.no_sync_always, hosts=hosts,
            tls=args.tls, tls_files=tls_files, tls_names=args.tls_name,
            quotas=_quotas(args),
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
        "ports": msgspec.structs.asdict(config.ports),
        "ports_moved": moved,
        "replaced": removed,
        "tls": config.tls,
        "neighborhoods": slugs,
        "systemd_units": units,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    console = Console(highlight=False, soft_wrap=True)  # paths whole, to copy
    if removed:
        console.print(f"replaced the federation that was in {root} (--force)")
    for m in moved:
        held = f" by {m['held_by']}" if m["held_by"] else ""
        console.print(
            f"port {m['wanted']} (hub {m['role']} port) is taken{held}: using {m['used']}"
        )
    console.print(f"[bold]{args.name}[/]: federation id (net) {net}")
    console.print(f"  NATS          {config.urls}")
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


# What `federation init` writes into DIR (deploy/federation.py), all that --force removes.
FEDERATION_ENTRIES = (
    "charter.json", "charter.net", "federation.toml", "admission.key",
    "nats", "neighborhoods", "observer", "run", "logs", "systemd",
)  # fmt: skip


def _replace_or_refuse(root: Path, *, force: bool) -> bool:
    """A directory that holds a federation already: refused (OperatorError with a hint),
    or with `force` emptied of everything `init` writes there (other files stay).
    Returns whether a federation was removed.

    --force rather than "move it aside": the usual reason to init again is a federation
    just made with the wrong slugs or ports, which holds nothing yet; the flag says in its
    help and here that it deletes the keys and every node's store, and it is refused while
    `up` runs the federation."""
    if not ((root / "charter.json").exists() or (root / "federation.toml").exists()):
        return False
    if not force:
        raise OperatorError(
            f"{root} already holds a federation",
            f"`coopnet federation up {root}` runs it; `coopnet federation init {root} --force "
            "...` replaces it, deleting its keys, every node's store and its logs",
        )
    pid = running_up(root)
    if pid is not None:
        raise OperatorError(
            f"`coopnet federation up` runs {root} (pid {pid}): it is not replaced",
            "stop it first (Ctrl-C in its terminal)",
        )
    for name in FEDERATION_ENTRIES:
        path = root / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    return True


def _cmd_up(args: argparse.Namespace) -> int:
    from coopnet.deploy.launcher import run_federation
    from coopnet.node.cli import setup_logging

    setup_logging(quiet=True)
    return anyio.run(lambda: run_federation(Path(args.dir), Console(), seconds=args.seconds))


# How long `federation stop|start` wait for `up` to do it (a node flushes its outbox first).
CONTROL_WAIT_S = 30.0


def _under_up(root: Path, slug: str) -> int:
    """Check that `slug` is a neighborhood of `root`, not retired, and that a `federation
    up` runs `root`; return that up's pid. Raises OperatorError."""
    fed.read_federation(root)  # a ConfigError that says so if `root` is no federation
    if not (fed.neighborhood_dir(root, slug) / "node.toml").exists():
        from coopnet.deploy.launcher import neighborhoods

        raise OperatorError(
            f"{slug} is not a neighborhood of {root}",
            f"its neighborhoods: {', '.join(neighborhoods(root)) or 'none'}",
        )
    if retired_marker(root, slug).exists():
        raise OperatorError(f"{slug} retired: its node does not run again", "nothing to do")
    pid = running_up(root)
    if pid is None:
        raise OperatorError(
            f"no `coopnet federation up` runs {root}",
            f"start the federation with `coopnet federation up {root}`; a node run by systemd "
            f"stops and starts with `systemctl stop|start coopnet-node@{slug}`",
        )
    return pid


def _wait_for(done: Any, what: str, log_file: Path) -> None:
    """Poll `done()` every 0.1 s (another process does the work: nothing to await) until
    it holds; OperatorError after CONTROL_WAIT_S."""
    deadline = time.monotonic() + CONTROL_WAIT_S
    while not done():
        if time.monotonic() > deadline:
            raise OperatorError(
                f"`federation up` did not {what} within {CONTROL_WAIT_S:g} s",
                f"see its log, {log_file}",
            )
        time.sleep(0.1)


def _cmd_stop(args: argparse.Namespace) -> int:
    root, slug = Path(args.dir), args.slug
    _under_up(root, slug)
    pid = read_pid(node_file(root, slug, "pid"))
    already = node_state(root, slug) == "stopped"
    if not already:
        node_file(root, slug, "stop").write_text("")
        pid_file = node_file(root, slug, "pid")
        _wait_for(
            lambda: not pid_file.exists() and (pid is None or read_pid(pid_file) is None)
            and (pid is None or not pid_alive(pid)),
            f"stop {slug}", root / "logs" / f"{slug}.log",
        )  # fmt: skip
    result = {"slug": slug, "state": "stopped", "pid": pid, "already": already}
    if args.json:
        print(json.dumps(result))
    elif already:
        print(f"{slug} was stopped already; `coopnet federation start {root} {slug}` starts it")
    else:
        was = f" (was pid {pid})" if pid else ""
        print(f"stopped {slug}{was}; `coopnet federation start {root} {slug}` starts it again")
    return 0


def _cmd_start(args: argparse.Namespace) -> int:
    root, slug = Path(args.dir), args.slug
    _under_up(root, slug)
    pid_file, url_file = (
        node_file(root, slug, "pid"),
        fed.neighborhood_dir(root, slug) / API_URL_FILE,
    )
    pid = read_pid(pid_file)
    already = pid is not None
    if not already:
        asked = time.time()
        node_file(root, slug, "start").write_text("")
        _wait_for(lambda: read_pid(pid_file) is not None, f"start {slug}", root / "logs")
        pid = read_pid(pid_file)

        def api_up() -> bool:  # written by the new node (an old one's may remain after a crash)
            try:
                return url_file.stat().st_mtime >= asked - 1 and bool(url_file.read_text())
            except OSError:
                return False

        _wait_for(api_up, f"see {slug}'s API answer", root / "logs" / f"{slug}.log")
    api = url_file.read_text().strip() if url_file.exists() else ""
    result = {"slug": slug, "state": "running", "pid": pid, "api": api, "already": already}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{slug} {'was running already' if already else 'started'} (pid {pid}), API {api}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from coopnet.deploy.launcher import gather_status, status_table

    status = anyio.run(gather_status, Path(args.dir))
    if args.json:
        print(json.dumps(status))
    else:
        Console().print(status_table(status))
    return 0


# How long `federation streams` waits for the hubs by default: a unit started with them.
STREAMS_WAIT_S = 60.0


async def _hubs_answer(config: fed.FederationConfig) -> None:
    """Return once one hub accepts a TCP connection on its client port (polling every
    0.2 s): nats-py's first connect to a server that is not up yet would try for minutes."""
    while True:
        for url in config.urls.split(","):
            where = urllib.parse.urlsplit(url.strip())
            try:
                stream = await anyio.connect_tcp(where.hostname or "127.0.0.1", where.port or 4222)
            except OSError:
                continue
            await stream.aclose()
            return
        await anyio.sleep(0.2)


async def ensure_streams_now(root: Path, *, within: float = STREAMS_WAIT_S) -> dict[str, Any]:
    """Wait up to `within` seconds for the hubs, then make the federation's streams exist
    with the operator's admin user (`launcher.ensure_stream`: idempotent) and list them.

    Returns {"federation", "nats_urls", "changed": [stream names created or updated now],
    "streams": [{"name", "subjects", "sources", "replicas", "messages", "bytes"}],
    "consumers": [the names of COOP's consumers: `node-<slug>`, `observer-<name>`]}.
    Raises TimeoutError (no hub answered, or the streams could not be made, in time),
    StreamLimitError (the account has no room), ConfigError (no federation in `root`).
    OPERATIONS.md §7."""
    from coopnet.deploy.launcher import ensure_stream

    config = fed.read_federation(root)
    with anyio.fail_after(within):
        start = anyio.current_time()
        await _hubs_answer(config)
        left = max(within - (anyio.current_time() - start), 1.0)
        changed = await ensure_stream(root, config, within=left)
        nc = await nats.connect(
            config.urls.split(","),
            user_credentials=str(root / "nats" / "admin.creds"),
            tls=fed.client_tls(root, config),
        )
        try:
            infos = await nc.jetstream().streams_info()
            readers = sorted(c.name or "" for c in await nc.jetstream().consumers_info(STREAM))
        finally:
            await nc.close()
    return {
        "federation": config.name,
        "nats_urls": config.urls,
        "changed": sorted(changed or []),
        "streams": [
            {
                "name": i.config.name,
                "subjects": list(i.config.subjects or []),
                "sources": sorted(s.name for s in i.config.sources or []),
                "replicas": i.config.num_replicas or 1,
                "messages": i.state.messages,
                "bytes": i.state.bytes,
            }
            for i in sorted(infos, key=lambda i: i.config.name or "")
        ],
        "consumers": readers,
    }


def _cmd_streams(args: argparse.Namespace) -> int:
    from coopnet.deploy.streams import StreamLimitError

    root = Path(args.dir)
    try:
        result = anyio.run(lambda: ensure_streams_now(root, within=args.within))
    except (TimeoutError, StreamLimitError) as exc:
        why = str(exc) or f"the hubs at {fed.read_federation(root).urls} did not answer"
        print(
            f"error: the streams are not there ({why}) after {args.within:g}s (hint: start the"
            f" hubs, e.g. `coopnet federation up {root}` or their systemd unit, then again)",
            file=sys.stderr,
        )
        return 1
    if args.json:
        print(json.dumps(result))
        return 0
    for stream in result["streams"]:
        what = "made or updated now" if stream["name"] in result["changed"] else "already there"
        feeds = (
            f"sources {len(stream['sources'])} member stream(s)"
            if stream["sources"]
            else f"takes {', '.join(stream['subjects'])}"
        )
        print(
            f"stream {stream['name']}: {what}; {feeds}; {stream['replicas']} replica(s), "
            f"{stream['messages']} messages"
        )
    print(f"consumers on {STREAM}: {', '.join(result['consumers']) or 'none'}")
    return 0


def _cmd_cluster(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    config = fed.move_to_cluster(root, base_port=args.port, tls=args.tls)
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
    stream = anyio.run(_member_stream, root, args.slug)
    result = {"slug": args.slug, "data": str(data), "leaf": args.leaf, "stream": stream}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.slug}: identity, credentials and config in {data}")
        if args.leaf:
            print(f"  its leaf nats-server config: {data / 'leaf.conf'}")
        print(f"  its stream on the bus: {stream}")
        print(
            "  start it (or restart `coopnet federation up`): it applies to join at once;\n"
            f"  members answer with `coopnet membership consent {args.slug} --data …`"
        )
    return 0


def _cmd_ticket(args: argparse.Namespace) -> int:
    """Print the admission ticket for a neighborhood that made its own key (an outside
    implementation, say): its `node.founded` must carry it (PROTOCOL.md §16.6)."""
    root = Path(args.federation)
    fed.check_slug(args.slug)
    try:
        key = bytes.fromhex(args.key)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigError("--key is the neighborhood's Ed25519 public key: 64 hex digits")
    charter, net = fed.charter_of(root)
    if args.slug in charter.founder_keys():
        raise ConfigError(f"{args.slug} is a founder: the charter names its key, no ticket")
    if fed.neighborhood_dir(root, args.slug).exists():
        raise ConfigError(
            f"{args.slug} was added already ({fed.neighborhood_dir(root, args.slug)})"
        )
    ticket = admission_ticket(root, charter, net, args.slug, key)
    if ticket is None:
        raise ConfigError("this federation's charter names no admission key: no ticket needed")
    if args.json:
        print(json.dumps({"slug": args.slug, "key": key.hex(), "net": net.hex(),
                          "ticket": ticket.hex()}))  # fmt: skip
    else:
        print(ticket.hex())
    return 0


# How long `neighborhood add` tries to reach the hubs to make the new member's stream.
ADD_STREAM_WAIT_S = 10.0


async def _member_stream(root: Path, slug: str) -> str:
    """Make the new member's stream (and add it to COOP's sources) if the hubs answer, so
    that its application finds a stream to land in; else say who will make it."""
    from coopnet.deploy.launcher import ensure_stream
    from coopnet.deploy.streams import StreamLimitError

    stream = member_stream(slug)
    config = fed.read_federation(root)
    try:
        await _any_hub_listening(config.urls)  # else nats-py retries, loudly, till the timeout
        with anyio.fail_after(ADD_STREAM_WAIT_S):
            await ensure_stream(root, config, within=ADD_STREAM_WAIT_S - 2)
    except StreamLimitError as exc:
        return f"{stream} NOT made: {exc}"
    except (OSError, nats.errors.Error, TimeoutError) as exc:
        return (
            f"{stream} not made now (the hubs do not answer: {exc!r}); `coopnet federation up`"
            " or `coopnet federation streams` makes it before the node can publish"
        )
    return f"{stream} made"


async def _any_hub_listening(urls: str) -> None:
    """Return once one hub accepts a TCP connection (within 2 s each); OSError if none."""
    for url in urls.split(","):
        parts = urlsplit(url.strip())
        with contextlib.suppress(OSError, TimeoutError):
            with anyio.fail_after(2):
                stream = await anyio.connect_tcp(parts.hostname or "127.0.0.1", parts.port or 4222)
            await stream.aclose()
            return
    raise OSError(f"no hub listens at {urls}")


def _quotas(args: argparse.Namespace) -> Quotas:
    """The `federation init` quota flags (MiB, hours, days) as a Quotas (bytes, seconds)."""
    return Quotas(
        member_bytes=int(args.member_quota_mib * MIB),
        member_msgs=args.member_quota_msgs,
        period_s=int(args.quota_period_hours * 3600),
        bus_bytes=int(args.bus_max_mib * MIB),
        bus_age_s=int(args.bus_max_age_days * 86_400),
        members_max=args.max_members,
    )


def _node_api(root: Path, slug: str, method: str, path: str, body: Any = None) -> Any:
    url_file = fed.neighborhood_dir(root, slug) / API_URL_FILE
    try:
        base = url_file.read_text().strip()
    except FileNotFoundError:
        if not (fed.neighborhood_dir(root, slug) / "node.toml").exists():
            raise OperatorError(
                f"{slug} is not a neighborhood of {root}", "check the slug"
            ) from None
        raise OperatorError(
            f"{slug}'s node is not running",
            f"start it: `coopnet federation up {root}`, or `coopnet federation start {root} "
            f"{slug}` under a running up",
        ) from None
    try:
        r = httpx.request(method, base + path, json=body, timeout=30)
    except httpx.TransportError as exc:
        raise OperatorError(
            f"{slug}'s node at {base} does not answer ({exc})",
            f"is it running? `coopnet federation status {root}` says",
        ) from None
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
            took += await push_account(
                [url], root / "nats" / "sys.creds", account_jwt, tls=fed.client_tls(root, config)
            )
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
    # `federation up` never starts it again (it lets the node stop by itself: its outbox
    # first publishes the retirement).
    retired_marker(root, args.slug).write_text(f"retired at seq {signed['seq']}\n")
    pushed = anyio.run(_revoke, root, fed.node_user(root, args.slug))
    result = {"slug": args.slug, "retired_seq": signed["seq"], "revoked_on": pushed}
    print(json.dumps(result) if args.json else f"{args.slug} retired; credentials revoked")
    return 0


def _cmd_revoke(args: argparse.Namespace) -> int:
    """Cut a member off the bus without its consent: revoke its NATS user (docs/OPERATIONS.md
    §4, "A rogue member"). Its log stays as it is on every node; nothing is signed for it."""
    root = Path(args.federation)
    if not fed.neighborhood_dir(root, args.slug).exists():
        raise ConfigError(f"{args.slug} is not a neighborhood of {root}")
    user = fed.node_user(root, args.slug)
    pushed = anyio.run(_revoke, root, user)
    result = {"slug": args.slug, "user": user, "revoked_on": pushed}
    print(json.dumps(result) if args.json else f"{args.slug}: credentials {user} revoked")
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


_DIR_HELP = "the federation's directory (made by `coopnet federation init`)"


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
    p.add_argument(
        "--neighborhoods", required=True,
        help="founding slugs, comma-separated, e.g. oakley,elmwood,millbrook (each a "
        "lowercase letter then 1-31 lowercase letters, digits or '-')",
    )  # fmt: skip
    p.add_argument("--hubs", type=int, choices=(1, 3), default=1, help="1 server or a cluster")
    p.add_argument(
        "--port", type=int,
        help="first client port (default 4222; a default port that is taken moves to the "
        "next free one, and init says so; a --port that is taken is refused)",
    )  # fmt: skip
    p.add_argument(
        "--force", action="store_true",
        help="DIR holds a federation already: replace it, deleting its keys, every node's "
        "store and its logs (refused while `federation up` runs it)",
    )  # fmt: skip
    p.add_argument("--credit-limit", type=int, default=Policies().credit_limit, help="cents")
    p.add_argument(
        "--quorum-percent", type=int, default=Policies().quorum_percent,
        help="share of members whose consent admits a new one (default %(default)d)",
    )  # fmt: skip
    p.add_argument(
        "--no-sync-always",
        action="store_true",
        help="let JetStream acknowledge before it syncs to disk (faster; can lose "
        "acknowledged writes on power loss: see docs/OPERATIONS.md)",
    )
    p.add_argument("--systemd", action="store_true", help="also write systemd units")
    q, d = p.add_argument_group("bus quotas (docs/OPERATIONS.md §12)"), Quotas()
    q.add_argument(
        "--member-quota-mib", type=float, default=d.member_bytes / MIB, metavar="MIB",
        help="what one member may publish per period, in MiB (default %(default)g)",
    )  # fmt: skip
    q.add_argument(
        "--member-quota-msgs", type=int, default=d.member_msgs, metavar="N",
        help="events one member may publish per period (default %(default)d)",
    )  # fmt: skip
    q.add_argument(
        "--quota-period-hours", type=float, default=d.period_s / 3600, metavar="H",
        help="the period a member's quota counts over (default %(default)g)",
    )  # fmt: skip
    q.add_argument(
        "--bus-max-mib", type=float, default=d.bus_bytes / MIB, metavar="MIB",
        help="the whole bus (COOP stream), oldest dropped first (default %(default)g)",
    )  # fmt: skip
    q.add_argument(
        "--bus-max-age-days", type=float, default=d.bus_age_s / 86_400, metavar="DAYS",
        help="how long the bus keeps an event (default %(default)g)",
    )  # fmt: skip
    q.add_argument(
        "--max-members", type=int, default=d.members_max, metavar="N",
        help="member streams the account's disk is sized for (default %(default)d)",
    )  # fmt: skip
    p.add_argument(
        "--host",
        help="the hubs' address (default 127.0.0.1), or one per hub, comma-separated: what "
        "they listen on and what clients, routes and certificates name",
    )
    tls = p.add_mutually_exclusive_group()
    tls.add_argument(
        "--tls", action="store_true", default=None,
        help="TLS on client, leaf and route links (the default for a cluster or a hub off "
        "loopback: docs/OPERATIONS.md §11)",
    )  # fmt: skip
    tls.add_argument(
        "--no-tls", dest="tls", action="store_false",
        help="plain text (only with every hub on loopback)",
    )  # fmt: skip
    p.add_argument(
        "--tls-name", action="append", default=[], metavar="NAME",
        help="one more DNS name or IP address in the generated hub certificates (repeat)",
    )  # fmt: skip
    p.add_argument("--tls-ca", help="your own CA certificate (PEM) instead of a generated CA")
    p.add_argument("--tls-cert", help="your own hub certificate (PEM), with --tls-ca")
    p.add_argument("--tls-key", help="its private key (PEM, mode 0600), with --tls-ca")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_init)
    p = cmds.add_parser(
        "up",
        help="run the hub(s) and every node here, with a live table",
        description="Check the hubs' ports, start the hub(s), make the streams, start every "
        "neighborhood's node (logs in DIR/logs) and show a live table until Ctrl-C (or "
        "--seconds); then stop everything and say what stopped. `federation stop|start DIR "
        "SLUG` stop and start one neighborhood meanwhile; a retired one is not started.",
    )
    p.add_argument("dir", help=_DIR_HELP)
    p.add_argument("--seconds", type=float, help="stop after this long (default: Ctrl-C)")
    p.set_defaults(func=_cmd_up)
    for name, func, what in (
        ("stop", _cmd_stop, "stop one neighborhood's node under a running `federation up`; "
         "up shows it as stopped and keeps it so until `federation start`"),
        ("start", _cmd_start, "start one neighborhood's node again under a running "
         "`federation up` (after `federation stop`, or after it exited)"),
    ):  # fmt: skip
        p = cmds.add_parser(name, help=what.split(";")[0], description=what[0].upper() + what[1:])
        p.add_argument("dir", help=_DIR_HELP)
        p.add_argument("slug", help="the neighborhood, e.g. oakley")
        p.add_argument("--json", action="store_true", help="print one JSON object")
        p.set_defaults(func=func)
    p = cmds.add_parser("cluster", help="move to a three-server cluster (same keys)")
    p.add_argument("dir", help=_DIR_HELP)
    p.add_argument("--port", type=int, help="first client port (default: the current one)")
    p.add_argument(
        "--no-tls", dest="tls", action="store_false", default=None,
        help="keep plain text (loopback only; a cluster gets TLS by default)",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_cluster)
    p = cmds.add_parser(
        "streams",
        help="make the federation's streams exist on the hubs (idempotent)",
        description="Wait for the hubs, then create (or update) the COOP stream and each "
        "member's stream with the operator's admin user, as `up` does; the systemd units "
        "and container steps run it after the hub starts (docs/OPERATIONS.md §7). Exit 1 "
        "if they are not there within --within seconds.",
    )
    p.add_argument("dir", help=_DIR_HELP)
    p.add_argument(
        "--within", type=float, default=STREAMS_WAIT_S, metavar="SECONDS",
        help="how long to wait for the hubs (default %(default)g)",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_streams)
    p = cmds.add_parser("status", help="hubs and nodes: up, membership, heads, outboxes")
    p.add_argument("dir", help=_DIR_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_status)

    n = sub.add_parser("neighborhood", help="add, retire, re-key a neighborhood (operators)")
    cmds = n.add_subparsers(dest="neighborhood_command", metavar="COMMAND", required=True)
    p = cmds.add_parser("add", help="a new identity, credentials and config; it applies")
    p.add_argument("slug", help="the new neighborhood's slug, e.g. ashgrove")
    p.add_argument("--federation", required=True, help="the federation's directory")
    p.add_argument("--display-name", help="the name residents see (default: from the slug)")
    p.add_argument("--area", default="local", help="a coarse area code, never an address")
    p.add_argument("--about", default="", help="who the neighborhood is (members see it)")
    p.add_argument("--reason", required=True, help="why it wants to join (members see it)")
    p.add_argument("--leaf", action="store_true", help="also a leaf nats-server config")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_add)
    p = cmds.add_parser(
        "ticket",
        help="the admission ticket for a neighborhood that made its own key",
        description="Print (hex) the admission ticket by which this federation's admission "
        "key lets KEY found SLUG's log (PROTOCOL.md §16.6): for a node that made its own "
        "key, such as an outside implementation; its node.founded carries it as `ticket`. "
        "`neighborhood add` does this itself for the identities it makes.",
    )
    p.add_argument("slug", help="the neighborhood's slug, e.g. ashgrove")
    p.add_argument("--key", required=True, help="its Ed25519 public key, 64 hex digits")
    p.add_argument("--federation", required=True, help="the federation's directory")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_ticket)
    p = cmds.add_parser("retire", help="the node signs its retirement; its user is revoked")
    p.add_argument("slug", help="the neighborhood that retires (its node must be running)")
    p.add_argument("--federation", required=True, help="the federation's directory")
    p.add_argument("--reason", default="", help="why it retires (members see it)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_retire)
    p = cmds.add_parser(
        "revoke",
        help="cut a member off the bus (its credentials), without its node",
        description="Revoke a neighborhood's NATS credentials on every hub, without its node "
        "signing anything: for a member that abuses the bus (floods, fills its quota, "
        "uses up connections) and will not retire. Its log stays valid on every node; its "
        "membership is unchanged (members may object to it, PROTOCOL.md §16).",
    )
    p.add_argument("slug", help="the neighborhood's slug")
    p.add_argument("--federation", required=True, help="the federation's directory")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_revoke)
    p = cmds.add_parser("rotate-key", help="rotate a node's key; its credentials follow")
    p.add_argument("slug", help="the neighborhood whose key rotates (its node must be running)")
    p.add_argument("--federation", required=True, help="the federation's directory")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_rotate)
