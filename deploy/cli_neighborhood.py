"""`coopnet neighborhood add|ticket|retire|revoke|rotate-key`: a neighborhood joins,
leaves, is cut off the bus, or re-keys (docs/OPERATIONS.md §4). A failure the operator can
act on is a ConfigError with a hint, printed by deploy/cli.py as one line.

`retire` and `rotate-key` ask the neighborhood's running node (its API, whose address is in
its data dir) to sign; then its NATS credentials follow: revoked on every hub, in the
account JWT and in the hub configs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import nats.errors

from coopnet.deploy import federation as fed
from coopnet.deploy.admission import admission_ticket
from coopnet.deploy.control import (
    node_file,
    pid_alive,
    read_pid,
    retired_marker,
    running_up,
    wait_for,
)
from coopnet.deploy.nats_auth import Authority, ClaimsUpdateError, push_account
from coopnet.node.engine.bus import member_stream
from coopnet.node.engine.client import API_TOKEN_FILE, API_URL_FILE
from coopnet.node.engine.config import ConfigError


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


def _node_api(root: Path, slug: str, method: str, path: str, body: Any = None) -> Any:
    """Call `slug`'s running node (its API, as its own CLI does) and return its JSON answer.
    Raises ConfigError with a hint: no such neighborhood, its node not running or not
    answering, or its node refused (`"{slug}'s node refused ({code}): {message}"`, the
    node's error body as node/engine/api.py shapes it)."""
    data = fed.neighborhood_dir(root, slug)
    try:
        base = (data / API_URL_FILE).read_text().strip()
    except FileNotFoundError:
        if not (data / "node.toml").exists():
            raise ConfigError(f"{slug} is not a neighborhood of {root}", "check the slug") from None
        raise ConfigError(
            f"{slug}'s node is not running",
            f"start it: `coopnet federation up {root}`, or `coopnet federation start {root} "
            f"{slug}` under a running up",
        ) from None
    headers: dict[str, str] = {}
    with contextlib.suppress(OSError):  # the node's own OS user on the loopback needs none
        headers["Authorization"] = f"Bearer {(data / API_TOKEN_FILE).read_text().strip()}"
    try:
        r = httpx.request(method, base + path, json=body, headers=headers, timeout=30)
    except httpx.TransportError as exc:
        raise ConfigError(
            f"{slug}'s node at {base} does not answer ({exc})",
            f"is it running? `coopnet federation status {root}` says",
        ) from None
    if r.status_code >= 400:
        code, message = refusal_of(r)
        raise ConfigError(
            f"{slug}'s node refused ({code}): {message}",
            _REFUSAL_HINTS.get(
                code, f"its log may say more: {root / 'logs' / f'{slug}.log'}"
            ).format(root=root, slug=slug, data=data),
        )
    return r.json()


# What to do about a refusal, by its code (`{root}`, `{slug}`, `{data}` filled in).
_REFUSAL_HINTS = {
    "balance_not_settled": "settle first, as the node says; `coopnet trade list --data {data}` "
    "lists its trades; then retire again",
    "not_ready": "the node is still catching up with the bus; try again in a moment "
    "(`coopnet federation status {root}` shows it)",
}


def refusal_of(r: httpx.Response) -> tuple[str, str]:
    """(code, message) of a node's error answer: its JSON body `{"code", "message"}` (or a
    bare `{"detail"}`), else the HTTP status and the text; on one line."""
    try:
        body = r.json()
    except ValueError:
        body = None
    code, message = str(r.status_code), ""
    if isinstance(body, dict):
        code = str(body.get("code") or code)
        message = str(body.get("message") or body.get("detail") or "")
    message = message or r.text.strip() or r.reason_phrase
    return code, " ".join(message.split())


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


# How long `neighborhood retire` waits for the node to stop by itself: it first waits (at
# most 30 s, node/runtime.py RETIRED_FLUSH_S) for its retirement to reach the bus.
RETIRE_WAIT_S = 60.0


def _cmd_retire(args: argparse.Namespace) -> int:
    """The node signs its retirement, publishes it and stops by itself; only then are its
    credentials revoked, so that the retirement reaches the bus first (PROTOCOL.md §16.5)."""
    root, slug = Path(args.federation), args.slug
    fed.check_slug(slug)  # first: a slug is a path under DIR (`../x` is no neighborhood)
    signed = _node_api(root, slug, "POST", "/membership/retire", {"reason": args.reason})
    # `federation up` never starts it again, and shows it as retired once it stopped.
    retired_marker(root, slug).write_text(f"retired at seq {signed['seq']}\n")
    if not args.json:
        print(
            f"{slug} signed its retirement (event #{signed['seq']}); waiting for its node to "
            f"publish it and stop (at most {RETIRE_WAIT_S:g} s)",
            file=sys.stderr,
            flush=True,
        )
    stop = _wait_until_stopped(root, slug, signed)
    pushed = anyio.run(_revoke, root, fed.node_user(root, slug))
    result = {
        "slug": slug, "retired_seq": signed["seq"], "retired_id": signed["id"], **stop,
        "revoked_on": pushed,
    }  # fmt: skip
    if args.json:
        print(json.dumps(result))
        return 0
    if stop["under_up"]:
        pid = f" (pid {stop['pid']})" if stop["pid"] else ""
        how = f"its node{pid} stopped by itself; `federation up` shows it as retired"
    else:
        how = (
            "its node, which no `coopnet federation up` runs here (systemd, or by hand), "
            "stopped by itself (its API closed)"
        )
    print(
        f"{slug} retired (event #{signed['seq']}): {how} and does not start again; "
        f"its NATS credentials are revoked ({len(pushed)} hub(s) took it now)"
    )
    return 0


def _wait_until_stopped(root: Path, slug: str, signed: dict[str, Any]) -> dict[str, Any]:
    """Wait (at most RETIRE_WAIT_S) until `slug`'s node stopped after signing `signed` (its
    retirement): its API address file is gone and, when a `federation up` runs it here, its
    pid has exited. Returns {"under_up", "pid" (None outside up), "waited_s"}. Raises
    ConfigError (credentials not revoked yet) if it did not stop in time."""
    url_file = fed.neighborhood_dir(root, slug) / API_URL_FILE
    under_up = running_up(root) is not None
    pid = read_pid(node_file(root, slug, "pid")) if under_up else None
    started = time.monotonic()
    wait_for(
        lambda: not url_file.exists() and (pid is None or not pid_alive(pid)),
        within=RETIRE_WAIT_S,
        what=f"{slug} signed its retirement (event #{signed['seq']}) but its node did not stop",
        hint=f"its credentials are not revoked yet: its retirement may still wait in its "
        f"outbox for the bus (`coopnet federation status {root}`); once the node stopped, "
        f"`coopnet neighborhood revoke {slug} --federation {root}` revokes them",
    )
    return {"under_up": under_up, "pid": pid, "waited_s": round(time.monotonic() - started, 1)}


def _cmd_revoke(args: argparse.Namespace) -> int:
    """Cut a member off the bus without its consent: revoke its NATS user (docs/OPERATIONS.md
    §4, "A rogue member"). Its log stays as it is on every node; nothing is signed for it."""
    root = Path(args.federation)
    fed.check_slug(args.slug)
    fed.read_federation(root)  # a ConfigError that says so if `root` is no federation
    if not fed.neighborhood_dir(root, args.slug).exists():
        raise ConfigError(
            f"{args.slug} is not a neighborhood of {root}",
            f"its neighborhoods: {', '.join(fed.neighborhoods(root)) or 'none'}",
        )
    user = fed.node_user(root, args.slug)
    pushed = anyio.run(_revoke, root, user)
    result = {"slug": args.slug, "user": user, "revoked_on": pushed}
    print(json.dumps(result) if args.json else f"{args.slug}: credentials {user} revoked")
    return 0


def _cmd_rotate(args: argparse.Namespace) -> int:
    """The node rotates (its log says so), then its credentials follow the new key and the
    old user is revoked: nats-py reads the creds file again when it reconnects."""
    root = Path(args.federation)
    fed.check_slug(args.slug)
    old_user = fed.node_user(root, args.slug)
    rotated = _node_api(root, args.slug, "POST", "/keys/rotate")
    new_user = fed.issue_node_creds(root, args.slug, Authority.load(root))
    pushed = anyio.run(_revoke, root, old_user)
    result = {"slug": args.slug, "seq": rotated["seq"], "key": rotated["key"],
              "nats_user": new_user, "revoked": old_user, "revoked_on": pushed}  # fmt: skip
    print(json.dumps(result) if args.json else f"{args.slug}: key rotated; now {new_user}")
    return 0


def add_neighborhood_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """The `neighborhood` command and its subcommands, into `coopnet`'s subparsers."""
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
    p = cmds.add_parser(
        "retire",
        help="the node signs its retirement and stops; then its user is revoked",
        description="Ask the neighborhood's running node to sign its retirement (refused "
        "until its balance is 0 and no trade of its is open: PROTOCOL.md §16.5), wait (at "
        f"most {RETIRE_WAIT_S:g} s) until the node has published it and stopped by itself, "
        "then revoke its NATS credentials on every hub. `federation up` does not start it "
        "again.",
    )
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
