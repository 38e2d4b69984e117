"""`coopnet hours …`: the time bank from the command line (through the node's API).

People type and read hours in quarter steps ("1.5", "2.25", "3"); anything else is
refused with `not_quarter_hours` before the node is asked. With `--json`, amounts are the
API's integer quarter hours (an hour is 4). What a command creates it prints with its id
(`time entry h-7f3a2c1d recorded …`, `transfer x-1a2b3c4d signed …`).

The CLI speaks as the node's operator (a coordinator with no time account of its own);
`--token` (or $COOPNET_TOKEN) speaks as a resident instead, with an API token of their
account (made in the app), for what only they may do: `me`, `record`, `confirm`, `decline`.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from rich.console import Console
from rich.text import Text

from coopnet.node.engine.client import ApiError, call_api
from coopnet.node.engine.config import ConfigError
from coopnet.node.engine.terminal import cell, table
from coopnet.node.timebank.bank import new_id
from coopnet.protocol.hours import QUARTERS_PER_HOUR, hours_text, parse_hours

QUARTERS_NOTE = " (amounts in integer quarter hours: an hour is 4)"


MAX_QUARTERS = 10_000 * QUARTERS_PER_HOUR  # the API's bound on one entry or transfer
QUARTER_STEPS = "type hours in quarter steps: .25, .5, 1.5, 2.25, 3"


def _refused(code: str, message: str, hint: str) -> ApiError:
    """The ApiError the node would answer, said before asking it; deploy/cli.py prints
    its `hint` after it."""
    exc = ApiError(400, code, message)
    exc.hint = hint  # type: ignore[attr-defined]
    return exc


def quarters_of(text: str) -> int:
    """Hours typed by a person → quarter hours; ApiError `not_quarter_hours` (400) for
    anything but a positive number of quarter hours, `bad_request` beyond the 10,000 hours
    one entry or transfer may hold (the API's bound, said in hours)."""
    try:
        quarters = parse_hours(text)
    except ValueError as exc:
        raise _refused("not_quarter_hours", str(exc), QUARTER_STEPS) from None
    if quarters < 1:
        raise _refused(
            "not_quarter_hours", f"{text!r}: at least a quarter hour (0.25)", QUARTER_STEPS
        )
    if quarters > MAX_QUARTERS:
        raise _refused(
            "bad_request",
            f"{text!r} hours: at most {hours_text(MAX_QUARTERS)} at once",
            "split larger amounts over several entries or transfers",
        )
    return quarters


def _call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    """`call_api`, with `--token` as the resident whose API token it is."""
    return call_api(args, method, path, body, token=args.token or "")


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data) if args.json else text)


def _entry_text(e: dict[str, Any]) -> str:
    return f"{e['giver']} gave {e['receiver']} {hours_text(e['quarters'])} ({e['what']})"


def _amounts(row: dict[str, Any]) -> list[Text]:
    return [cell(hours_text(row[k])) for k in ("balance", "given", "received")]


def cmd_hours(args: argparse.Namespace) -> int:
    a = args.action
    if a == "me":
        if not args.token:  # the node's CLI is a coordinator, with no time account
            raise ConfigError(
                "`hours me` shows a resident's own hours: the node's CLI has none",
                "pass --token with the resident's API token (made in the app),"
                " or set $COOPNET_TOKEN",
            )
        me = _call(args, "GET", "/hours/me")
        if args.json:
            print(json.dumps(me))
            return 0
        console = Console(highlight=False)
        console.print(cell(
            f"{me['name']}: balance {hours_text(me['balance'])}, debt cap"
            f" {hours_text(me['debt_cap'])}, may still receive {hours_text(me['available'])}"
        ))  # fmt: skip
        out = table("Time entries, newest first", "entry", "giver", "receiver", "hours",
                    "what", "state", whole=("entry", "hours"))  # fmt: skip
        for e in me["entries"]:
            out.add_row(*map(cell, (e["id"], e["giver"], e["receiver"],
                                    hours_text(e["quarters"]), e["what"], e["state"])))  # fmt: skip
        console.print(out)
    elif a == "record":
        if not args.token and not args.giver:
            raise ConfigError(
                "whose hours? the node's CLI has no time account of its own",
                "--token <the giver's API token> records as that resident;"
                " --giver <resident> records for them as a coordinator",
            )
        body = {"receiver": args.to, "quarters": quarters_of(args.hours), "what": args.what}
        body["entry"] = args.id or new_id("h")  # chosen here: a retry is answered once
        if args.giver:
            body["giver"] = args.giver
        e = _call(args, "POST", "/hours/entries", body)
        _emit(args, e, f"time entry {e['id']} recorded: {_entry_text(e)}; pending until"
              f" {e['receiver']} confirms (coopnet hours confirm {e['id']})")  # fmt: skip
    elif a in ("confirm", "decline"):
        e = _call(args, "POST", f"/hours/entries/{args.entry}/{a}")
        _emit(args, e, f"time entry {e['id']} {e['state']}: {_entry_text(e)}")
    elif a == "residents":
        r = _call(args, "GET", "/hours/residents")
        if args.json:
            print(json.dumps(r))
            return 0
        console = Console(highlight=False)
        console.print(cell(f"debt cap {hours_text(r['debt_cap'])}; the balances sum to"
                           f" {hours_text(r['ledger_sum'])}"))  # fmt: skip
        out = table("Residents' hours", "resident", "balance", "given", "received",
                    whole=("resident", "balance"))  # fmt: skip
        for x in r["residents"]:
            out.add_row(cell(x["name"]), *_amounts(x))
        console.print(out)
    elif a == "credit":
        body = {"resident": args.resident, "quarters": quarters_of(args.hours), "what": args.what,
                "entry": args.id or new_id("h")}  # fmt: skip
        e = _call(args, "POST", "/hours/credit", body)
        _emit(args, e, f"time entry {e['id']} credited: {e['giver']} +"
              f"{hours_text(e['quarters'])} from the co-op ({e['what']})")  # fmt: skip
    elif a == "transfer":
        body = {"to": args.neighborhood, "quarters": quarters_of(args.hours),
                "request": args.request, "transfer": args.id or new_id("x")}  # fmt: skip
        t = _call(args, "POST", "/hours/transfers", body)
        answered = f", answering call for help {t['request']}" if t["request"] else ""
        _emit(args, t, f"transfer {t['id']} signed: {hours_text(t['quarters'])} to {t['to']}"
              f"{answered} (event #{t['event']['seq']})")  # fmt: skip
    else:
        n = _call(args, "GET", "/hours/neighborhoods")
        if args.json:
            print(json.dumps(n))
            return 0
        console = Console(highlight=False)
        console.print(cell(
            f"{n['neighborhood']}: hour balance {hours_text(n['balance'])}, hours limit"
            f" {hours_text(n['hours_limit'])}, may still sign {hours_text(n['available'])}"
        ))  # fmt: skip
        out = table(f"Hours between neighborhoods (they sum to {hours_text(n['ledger_sum'])})",
                    "neighborhood", "balance", "given", "received",
                    whole=("neighborhood", "balance"))  # fmt: skip
        for x in n["neighborhoods"]:
            out.add_row(cell(x["neighborhood"]), *_amounts(x))
        console.print(out)
    return 0


