"""`coopnet offer|need|match|trade|balance`: the market from the command line.

These talk to a running node's resident API (the same one an app would use); the node says
where it listens in `DATA/api.url`. Every command has `--json`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from coopnet.node.engine.client import call_api
from coopnet.node.engine.terminal import cell
from coopnet.protocol.offers import CATEGORIES, UNITS


def _print(args: argparse.Namespace, data: Any, table: Table | None = None) -> None:
    if args.json or table is None:
        print(json.dumps(data))
    else:
        Console().print(table)


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _rows(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(*columns, title=title, title_justify="left")
    for row in rows:
        table.add_row(*(cell(c) for c in row))  # event text: safe, never markup (§18)
    return table


def _signed(args: argparse.Namespace, ref: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(ref))
    else:
        print(f"signed {ref['kind']} #{ref['seq']} ({ref['id'][:16]}…)")


def cmd_offer(args: argparse.Namespace) -> int:
    if args.action == "post":
        body = {
            "item": args.item, "category": args.category, "quantity": args.quantity,
            "unit": args.unit, "unit_price": args.price, "min_order": args.min_order,
            "available_days": args.days, "delivery": args.delivery, "terms": args.terms,
        }  # fmt: skip
        if args.id:
            body["offer"] = args.id
        _signed(args, call_api(args, "POST", "/offers", body))
    elif args.action == "withdraw":
        _signed(args, call_api(args, "POST", f"/offers/{args.offer}/withdraw"))
    else:
        offers = call_api(args, "GET", "/offers" + ("?all=true" if args.all else ""))
        rows = [
            [o["author"], o["offer"], o["item"], o["category"], f"{o['remaining']}/{o['quantity']}",
             o["unit"], _money(o["unit_price"]), o["area"], o["state"]]
            for o in offers
        ]  # fmt: skip
        cols = [
            "seller",
            "offer",
            "item",
            "category",
            "left",
            "unit",
            "price/unit",
            "area",
            "state",
        ]
        _print(args, offers, _rows("Offers", cols, rows))
    return 0


def cmd_need(args: argparse.Namespace) -> int:
    if args.action == "post":
        body = {
            "item": args.item, "category": args.category, "quantity": args.quantity,
            "unit": args.unit, "max_unit_price": args.max_price, "needed_in_days": args.days,
        }  # fmt: skip
        _signed(args, call_api(args, "POST", "/needs", body))
    elif args.action == "withdraw":
        _signed(args, call_api(args, "POST", f"/needs/{args.need}/withdraw"))
    else:
        needs = call_api(args, "GET", "/needs" + ("?all=true" if args.all else ""))
        rows = [
            [n["author"], n["need"], n["item"], n["category"], n["quantity"], n["unit"], n["state"]]
            for n in needs
        ]
        cols = ["co-op", "need", "item", "category", "quantity", "unit", "state"]
        _print(args, needs, _rows("Needs", cols, rows))
    return 0


def cmd_match(args: argparse.Namespace) -> int:
    matches = call_api(args, "GET", "/match" + (f"?need={args.need}" if args.need else ""))
    rows = [
        [need, m["author"], m["offer"], m["item"], m["remaining"], _money(m["unit_price"]),
         m["area"], m["score"]]
        for need, found in matches.items()
        for m in found
    ]  # fmt: skip
    cols = ["need", "seller", "offer", "item", "left", "price/unit", "area", "score"]
    _print(args, matches, _rows("Offers that fit your needs, best first", cols, rows))
    return 0


def cmd_trade(args: argparse.Namespace) -> int:
    if args.action == "propose":
        body: dict[str, Any] = {
            "seller": args.seller, "offer": args.offer, "quantity": args.quantity,
            "expires_in_s": args.expires_in,
        }  # fmt: skip
        if args.price is not None:
            body["unit_price"] = args.price
        _signed(args, call_api(args, "POST", "/trades", body))
    elif args.action == "list":
        query = "?all=true" if args.all else ""
        trades = call_api(args, "GET", "/trades" + query)
        rows = [
            [t["buyer"], t["trade"], t["seller"], t["offer"], t["quantity"],
             _money(t["total"]), t["state"]]
            for t in trades
        ]  # fmt: skip
        cols = ["buyer", "trade", "seller", "offer", "quantity", "total", "state"]
        _print(args, trades, _rows("Trades", cols, rows))
    else:
        reason = {"reason": args.reason} if args.reason else None
        path = f"/trades/{args.buyer}/{args.trade}/{args.action}"
        _signed(args, call_api(args, "POST", path, reason))
    return 0


def cmd_balance(args: argparse.Namespace) -> int:
    b = call_api(args, "GET", "/balance")
    if args.json:
        print(json.dumps(b))
        return 0
    console = Console()
    console.print(
        f"[bold]{b['neighborhood']}[/]: balance {_money(b['balance'])}, "
        f"open commitments {_money(b['committed'])}, credit limit {_money(b['credit_limit'])}, "
        f"available {_money(b['available'])}"
    )
    rows = [[n, _money(v)] for n, v in sorted(b["ledger"].items())]
    console.print(
        _rows(f"Federation ledger (sum {_money(b['ledger_sum'])})", ["co-op", "balance"], rows)
    )
    return 0


def add_market_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def data_and_json(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", required=True, help="the node's data directory (node running)")
        p.add_argument("--json", action="store_true", help="print JSON")

    offer = sub.add_parser("offer", help="post, list or withdraw offers")
    acts = offer.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = acts.add_parser("post", help="offer some of this co-op's production")
    p.add_argument("item", help="what is offered, e.g. 'tomatoes'")
    p.add_argument("--category", required=True, choices=CATEGORIES)
    p.add_argument("--quantity", type=int, required=True, help="in the smallest unit")
    p.add_argument("--unit", required=True, choices=UNITS)
    p.add_argument("--price", type=int, required=True, help="credit cents per unit")
    p.add_argument("--min-order", type=int, default=1)
    p.add_argument("--days", type=int, default=7, help="available for this many days")
    p.add_argument("--delivery", choices=("pickup", "delivery", "either"), default="pickup")
    p.add_argument("--terms", default="", help="pickup or delivery terms")
    p.add_argument("--id", help="the offer's id (default: generated)")
    data_and_json(p)
    p = acts.add_parser("list", help="open offers across the federation")
    p.add_argument("--all", action="store_true", help="withdrawn and sold out too")
    data_and_json(p)
    p = acts.add_parser("withdraw", help="withdraw one of this co-op's offers")
    p.add_argument("offer")
    data_and_json(p)
    offer.set_defaults(func=cmd_offer)

    need = sub.add_parser("need", help="post, list or withdraw needs")
    acts = need.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = acts.add_parser("post", help="what this co-op wants to source in the federation")
    p.add_argument("item")
    p.add_argument("--category", required=True, choices=CATEGORIES)
    p.add_argument("--quantity", type=int, required=True)
    p.add_argument("--unit", required=True, choices=UNITS)
    p.add_argument("--max-price", type=int, help="credit cents per unit at most")
    p.add_argument("--days", type=int, default=7, help="needed within this many days")
    data_and_json(p)
    p = acts.add_parser("list", help="open needs across the federation")
    p.add_argument("--all", action="store_true")
    data_and_json(p)
    p = acts.add_parser("withdraw", help="withdraw one of this co-op's needs")
    p.add_argument("need")
    data_and_json(p)
    need.set_defaults(func=cmd_need)

    p = sub.add_parser("match", help="rank the offers that fit this co-op's needs")
    p.add_argument("--need", help="only this need")
    data_and_json(p)
    p.set_defaults(func=cmd_match)

    trade = sub.add_parser("trade", help="propose, answer and follow trades")
    acts = trade.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = acts.add_parser("propose", help="propose to buy from an offer (as the buyer)")
    p.add_argument("seller")
    p.add_argument("offer")
    p.add_argument("--quantity", type=int, required=True)
    p.add_argument("--price", type=int, help="credit cents per unit (default: the offer's)")
    p.add_argument("--expires-in", type=int, default=3600, help="seconds (default 3600)")
    data_and_json(p)
    for action, text in (
        ("accept", "accept a proposal (seller)"),
        ("decline", "decline a proposal (seller)"),
        ("ship", "mark an accepted trade shipped (seller)"),
        ("receive", "confirm receipt: settles the trade (buyer)"),
        ("cancel", "cancel (buyer before shipping; seller asks the buyer's consent)"),
        ("dispute", "dispute an open trade (either party)"),
    ):
        p = acts.add_parser(action, help=text)
        p.add_argument("buyer")
        p.add_argument("trade")
        p.add_argument("--reason", required=action == "dispute", default="")
        data_and_json(p)
    p = acts.add_parser("list", help="this co-op's trades")
    p.add_argument("--all", action="store_true", help="every trade this node knows")
    data_and_json(p)
    trade.set_defaults(func=cmd_trade)

    p = sub.add_parser("balance", help="this co-op's balance and the federation ledger")
    data_and_json(p)
    p.set_defaults(func=cmd_balance)
