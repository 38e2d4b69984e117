"""`coopnet node backup|restore`: a node's store copied (checked) and put back
(node/engine/backup.py; docs/OPERATIONS.md, "Backups")."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import msgspec

from coopnet.node.engine.backup import BackupError, CopyFacts, backup, restore
from coopnet.node.engine.config import NodeConfig, read_charter, read_config, read_identity

# The advice a BackupError's message ends with (node/engine/backup.py), shown as the hint.
_ADVICE = (": choose another name", ": stop it first", ": is ")


def _refused(args: argparse.Namespace, what: str, exc: BackupError) -> int:
    """One line on stderr, `error: <what> refused: <why> (hint: <what to do>)`, as every
    command's failure (deploy/cli.py), and the same as JSON on stdout with --json; exit 1."""
    message = str(exc)
    if args.json:
        print(json.dumps({"code": f"{what}_refused", "message": message}))
    why, hint = message, f"see `coopnet node {what} --help`"
    for advice in _ADVICE:
        at = message.find(advice)
        if at > 0:
            why, hint = message[:at], message[at + 2 :]
            break
    print(f"error: {what} refused: {why} (hint: {hint})", file=sys.stderr)
    return 1


def _facts_text(f: CopyFacts) -> str:
    return (
        f"{f.path}: {f.bytes} bytes, {f.slug}'s head #{f.head_seq} ({f.head_id}), "
        f"{f.events} events of {f.authors} neighborhoods; checked (integrity, every log "
        "verified to its head, identity)"
    )


def _charter(data: Path, config: NodeConfig) -> tuple[dict[str, bytes], bytes | None]:
    """The charter's founder keys (by slug) and admission key (32 bytes, or None), which
    `backup` and `restore` verify every log under, as the node does."""
    charter = read_charter(data, config)
    if charter is None:
        return {}, None
    return charter.founder_keys(), charter.admission_public_key()


def _cmd_backup(args: argparse.Namespace) -> int:
    data, out = Path(args.data), Path(args.out)
    config = read_config(data)
    key = read_identity(data, config.slug).public_key
    founders, admission = _charter(data, config)
    try:
        facts = backup(data, out, net=config.net_bytes, slug=config.slug, key=key,
                       force=args.force, charter_keys=founders,
                       admission_key=admission)  # fmt: skip
    except BackupError as exc:
        return _refused(args, "backup", exc)
    if args.json:
        print(json.dumps(msgspec.to_builtins(facts)))
    else:
        print(f"wrote {_facts_text(facts)}")
        print("the key files are not in it: keep node.key and node.next.key where they are")
    return 0


def _cmd_restore(args: argparse.Namespace) -> int:
    data, source = Path(args.data), Path(args.source)
    config = read_config(data)
    key = read_identity(data, config.slug).public_key
    founders, admission = _charter(data, config)
    try:
        done = restore(data, source, net=config.net_bytes, slug=config.slug, key=key,
                       charter_keys=founders, admission_key=admission)  # fmt: skip
    except BackupError as exc:
        return _refused(args, "restore", exc)
    if args.json:
        print(json.dumps(msgspec.to_builtins(done)))
        return 0
    print(f"restored {_facts_text(done.copy)}")
    if done.set_aside:
        print(f"the replaced store is kept as {done.set_aside}")
    print(
        f"start the node (coopnet node run --data {data}): before it signs anything it "
        "recovers from the bus and its peers what it published after this copy was made"
    )
    return 0


def add_backup_commands(cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`backup` and `restore` under `coopnet node`."""
    p = cmds.add_parser(
        "backup",
        help="copy the node's store, safely while it runs, and check the copy",
        description="Copy DATA/node.db with SQLite's online backup (the node may be running), "
        "then check the copy: integrity, every neighborhood's log verified up to its head as "
        "the node verifies what it receives, the node's identity. The copy is one file, "
        "mode 0600, written outside the data directory (OUT.db inside it is refused, "
        "--force or not). The key files are not in it: they "
        "stay in the data directory (back them up apart, as secrets, if at all).",
    )
    p.add_argument("out", metavar="OUT.db", help="the file to write (refused if it exists)")
    p.add_argument("--data", required=True, help="the node's data directory")
    p.add_argument("--force", action="store_true", help="replace OUT.db if it exists")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_backup)

    p = cmds.add_parser(
        "restore",
        help="put a checked copy back in place of the node's store (node stopped)",
        description="Replace DATA/node.db with a copy made by `coopnet node backup` (or any "
        "copy of this node's store), once it is checked as `backup` checks it. Refused while "
        "the node runs, and for a copy of another identity (slug, key, federation). The "
        "replaced store is kept as node.db.before-restore-<time>, and the node rebuilds every "
        "table derived from the log at its next start. At its next start the node "
        "recovers what it published after the copy was made before it signs anything, so it "
        "never forks itself (do not start it with --trust-local-head).",
    )
    p.add_argument("source", metavar="FROM.db", help="the copy to restore")
    p.add_argument("--data", required=True, help="the node's data directory")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_restore)


__all__ = ["add_backup_commands"]
