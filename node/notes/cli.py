"""`coopnet note post|list`: public notes from the command line (through the API).

`note post` prints the signed note's author and seq (`note oakley#2 posted`), and with
`--json` the event as the API returns it (author, seq, id, kind, body…).
"""

from __future__ import annotations

import argparse
import json
import time

from rich.console import Console

from coopnet.node.engine.client import call_api
from coopnet.node.engine.terminal import cell, relative_time, table


def cmd_note(args: argparse.Namespace) -> int:
    if args.action == "post":
        made = call_api(args, "POST", "/notes", {"text": args.text})
        if args.json:
            print(json.dumps(made))
        else:
            print(f"note {made['author']}#{made['seq']} posted (event {made['id'][:16]}…)")
        return 0
    notes = call_api(args, "GET", f"/notes?limit={args.limit}")
    if args.json:
        print(json.dumps(notes))
        return 0
    out = table("Notes, newest first", "from", "when", "note", whole=("from",))
    now = int(time.time() * 1000)
    for n in notes:  # the text is another neighborhood's: safe, never markup (PROTOCOL.md §18)
        out.add_row(cell(f"{n['author']}#{n['seq']}"), cell(relative_time(n["at"], now)),
                    cell(n["text"]))  # fmt: skip
    Console().print(out)
    return 0


def add_note_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", required=True, help="the node's data directory (node running)")
        p.add_argument("--json", action="store_true", help="print JSON")

    note = sub.add_parser("note", help="post and read public notes")
    acts = note.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = acts.add_parser("post", help="post a public note to the federation")
    p.add_argument("text", help="the note (short, public: no personal data)")
    common(p)
    p = acts.add_parser("list", help="notes from every neighborhood, newest first")
    p.add_argument("--limit", type=int, default=50, help="how many (1-500, default 50)")
    common(p)
    note.set_defaults(func=cmd_note)
