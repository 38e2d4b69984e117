"""`coopnet federation init|cluster|streams`: the operator makes a federation, moves it
to a cluster, and makes its streams exist (docs/OPERATIONS.md). The `federation` command's
other subcommands are deploy/cli_up.py's (`up|stop|start|status`); the `neighborhood`
command is deploy/cli_neighborhood.py's. A failure the operator can act on is a
ConfigError with a hint, which deploy/cli.py prints as one line.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import shutil
import sys
import urllib.parse
from pathlib import Path
from typing import Any, NoReturn

import anyio
import httpx
import msgspec
import nats.errors
from rich.console import Console

from coopnet.deploy import federation as fed
from coopnet.deploy.cli_neighborhood import add_neighborhood_commands
from coopnet.deploy.cli_up import DIR_HELP, add_up_commands
from coopnet.deploy.control import open_files_under, running_up
from coopnet.deploy.nats_config import TlsFiles
from coopnet.deploy.ports import choose_free_ports
from coopnet.deploy.quotas import MIB, Quotas
from coopnet.node.engine.bus import STREAM
from coopnet.node.engine.client import API_URL_FILE
from coopnet.node.engine.config import ConfigError
from coopnet.protocol.charter import (
    DEFAULT_CURRENCY,
    CharterError,
    Currency,
    Policies,
    canonical_bytes,
)
from coopnet.protocol.hours import DEFAULT_HOURS_LIMIT, hours_text, parse_hours

DEFAULT_PORT = 4222  # the usual NATS client port; `init` moves it if it is taken


def _hours_limit(text: str) -> int:
    """`--hours-limit HOURS` (quarter steps: 40, 12.5, 2.25) in quarter hours, as the
    charter holds it (PROTOCOL.md §20). Raises ConfigError for anything else."""
    try:
        return parse_hours(text)
    except ValueError as exc:
        raise ConfigError(f"--hours-limit: {exc} (not_quarter_hours)") from None


def _cmd_init(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    slugs = [s.strip() for s in args.neighborhoods.split(",") if s.strip()]
    for slug in slugs:  # first: a slug is the likeliest mistake
        fed.check_slug(slug)
    currency = _currency(args)
    own_tls = [args.tls_ca, args.tls_cert, args.tls_key]
    if any(own_tls) and not all(own_tls):
        raise ConfigError("--tls-ca, --tls-cert and --tls-key go together")
    hosts = [h.strip() for h in (args.host or "").split(",") if h.strip()]
    if args.port is not None:
        fed.check_base_port(args.port, args.hubs)
    base = DEFAULT_PORT if args.port is None else args.port
    per_hub = hosts * args.hubs if len(hosts) == 1 else hosts or ["127.0.0.1"] * args.hubs
    ports, moved = fed.default_ports(base, args.hubs), list[dict[str, Any]]()
    if len(per_hub) == args.hubs:  # else plan_federation refuses --host; check nothing
        ports, moved = choose_free_ports(ports, per_hub, keep_client=args.port is not None)
    # Every argument checked, keys and charter made, before the old federation is touched.
    plan = fed.plan_federation(
        name=args.name, slugs=slugs, hubs=args.hubs, base_port=base, ports=ports,
        policies=Policies(credit_limit=args.credit_limit, quorum_percent=args.quorum_percent,
                          hours_limit=_hours_limit(args.hours_limit)),
        sync_always=not args.no_sync_always, hosts=hosts, tls=args.tls,
        tls_files=TlsFiles(*own_tls) if all(own_tls) else None, tls_names=args.tls_name,
        quotas=_quotas(args), currency=currency,
    )  # fmt: skip
    aside = _set_aside_or_refuse(root, force=args.force)
    try:
        config = anyio.run(fed.write_planned, root, plan)
    except BaseException:
        if aside is not None:
            _put_back(root, aside)
        raise
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
        "replaced": aside is not None,
        "set_aside": str(aside) if aside else None,
        "tls": config.tls,
        "neighborhoods": slugs,
        "systemd_units": units,
        # What amounts are counted in (PROTOCOL.md §16.1): the charter's, or the default.
        "currency": msgspec.structs.asdict(currency or DEFAULT_CURRENCY),
    }
    if args.json:
        print(json.dumps(result))
        return 0
    console = Console(highlight=False, soft_wrap=True)  # paths whole, to copy
    if aside is not None:
        console.print(
            f"replaced the federation that was in {root} (--force); the old one is kept, "
            f"whole, in {aside}"
        )
    for m in moved:
        held = f" by {m['held_by']}" if m["held_by"] else ""
        console.print(
            f"port {m['wanted']} (hub {m['role']} port) is taken{held}: using {m['used']}"
        )
    console.print(f"[bold]{args.name}[/]: federation id (net) {net}")
    console.print(f"  NATS          {config.urls}")
    console.print(f"  currency      {_say_currency(currency)}")
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


# The --currency-* flags by Currency field, and what each must be (PROTOCOL.md §16.1).
_CURRENCY_FLAGS = {
    "code": ("--currency-code", "three capital letters, e.g. RVP"),
    "name": ("--currency-name", "1-40 characters, e.g. 'Riverside pounds'"),
    "symbol": ("--currency-symbol", "at most 8 characters, e.g. £"),
    "minor_units": ("--minor-units", "the decimal places of amounts, 0-4"),
}


def _currency(args: argparse.Namespace) -> Currency | None:
    """The charter's currency from `federation init`'s --currency-code, --currency-name,
    --currency-symbol and --minor-units (those not given: DEFAULT_CURRENCY's); None when
    none is given, and the charter names none (which means DEFAULT_CURRENCY, §16.1).
    Raises ConfigError naming the flag whose value PROTOCOL.md §16.1 refuses."""
    given = {
        "code": args.currency_code, "name": args.currency_name,
        "symbol": args.currency_symbol, "minor_units": args.minor_units,
    }  # fmt: skip
    if all(value is None for value in given.values()):
        return None
    value = msgspec.structs.asdict(DEFAULT_CURRENCY) | {
        k: v for k, v in given.items() if v is not None
    }
    for field in ("name", "symbol"):
        try:
            canonical_bytes(value[field])  # a charter holds no control characters (§16.1)
        except CharterError:
            _refuse_currency(field, value, "no control characters")
    try:
        return msgspec.convert(value, Currency)
    except msgspec.ValidationError as exc:
        if "`$." in str(exc):  # a type or length: "... - at `$.code`"
            _refuse_currency(str(exc).rsplit("`$.", 1)[-1].rstrip("`"), value)
        # A rule of Currency's own (its message says which, and cites §16.1): the flag
        # is the first given field that DEFAULT_CURRENCY refuses alone.
        rule = str(exc).removesuffix(" (PROTOCOL.md §16.1)")
        for field, alone in given.items():
            try:
                if alone is not None:
                    msgspec.convert(
                        msgspec.structs.asdict(DEFAULT_CURRENCY) | {field: alone}, Currency
                    )
            except msgspec.ValidationError:
                _refuse_currency(field, value, rule)
        _refuse_currency("code", value, rule)


def _refuse_currency(field: str, value: dict[str, Any], rule: str = "") -> NoReturn:
    """A ConfigError naming the flag of Currency's `field` and what it must be."""
    flag, must = _CURRENCY_FLAGS.get(field, ("--currency-code", _CURRENCY_FLAGS["code"][1]))
    raise ConfigError(
        f"{flag} {value.get(field)!r} is refused: {rule or must} (PROTOCOL.md §16.1)",
        "e.g. --currency-code RVP --currency-name 'Riverside pounds' --currency-symbol £",
    )


def _say_currency(currency: Currency | None) -> str:
    """The currency as `init` prints it: "Riverside pounds (RVP, £, 2 decimal places)"."""
    c = currency or DEFAULT_CURRENCY
    symbol = f", {c.symbol}" if c.symbol else ""
    default = "; the default" if currency is None else ""
    return f"{c.name} ({c.code}{symbol}, {c.minor_units} decimal places{default})"


# What `federation init` writes into DIR (deploy/federation.py): all that --force sets aside.
FEDERATION_ENTRIES = (
    "charter.json", "charter.net", "federation.toml", "admission.key",
    "nats", "neighborhoods", "observer", "run", "logs", "systemd",
)  # fmt: skip

# Where --force puts the federation it replaces: DIR/replaced-<UTC time>/.
SET_ASIDE_PREFIX = "replaced-"


def _set_aside_or_refuse(root: Path, *, force: bool) -> Path | None:
    """A directory that holds a federation already: refused (ConfigError with a hint), or
    with `force` its entries (FEDERATION_ENTRIES; other files stay) moved into
    DIR/replaced-<UTC time>/. Returns that folder, or None when `root` held no federation.

    Set aside, never deleted: the keys and the nodes' stores are the co-operatives' own,
    and the usual reason to init again (wrong slugs or ports) does not need them gone.
    Inside DIR rather than beside it: a rename on one file system (no copy of the stores,
    nothing half-moved), which needs only DIR to be writable (as init does), and the old
    federation stays with the directory the operator backs up. Refused while anything runs
    it (`_refuse_while_running`)."""
    if not ((root / "charter.json").exists() or (root / "federation.toml").exists()):
        return None
    if not force:
        raise ConfigError(
            f"{root} already holds a federation",
            f"`coopnet federation up {root}` runs it; `coopnet federation init {root} --force "
            f"...` replaces it, keeping the old one in {root}/{SET_ASIDE_PREFIX}<UTC time>/",
        )
    _refuse_while_running(root)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    aside, n = root / f"{SET_ASIDE_PREFIX}{stamp}", 1
    while aside.exists():
        n += 1
        aside = root / f"{SET_ASIDE_PREFIX}{stamp}-{n}"
    aside.mkdir()
    try:
        for name in FEDERATION_ENTRIES:
            if (root / name).exists() or (root / name).is_symlink():
                (root / name).rename(aside / name)
    except OSError as exc:
        _put_back(root, aside)
        raise ConfigError(
            f"the federation in {root} could not be set aside ({exc}); nothing was replaced",
            f"check that {root} is writable",
        ) from None
    return aside


def _put_back(root: Path, aside: Path) -> None:
    """Undo `_set_aside_or_refuse` after the new federation failed to be written: what the
    failed init wrote is removed (it was new, and holds nothing), the old entries return."""
    for name in FEDERATION_ENTRIES:
        if not (aside / name).exists() and not (aside / name).is_symlink():
            continue
        new = root / name
        if new.is_dir() and not new.is_symlink():
            shutil.rmtree(new)
        else:
            new.unlink(missing_ok=True)
        (aside / name).rename(new)
    with contextlib.suppress(OSError):
        aside.rmdir()


def _refuse_while_running(root: Path) -> None:
    """ConfigError (naming who, and how to stop it) if a part of the federation in `root`
    runs: a `federation up` of it, a node answering on its API (DATA/api.url, as systemd
    runs them), or any process holding one of its files open (a node's store, a hub's
    JetStream files)."""
    pid = running_up(root)
    if pid is not None:
        raise ConfigError(
            f"`coopnet federation up` runs {root} (pid {pid}): it is not replaced",
            "stop it first (Ctrl-C in its terminal)",
        )
    for slug in fed.neighborhoods(root) if (root / "neighborhoods").is_dir() else []:
        url_file = fed.neighborhood_dir(root, slug) / API_URL_FILE
        try:
            url = url_file.read_text().strip()
            httpx.get(url + "/status", timeout=2)
        except (OSError, httpx.HTTPError, ValueError):
            continue  # no api.url, or a stale one (a node that crashed): nothing answers
        raise ConfigError(
            f"{slug}'s node answers at {url}: the federation in {root} runs, it is not replaced",
            f"stop it first (`systemctl stop coopnet-node@{slug}`, or Ctrl-C the `federation "
            f"up`); if that is not its node, delete {url_file}",
        )
    for pid, program, path in open_files_under(root):
        if path.relative_to(root.resolve()).parts[0] in FEDERATION_ENTRIES:
            raise ConfigError(
                f"{program} (pid {pid}) holds {path} open: the federation in {root} runs, "
                "it is not replaced",
                f"stop it first (its systemd unit, or `kill {pid}`), then init --force again",
            )


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
        help="DIR holds a federation already: replace it, once every other argument is "
        "checked; the old one (keys, every node's store, logs) is moved whole into "
        "DIR/replaced-<UTC time>/ (refused while `federation up`, a node or a hub runs it)",
    )  # fmt: skip
    p.add_argument(
        "--credit-limit", type=int, default=Policies().credit_limit, metavar="CENTS",
        help="how far below zero each co-op may go, in the currency's minor units (cents; "
        "default %(default)d)",
    )  # fmt: skip
    p.add_argument(
        "--hours-limit", default=hours_text(DEFAULT_HOURS_LIMIT).removesuffix(" h"),
        metavar="HOURS",
        help="how many hours each neighborhood may owe the others in the time bank, in "
        "quarter steps (e.g. 40, 12.5; default %(default)s; written to the charter only "
        "when not the default)",
    )  # fmt: skip
    c = p.add_argument_group("the currency amounts are counted in (PROTOCOL.md §16.1)")
    c.add_argument("--currency-code", metavar="CODE", help="three capital letters, default CRD")
    c.add_argument("--currency-name", metavar="NAME", help="1-40 characters, default credits")
    c.add_argument("--currency-symbol", metavar="SYMBOL", help="e.g. £, default none")
    c.add_argument("--minor-units", type=int, metavar="N", help="decimal places 0-4, default 2")
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
    add_up_commands(cmds)
    p = cmds.add_parser("cluster", help="move to a three-server cluster (same keys)")
    p.add_argument("dir", help=DIR_HELP)
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
    p.add_argument("dir", help=DIR_HELP)
    p.add_argument(
        "--within", type=float, default=STREAMS_WAIT_S, metavar="SECONDS",
        help="how long to wait for the hubs (default %(default)g)",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_streams)

    add_neighborhood_commands(sub)
