"""`coopnet aid|alert`: mutual aid and crisis alerts from the command line (through the API)."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from coopnet.node.engine.client import call_api
from coopnet.node.engine.terminal import cell
from coopnet.protocol.aid import AID_CATEGORIES, URGENCIES

ALERT_KINDS = ("storm", "outage", "flood", "heat", "cold", "fire", "water", "other")


def _out(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data) if args.json else text)


def _minutes_left(ms: int) -> str:
    left = (ms - time.time() * 1000) / 60_000
    return f"{left:.0f} min" if left >= 0 else "past"


def cmd_aid(args: argparse.Namespace) -> int:
    a = args.action
    if a == "request":
        body = {
            "category": args.category, "urgency": args.urgency, "quantity": args.quantity,
            "description": args.description, "needed_in_minutes": args.needed_in,
            "escalate_now": args.escalate_now,
        }  # fmt: skip
        r = call_api(args, "POST", "/aid/requests", body)
        where = "the federation" if args.escalate_now else "the neighborhood (for now)"
        _out(args, r, f"request {r['id']} raised in {where}")
    elif a == "pledge":
        body = {"what": args.what, "quantity": args.quantity}
        r = call_api(args, "POST", f"/aid/requests/{args.requester}/{args.request}/pledges", body)
        _out(args, r, f"pledge {r['id']} made")
    elif a == "accept":
        body = {"pledger": args.pledger, "pledge": args.pledge}
        _out(args, call_api(args, "POST", f"/aid/requests/{args.request}/accept", body), "accepted")
    elif a in ("fulfil", "withdraw", "escalate"):
        _out(args, call_api(args, "POST", f"/aid/requests/{args.request}/{a}"), f"{a}: done")
    else:
        rows = call_api(args, "GET", "/aid/requests" + ("?all=true" if args.all else ""))
        if args.json:
            print(json.dumps(rows))
            return 0
        table = Table("urgency", "from", "request", "category", "need", "pledged", "area",
                      "needed in", "state", title="Calls for help, most urgent first",
                      title_justify="left")  # fmt: skip
        for r in rows:
            table.add_row(*map(cell, (  # event text: safe, never markup (PROTOCOL.md §18)
                r["urgency"], r["requester"], r["request"], r["category"], r["quantity"],
                r["pledged"], r["area"], _minutes_left(r["needed_by"]),
                r["state"] + (" (federation)" if r["escalated"] else ""),
            )))  # fmt: skip
        Console().print(table)
    return 0


def cmd_alert(args: argparse.Namespace) -> int:
    if args.action == "raise":
        body = {"kind": args.kind, "severity": args.severity, "advice": args.advice}
        r = call_api(args, "POST", "/alerts", body)
        _out(args, r, f"alert {r['id']} raised")
    elif args.action == "resolve":
        _out(args, call_api(args, "POST", f"/alerts/{args.alert}/resolve"), "resolved")
    else:
        rows = call_api(args, "GET", "/alerts" + ("?all=true" if args.all else ""))
        if args.json:
            print(json.dumps(rows))
            return 0
        table = Table("severity", "kind", "from", "area", "advice", "state",
                      title="Alerts", title_justify="left")  # fmt: skip
        for r in rows:
            state = "resolved" if r["resolved_at"] else "open"
            row = (r["severity"], r["kind"], r["author"], r["area"], r["advice"], state)
            table.add_row(*map(cell, row))  # the advice is free text (PROTOCOL.md §18)
        Console().print(table)
    return 0


def add_aid_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", required=True, help="the node's data directory (node running)")
        p.add_argument("--json", action="store_true", help="print JSON")

    aid = sub.add_parser("aid", help="ask for help, pledge, accept, fulfil (Call 4 Help)")
    acts = aid.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = acts.add_parser("request", help="ask for help: the neighborhood first, then everyone")
    p.add_argument("description", help="what is needed (at most 280 characters, no personal data)")
    p.add_argument("--category", required=True, choices=AID_CATEGORIES)
    p.add_argument("--urgency", required=True, choices=URGENCIES)
    p.add_argument("--quantity", type=int, default=1, help="units or people (default 1)")
    p.add_argument("--needed-in", type=int, default=24 * 60, help="minutes (default 1440)")
    p.add_argument("--escalate-now", action="store_true", help="ask the federation at once")
    common(p)
    p = acts.add_parser("pledge", help="pledge help to a request")
    p.add_argument("requester", help="the requesting neighborhood")
    p.add_argument("request")
    p.add_argument("--what", required=True, help="what you offer, e.g. '2 hot meals'")
    p.add_argument("--quantity", type=int, default=1)
    common(p)
    p = acts.add_parser("accept", help="accept a pledge to one of our requests")
    p.add_argument("request")
    p.add_argument("pledger")
    p.add_argument("pledge")
    common(p)
    for name, text in (
        ("fulfil", "confirm one of our requests was met"),
        ("withdraw", "withdraw one of our requests"),
        ("escalate", "ask the whole federation now"),
    ):
        p = acts.add_parser(name, help=text)
        p.add_argument("request")
        common(p)
    p = acts.add_parser("list", help="open requests, most urgent and nearest first")
    p.add_argument("--all", action="store_true", help="closed ones too")
    common(p)
    aid.set_defaults(func=cmd_aid)

    alert = sub.add_parser("alert", help="raise, resolve and list crisis alerts")
    acts = alert.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = acts.add_parser("raise", help="warn the federation (storm, outage, flood, heat…)")
    p.add_argument("kind", choices=ALERT_KINDS)
    p.add_argument("--severity", choices=("info", "warning", "danger"), default="warning")
    p.add_argument("--advice", default="", help="what people should do")
    common(p)
    p = acts.add_parser("resolve", help="resolve one of our alerts")
    p.add_argument("alert")
    common(p)
    p = acts.add_parser("list", help="open alerts, most severe first")
    p.add_argument("--all", action="store_true")
    common(p)
    alert.set_defaults(func=cmd_alert)
