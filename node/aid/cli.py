"""`coopnet aid|alert`: mutual aid and crisis alerts from the command line (through the API).

What a command creates, it prints with its id (`request r-1a2b3c4d raised …`); with
`--json`, the thing as the API lists it and its `id`. Times read as people say them
("needed in 1 d", "15 min ago").
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from coopnet.node.engine.client import ApiError, call_api
from coopnet.node.engine.config import read_config
from coopnet.node.engine.terminal import cell, relative_time, span_text, stacked, table
from coopnet.protocol.aid import AID_CATEGORIES, URGENCIES

ALERT_KINDS = ("storm", "outage", "flood", "heat", "cold", "fire", "water", "other")
DONE = {"fulfil": "fulfilled", "withdraw": "withdrawn", "escalate": "escalated to the federation"}


def _out(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data) if args.json else text)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _requests(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = call_api(args, "GET", "/aid/requests?all=true")
    return rows


def _the_request(args: argparse.Namespace, request: str, requester: str | None) -> dict[str, Any]:
    """The call for help `request` (of `requester`, if named) this node knows; ApiError
    `not_found` or `ambiguous` with a hint otherwise."""
    found = [
        r
        for r in _requests(args)
        if r["request"] == request and requester in (None, r["requester"])
    ]
    hint = f"`coopnet aid list --all --data {args.data}` lists them"
    if not found:
        raise ApiError(404, "not_found", f"no call for help {request} known here: {hint}")
    if len(found) > 1:
        raise ApiError(409, "ambiguous", f"{request} names several calls for help: name the"
                       f" requester (`coopnet aid {args.action} REQUESTER {request}`)")  # fmt: skip
    return found[0]


def _window(args: argparse.Namespace, urgency: str) -> str:
    """When the federation is asked, for a request of `urgency` (node.toml's windows)."""
    config = read_config(Path(args.data))
    seconds = getattr(config, f"escalate_{urgency}_s", None)
    if not isinstance(seconds, int):
        return "kept in the neighborhood (this urgency is never escalated by itself)"
    return (
        "kept in the neighborhood; the federation is asked if it is short of pledges after"
        f" {span_text(seconds * 1000)} (or now: `coopnet aid escalate`)"
    )


def cmd_aid(args: argparse.Namespace) -> int:
    a = args.action
    if a == "request":
        body = {
            "category": args.category, "urgency": args.urgency, "quantity": args.quantity,
            "description": args.description, "needed_in_minutes": args.needed_in,
            "escalate_now": args.escalate_now,
        }  # fmt: skip
        rid = call_api(args, "POST", "/aid/requests", body)["id"]
        mine = [x for x in _requests(args) if x["request"] == rid]
        r = mine[0] if mine else {**body, "request": rid, "needed_by": _now_ms()
                                  + args.needed_in * 60_000}  # fmt: skip
        where = (
            "asked of the whole federation" if args.escalate_now else _window(args, args.urgency)
        )
        _out(args, {**r, "id": rid},
             f"request {rid} raised ({args.urgency}, {args.category}, {args.quantity} needed,"
             f" needed {relative_time(r['needed_by'], _now_ms())}): {where}")  # fmt: skip
    elif a == "pledge":
        r = _the_request(args, args.request, args.requester)
        body = {"what": args.what, "quantity": args.quantity}
        path = f"/aid/requests/{r['requester']}/{args.request}/pledges"
        pid = call_api(args, "POST", path, body)["id"]
        again = [x for x in _requests(args) if (x["requester"], x["request"]) == (
            r["requester"], args.request)]  # fmt: skip
        pledges = again[0]["pledges"] if again else []
        made = next((p for p in pledges if p["pledge"] == pid), body)
        _out(args, {**made, "id": pid, "requester": r["requester"], "request": args.request},
             f"pledge {pid} made to {r['requester']}'s request {args.request}: {args.what}"
             f" ({args.quantity}); {r['requester']} accepts it with"
             f" `coopnet aid accept {args.request} {pid}`")  # fmt: skip
    elif a == "accept":
        pledger = args.pledger
        if pledger is None:
            r = _the_request(args, args.request, None)
            found = [p for p in r["pledges"] if p["pledge"] == args.pledge]
            if len(found) != 1:
                raise ApiError(404, "not_found", f"no single pledge {args.pledge} to request "
                               f"{args.request}: name the pledger (`coopnet aid accept "
                               f"{args.request} PLEDGER {args.pledge}`)")  # fmt: skip
            pledger = found[0]["pledger"]
        body = {"pledger": pledger, "pledge": args.pledge}
        done = call_api(args, "POST", f"/aid/requests/{args.request}/accept", body)
        _out(
            args,
            {**done, "request": args.request, "pledger": pledger, "pledge": args.pledge},
            f"pledge {args.pledge} of {pledger} accepted for request {args.request}",
        )
    elif a in DONE:
        done = call_api(args, "POST", f"/aid/requests/{args.request}/{a}")
        _out(args, {**done, "request": args.request}, f"request {args.request} {DONE[a]}")
    else:
        rows = call_api(args, "GET", "/aid/requests" + ("?all=true" if args.all else ""))
        if args.json:
            print(json.dumps(rows))
            return 0
        Console().print(requests_table(rows, _now_ms()))
    return 0


def requests_table(rows: list[dict[str, Any]], now_ms: int) -> Table:
    """Calls for help as a table for people: each request's id in full (and who asked, under
    it), its description wrapped (never cut), and times as durations ("in 1 d",
    "15 min ago"); `now_ms` is the clock they are read against (ms since the epoch)."""
    out = table("Calls for help, most urgent first", "request", "urgency", "what is needed",
                "pledged\nneeded", "state",
                whole=("request", "urgency", "pledged\nneeded"))  # fmt: skip
    for r in rows:
        state = r["state"].replace("_", " ") + (", federation" if r["escalated"] else "")
        out.add_row(  # event text: safe, never markup (PROTOCOL.md §18)
            stacked(r["request"], f"from {r['requester']}"),
            stacked(r["urgency"], r["category"]),
            cell(r["description"]),
            stacked(f"{r['pledged']} of {r['quantity']}", relative_time(r["needed_by"], now_ms)),
            cell(state),
        )
    return out


def cmd_alert(args: argparse.Namespace) -> int:
    if args.action == "raise":
        body = {"kind": args.kind, "severity": args.severity, "advice": args.advice}
        aid = call_api(args, "POST", "/alerts", body)["id"]
        alerts = call_api(args, "GET", "/alerts?all=true")
        made = next((x for x in alerts if x["alert"] == aid), body)
        advice = f": {args.advice}" if args.advice else ""
        _out(args, {**made, "id": aid}, f"alert {aid} raised ({args.severity} {args.kind}){advice}")
    elif args.action == "resolve":
        done = call_api(args, "POST", f"/alerts/{args.alert}/resolve")
        _out(args, {**done, "alert": args.alert}, f"alert {args.alert} resolved")
    else:
        rows = call_api(args, "GET", "/alerts" + ("?all=true" if args.all else ""))
        if args.json:
            print(json.dumps(rows))
            return 0
        out = table("Alerts", "alert", "from", "severity", "kind", "advice", "raised", "state",
                    whole=("alert", "from"))  # fmt: skip
        now = _now_ms()
        for r in rows:
            state = "resolved" if r["resolved_at"] else "open"
            row = (r["alert"], r["author"], r["severity"], r["kind"], r["advice"],
                   relative_time(r["raised_at"], now), state)  # fmt: skip
            out.add_row(*map(cell, row))  # the advice is free text (PROTOCOL.md §18)
        Console().print(out)
    return 0


def add_aid_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", required=True, help="the node's data directory (node running)")
        p.add_argument("--json", action="store_true", help="print JSON")

    request_id = "the request's id, as `aid request` or `aid list` prints it"
    aid = sub.add_parser("aid", help="ask for help, pledge, accept, fulfil (Call 4 Help)")
    acts = aid.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = acts.add_parser("request", help="ask for help: the neighborhood first, then everyone")
    p.add_argument("description", help="what is needed (at most 280 characters, no personal data)")
    p.add_argument("--category", required=True, choices=AID_CATEGORIES, help="the kind of help")
    p.add_argument("--urgency", required=True, choices=URGENCIES,
                   help="how soon the federation is asked: node.toml's windows")  # fmt: skip
    p.add_argument("--quantity", type=int, default=1, help="units or people (default 1)")
    p.add_argument("--needed-in", type=int, default=24 * 60, help="minutes (default 1440: 1 d)")
    p.add_argument("--escalate-now", action="store_true", help="ask the federation at once")
    common(p)
    p = acts.add_parser(
        "pledge",
        help="pledge help to a request; prints the pledge's id",
        description="Pledge help: `coopnet aid pledge REQUEST --what …` (the requesting "
        "neighborhood is found from the request; `REQUESTER REQUEST` works too).",
    )
    p.add_argument("requester", nargs="?", help="the requesting neighborhood (optional)")
    p.add_argument("request", help=request_id)
    p.add_argument("--what", required=True, help="what you offer, e.g. '2 hot meals'")
    p.add_argument("--quantity", type=int, default=1, help="how much of the need it covers")
    common(p)
    p = acts.add_parser(
        "accept",
        help="accept a pledge to one of our requests",
        description="Accept a pledge: `coopnet aid accept REQUEST PLEDGE` (the pledging "
        "neighborhood is found from the pledge; `REQUEST PLEDGER PLEDGE` works too).",
    )
    p.add_argument("request", help=request_id)
    p.add_argument("pledger", nargs="?", help="the pledging neighborhood (optional)")
    p.add_argument("pledge", help="the pledge's id, as `aid pledge` printed it")
    common(p)
    for name, text in (
        ("fulfil", "confirm one of our requests was met"),
        ("withdraw", "withdraw one of our requests"),
        ("escalate", "ask the whole federation now"),
    ):
        p = acts.add_parser(name, help=text)
        p.add_argument("request", help=request_id)
        common(p)
    p = acts.add_parser("list", help="open requests, most urgent and nearest first")
    p.add_argument("--all", action="store_true", help="closed ones too")
    common(p)
    aid.set_defaults(func=cmd_aid)

    alert = sub.add_parser("alert", help="raise, resolve and list crisis alerts")
    acts = alert.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = acts.add_parser("raise", help="warn the federation (storm, outage, flood, heat…)")
    p.add_argument("kind", choices=ALERT_KINDS, help=f"what happens: {', '.join(ALERT_KINDS)}")
    p.add_argument("--severity", choices=("info", "warning", "danger"), default="warning",
                   help="how serious (default warning)")  # fmt: skip
    p.add_argument("--advice", default="", help="what people should do")
    common(p)
    p = acts.add_parser("resolve", help="resolve one of our alerts")
    p.add_argument("alert", help="the alert's id, as `alert raise` printed it")
    common(p)
    p = acts.add_parser("list", help="open alerts, most severe first")
    p.add_argument("--all", action="store_true", help="resolved ones too")
    common(p)
    alert.set_defaults(func=cmd_alert)