def add_hours_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def common(p: argparse.ArgumentParser, *, resident: bool = False) -> None:
        p.add_argument("--data", required=True, help="the node's data directory (node running)")
        p.add_argument("--json", action="store_true", help="print JSON" + QUARTERS_NOTE)
        p.add_argument(
            "--token",
            default=os.environ.get("COOPNET_TOKEN", ""),
            help=(
                "speak as a resident: an API token of their account, made in the app"
                " (default $COOPNET_TOKEN, else the node's CLI: a coordinator"
                + (" with no time account of its own)" if resident else ")")
            ),
        )

    hours = sub.add_parser(
        "hours",
        help="the time bank: residents' hours, and hours between neighborhoods",
        description="Residents give each other hours (an hour is an hour, whatever the "
        "service): the giver records, the receiver confirms; a coordinator credits a "
        "resident from the co-op, and signs hours over to a neighborhood whose residents "
        "helped this one. Hours are typed in quarter steps: 1.5, 2.25, 3.",
    )
    acts = hours.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = acts.add_parser("me", help="my hours: balance, debt cap and entries (needs --token)")
    common(p, resident=True)
    p = acts.add_parser(
        "record",
        help="record hours I gave another resident; prints the entry's id",
        description="Record hours given to another resident: pending until the receiver "
        "confirms. A coordinator may record for another resident with --giver.",
    )
    p.add_argument("hours", help="how long, in quarter steps: 1.5, 2.25, 3")
    p.add_argument("--to", required=True, help="the resident who received the hours")
    p.add_argument("--what", required=True, help="what was done (stays in the neighborhood)")
    p.add_argument("--giver", help="who gave them (a coordinator only; default: me)")
    p.add_argument("--id", help="the entry's id (default: generated, e.g. h-7f3a2c1d)")
    common(p, resident=True)
    for action, text in (
        ("confirm", "confirm hours I received (the receiver only): balances move"),
        ("decline", "decline hours recorded to me (the receiver only)"),
    ):
        p = acts.add_parser(action, help=text)
        p.add_argument("entry", help="the entry's id, as `hours record` or `hours me` prints it")
        common(p, resident=True)
    p = acts.add_parser("residents", help="every resident's hours, and the co-op's (coordinator)")
    common(p)
    p = acts.add_parser(
        "credit", help="credit a resident with hours from the co-op (@coop) (coordinator)"
    )
    p.add_argument("resident", help="the resident's account name")
    p.add_argument("hours", help="how long, in quarter steps: 1.5, 2.25, 3")
    p.add_argument("--what", required=True, help="what for (stays in the neighborhood)")
    p.add_argument("--id", help="the entry's id (default: generated, e.g. h-7f3a2c1d)")
    common(p)
    p = acts.add_parser(
        "transfer",
        help="sign hours over to a neighborhood that helped this one; prints the transfer's id",
        description="Sign hours over to a neighborhood whose residents helped this one "
        "(`hours.transferred`, on the bus): this neighborhood's hour balance goes down, "
        "theirs up, within the charter's hours limit.",
    )
    p.add_argument("neighborhood", help="the neighborhood that gave the help (its slug)")
    p.add_argument("hours", help="how long, in quarter steps: 1.5, 2.25, 3")
    p.add_argument(
        "--request",
        default="",
        help="your own call for help (its id) that the other neighborhood answered",
    )
    p.add_argument("--id", help="the transfer's id (default: generated, e.g. x-7f3a2c1d)")
    common(p)
    p = acts.add_parser("neighborhoods", help="the federation's hour ledger, per neighborhood")
    common(p)
    hours.set_defaults(func=cmd_hours)


__all__ = ["add_hours_commands", "quarters_of"]
