"""`coopnet offer|need|match|trade|balance`: the market from the command line.

These talk to a running node's resident API (the same one an app would use); the node says
where it listens in `DATA/api.url`. People type and read amounts in the federation's
currency (`--price 4.50`); `--json` keeps them in integer cents beside the currency's code.

What a command creates, it prints with its id (chosen here, so a retry is answered once):
`offer o-7f3a2c1d posted: …`; with `--json`, the thing as the API lists it, its `id`, the
signed `event` (author, seq, id, kind) and the `currency`.
"""

from __future__ import annotations

import argparse
import json
import secrets
from typing import Any

from rich.console import Console
from rich.text import Text

from coopnet.node.engine.client import ApiError, NodeCommand
from coopnet.node.engine.config import ConfigError
from coopnet.node.engine.terminal import cell, goods_text, quantity_text, table
from coopnet.protocol.offers import CATEGORIES, UNITS

# What people also call a unit (`--unit count` is a number of pieces), and plurals.
UNIT_ALIASES = {
    "count": "piece", "each": "piece", "g": "gram", "kg": "kilogram", "ml": "millilitre",
    "l": "litre", "min": "minute", "h": "hour",
    **{f"{unit}s": unit for unit in UNITS},
}  # fmt: skip
TRADE_ACTIONS = {
    "accept": ("accept a proposal (seller)", "accepted"),
    "decline": ("decline a proposal (seller)", "declined"),
    "ship": ("mark an accepted trade shipped (seller)", "shipped"),
    "receive": ("confirm receipt: settles the trade (buyer)", "received: settled"),
    "cancel": ("cancel (buyer before shipping; seller asks the buyer's consent)", "cancelled"),
    "dispute": ("dispute an open trade (either party)", "disputed"),
}
CENTS_NOTE = " (amounts in integer cents of the currency its `currency` field names)"


class Market(NodeCommand):
    """A market command's view of its node (`NodeCommand`), with prices per unit."""

    def per_unit(self, cents: int, unit: str) -> str:
        return f"{self.money(cents)} per {unit}"


def _find(rows: list[dict[str, Any]], key: str, value: str, what: str, hint: str) -> dict[str, Any]:
    """The one row whose `key` is `value`; ApiError `not_found` or `ambiguous` otherwise."""
    found = [r for r in rows if r[key] == value]
    if not found:
        raise ApiError(404, "not_found", f"no {what} {value} known to this node: {hint}")
    if len(found) > 1:
        raise ApiError(409, "ambiguous", f"{len(found)} {what}s are called {value}: {hint}")
    return found[0]


def _made(m: Market, thing: dict[str, Any], key: str, ref: dict[str, Any]) -> dict[str, Any]:
    return {**thing, "id": thing[key], "event": ref, "currency": m.currency.code}


def _event(ref: dict[str, Any]) -> str:
    return f"(event #{ref['seq']})"


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data) if args.json else text)


def _unit(text: str) -> str:
    unit = UNIT_ALIASES.get(text, text)
    if unit not in UNITS:
        raise ConfigError(f"--unit {text!r}: choose one of {', '.join(UNITS)} (or count)")
    return unit


def new_id(prefix: str) -> str:
    """An id for a thing this command creates (`o-7f3a2c1d`), sent with it so a retry is
    answered once (README: "What a node guarantees")."""
    return f"{prefix}-{secrets.token_hex(4)}"


def cmd_offer(args: argparse.Namespace) -> int:
    m = Market(args)
    if args.action == "post":
        offer_id = args.id or new_id("o")
        unit = _unit(args.unit)
        body = {
            "item": args.item, "category": args.category, "quantity": args.quantity,
            "unit": unit, "unit_price": m.cents("--price", args.price),
            "min_order": args.min_order, "available_days": args.days,
            "delivery": args.delivery, "terms": args.terms, "offer": offer_id,
        }  # fmt: skip
        ref = m.call("POST", "/offers", body)
        offers = m.call("GET", f"/offers?all=true&author={m.me}")
        o = next((o for o in offers if o["offer"] == offer_id), {**body, "author": m.me})
        _emit(args, _made(m, o, "offer", ref),
              f"offer {offer_id} posted: {goods_text(o['quantity'], unit, o['item'])}"
              f" at {m.per_unit(o['unit_price'], unit)} {_event(ref)}")  # fmt: skip
    elif args.action == "withdraw":
        ref = m.call("POST", f"/offers/{args.offer}/withdraw")
        _emit(args, {"id": args.offer, "event": ref}, f"offer {args.offer} withdrawn {_event(ref)}")
    else:
        offers = m.call("GET", "/offers" + ("?all=true" if args.all else ""))
        if args.json:
            print(json.dumps([{**o, "currency": m.currency.code} for o in offers]))
            return 0
        out = table("Offers", "offer", "seller", "item", "left", "price/unit", "area", "state",
                    whole=("offer", "seller", "price/unit"))  # fmt: skip
        for o in offers:
            left = f"{o['remaining']} of {quantity_text(o['quantity'], o['unit'])}"
            out.add_row(*map(cell, (o["offer"], o["author"], o["item"], left,
                                    m.money(o["unit_price"]), o["area"],
                                    o["state"])))  # fmt: skip
        Console().print(out)
    return 0


def cmd_need(args: argparse.Namespace) -> int:
    m = Market(args)
    if args.action == "post":
        need_id = args.id or new_id("n")
        unit = _unit(args.unit)
        most = m.cents("--max-price", args.max_price) if args.max_price is not None else None
        body = {
            "item": args.item, "category": args.category, "quantity": args.quantity,
            "unit": unit, "max_unit_price": most, "needed_in_days": args.days, "need": need_id,
        }  # fmt: skip
        ref = m.call("POST", "/needs", body)
        needs = m.call("GET", "/needs?all=true")
        n = next((n for n in needs if n["need"] == need_id and n["author"] == m.me), body)
        at_most = f", at most {m.per_unit(most, unit)}" if most is not None else ""
        _emit(args, _made(m, n, "need", ref),
              f"need {need_id} posted: {goods_text(args.quantity, unit, args.item)}"
              f"{at_most} {_event(ref)}")  # fmt: skip
    elif args.action == "withdraw":
        ref = m.call("POST", f"/needs/{args.need}/withdraw")
        _emit(args, {"id": args.need, "event": ref}, f"need {args.need} withdrawn {_event(ref)}")
    else:
        needs = m.call("GET", "/needs" + ("?all=true" if args.all else ""))
        if args.json:
            print(json.dumps([{**n, "currency": m.currency.code} for n in needs]))
            return 0
        out = table("Needs", "need", "co-op", "item", "quantity", "at most/unit", "state",
                    whole=("need", "co-op", "at most/unit"))  # fmt: skip
        for n in needs:
            most = n["max_unit_price"]
            out.add_row(*map(cell, (n["need"], n["author"], n["item"],
                                    quantity_text(n["quantity"], n["unit"]),
                                    "" if most is None else m.money(most),
                                    n["state"])))  # fmt: skip
        Console().print(out)
    return 0


def cmd_match(args: argparse.Namespace) -> int:
    m = Market(args)
    matches = m.call("GET", "/match" + (f"?need={args.need}" if args.need else ""))
    if args.json:
        print(json.dumps(matches))
        return 0
    out = table("Offers that fit your needs, best first", "need", "offer", "seller", "item",
                "left", "price/unit", "score",
                whole=("need", "offer", "seller", "price/unit"))  # fmt: skip
    for need, found in matches.items():
        for o in found:
            left, price = (
                quantity_text(o["remaining"], o["unit"]),
                m.money(o["unit_price"]),
            )
            out.add_row(*map(cell, (need, o["offer"], o["author"], o["item"], left, price,
                                    o["score"])))  # fmt: skip
    Console().print(out)
    return 0


def _trade_text(m: Market, t: dict[str, Any]) -> str:
    unit = t.get("unit") or "unit"
    what = goods_text(t["quantity"], unit, t["item"]) if t.get("item") else (
        quantity_text(t["quantity"], unit))  # fmt: skip
    return f"{what} at {m.per_unit(t['unit_price'], unit)}, {m.money(t['total'])} in all"


def _the_trade(m: Market, trade_id: str, buyer: str | None) -> dict[str, Any]:
    trades = m.call("GET", "/trades?all=true")
    if buyer is not None:
        trades = [t for t in trades if t["buyer"] == buyer]
    hint = f"`coopnet trade list --all --data {m.args.data}` lists them"
    if buyer is None:
        hint += f"; name the buyer: `coopnet trade {m.args.action} BUYER {trade_id}`"
    return _find(trades, "trade", trade_id, "trade", hint)


def cmd_trade(args: argparse.Namespace) -> int:
    m = Market(args)
    if args.action == "propose":
        seller = args.seller
        if seller is None:
            offers = [o for o in m.call("GET", "/offers?all=true") if o["author"] != m.me]
            hint = f"`coopnet offer list --data {args.data}` lists the open ones"
            seller = _find(offers, "offer", args.offer, "offer", hint)["author"]
        trade_id = args.id or new_id("t")
        body: dict[str, Any] = {
            "seller": seller, "offer": args.offer, "quantity": args.quantity,
            "expires_in_s": args.expires_in, "trade": trade_id,
        }  # fmt: skip
        if args.price is not None:
            body["unit_price"] = m.cents("--price", args.price)
        ref = m.call("POST", "/trades", body)
        t = _the_trade(m, trade_id, m.me)
        _emit(args, _made(m, t, "trade", ref),
              f"trade {trade_id} proposed to {seller}: {_trade_text(m, t)} {_event(ref)}\n"
              f"{seller}'s node answers with: coopnet trade accept {trade_id} "
              f"--data <{seller}'s data dir>")  # fmt: skip
    elif args.action == "list":
        trades = m.call("GET", "/trades" + ("?all=true" if args.all else ""))
        if args.json:
            print(json.dumps([{**t, "currency": m.currency.code} for t in trades]))
            return 0
        out = table("Trades", "trade", "buyer", "seller", "what", "total", "state",
                    whole=("trade", "buyer", "seller", "total"))  # fmt: skip
        for t in trades:
            unit = t["unit"] or "unit"
            what = goods_text(t["quantity"], unit, t["item"]) if t["item"] else (
                quantity_text(t["quantity"], unit))  # fmt: skip
            out.add_row(*map(cell, (t["trade"], t["buyer"], t["seller"], what,
                                    m.money(t["total"]), t["state"])))  # fmt: skip
        Console().print(out)
    else:
        t = _the_trade(m, args.trade, args.buyer)
        reason = {"reason": args.reason} if args.reason else None
        ref = m.call("POST", f"/trades/{t['buyer']}/{args.trade}/{args.action}", reason)
        t = _the_trade(m, args.trade, t["buyer"])
        done = TRADE_ACTIONS[args.action][1]
        if args.action == "receive":
            done += f" ({m.money(t['total'])} from {t['buyer']} to {t['seller']})"
        _emit(args, _made(m, t, "trade", ref), f"trade {args.trade} {done} {_event(ref)}")
    return 0


def cmd_balance(args: argparse.Namespace) -> int:
    m = Market(args)
    b = m.call("GET", "/balance")
    if args.json:
        print(json.dumps({**b, "currency": m.currency.code}))
        return 0
    console = Console()
    # Text, not markup: the amounts hold the charter's currency name, which may hold "[/]".
    console.print(
        Text.assemble(
            cell(b["neighborhood"], "bold"),
            cell(
                f": balance {m.money(b['balance'])}, open commitments "
                f"{m.money(b['committed'])}, credit limit {m.money(b['credit_limit'])}, "
                f"available {m.money(b['available'])}"
            ),
        )
    )
    if not b["ledger"]:  # no trade or pool has settled yet: no empty table
        console.print(cell("Federation ledger: no settlements yet"))
        return 0
    console.print(cell(f"Federation ledger (it sums to {m.money(b['ledger_sum'])}):"))
    out = table("", "co-op", "balance", whole=("co-op", "balance"))
    for slug, cents in sorted(b["ledger"].items()):
        out.add_row(cell(slug), cell(m.money(cents)))
    console.print(out)
    return 0


def add_market_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def data_and_json(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", required=True, help="the node's data directory (node running)")
        p.add_argument("--json", action="store_true", help="print JSON" + CENTS_NOTE)

    units = f"{', '.join(UNITS)} (count: piece)"

    offer = sub.add_parser("offer", help="post, list or withdraw offers")
    acts = offer.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = acts.add_parser("post", help="offer some of this co-op's production; prints its id")
    p.add_argument("item", help="what is offered, e.g. 'sourdough loaves'")
    p.add_argument("--category", required=True, choices=CATEGORIES, help="the market category")
    p.add_argument("--quantity", type=int, required=True, help="how many units are offered")
    p.add_argument("--unit", required=True, metavar="UNIT", help=units)
    p.add_argument("--price", required=True, help="price per unit in the currency, e.g. 4.50")
    p.add_argument("--min-order", type=int, default=1, help="fewest units per trade (default 1)")
    p.add_argument("--days", type=int, default=7, help="available for this many days")
    p.add_argument("--delivery", choices=("pickup", "delivery", "either"), default="pickup",
                   help="how buyers get it (default pickup)")  # fmt: skip
    p.add_argument("--terms", default="", help="pickup or delivery terms")
    p.add_argument("--id", help="the offer's id (default: generated, e.g. o-7f3a2c1d)")
    data_and_json(p)
    p = acts.add_parser("list", help="open offers across the federation")
    p.add_argument("--all", action="store_true", help="withdrawn and sold out too")
    data_and_json(p)
    p = acts.add_parser("withdraw", help="withdraw one of this co-op's offers")
    p.add_argument("offer", help="the offer's id, as `offer post` printed it")
    data_and_json(p)
    offer.set_defaults(func=cmd_offer)

    need = sub.add_parser("need", help="post, list or withdraw needs")
    acts = need.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = acts.add_parser("post", help="what this co-op wants to source in the federation")
    p.add_argument("item", help="what is needed, e.g. 'sourdough'")
    p.add_argument("--category", required=True, choices=CATEGORIES, help="the market category")
    p.add_argument("--quantity", type=int, required=True, help="how many units are needed")
    p.add_argument("--unit", required=True, metavar="UNIT", help=units)
    p.add_argument("--max-price", help="price per unit at most, in the currency, e.g. 5")
    p.add_argument("--days", type=int, default=7, help="needed within this many days")
    p.add_argument("--id", help="the need's id (default: generated, e.g. n-7f3a2c1d)")
    data_and_json(p)
    p = acts.add_parser("list", help="open needs across the federation")
    p.add_argument("--all", action="store_true", help="withdrawn ones too")
    data_and_json(p)
    p = acts.add_parser("withdraw", help="withdraw one of this co-op's needs")
    p.add_argument("need", help="the need's id, as `need post` printed it")
    data_and_json(p)
    need.set_defaults(func=cmd_need)

    p = sub.add_parser("match", help="rank the offers that fit this co-op's needs")
    p.add_argument("--need", help="only this need")
    data_and_json(p)
    p.set_defaults(func=cmd_match)

    trade = sub.add_parser("trade", help="propose, answer and follow trades")
    acts = trade.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = acts.add_parser(
        "propose",
        help="propose to buy from an offer (as the buyer); prints the trade's id",
        description="Propose to buy from another co-op's offer: `coopnet trade propose "
        "OFFER --quantity N` (the seller is found from the offer; `SELLER OFFER` works too).",
    )
    p.add_argument("seller", nargs="?", help="the selling co-op (optional: the offer's)")
    p.add_argument("offer", help="the offer's id, as `offer list` or `match` prints it")
    p.add_argument("--quantity", type=int, required=True, help="how many units to buy")
    p.add_argument("--price", help="price per unit in the currency (default: the offer's)")
    p.add_argument("--expires-in", type=int, default=3600, help="seconds (default 3600)")
    p.add_argument("--id", help="the trade's id (default: generated, e.g. t-7f3a2c1d)")
    data_and_json(p)
    for action, (text, _) in TRADE_ACTIONS.items():
        p = acts.add_parser(
            action,
            help=text,
            description=f"{text[0].upper()}{text[1:]}: `coopnet trade {action} TRADE` (the "
            "buyer is found from the trade; `BUYER TRADE` works too).",
        )
        p.add_argument("buyer", nargs="?", help="the buying co-op (optional: the trade's)")
        p.add_argument("trade", help="the trade's id, as `trade propose` or `trade list` prints it")
        p.add_argument("--reason", required=action == "dispute", default="",
                       help="why (members see it)")  # fmt: skip
        data_and_json(p)
    p = acts.add_parser("list", help="this co-op's trades")
    p.add_argument("--all", action="store_true", help="every trade this node knows")
    data_and_json(p)
    trade.set_defaults(func=cmd_trade)

    p = sub.add_parser("balance", help="this co-op's balance and the federation ledger")
    data_and_json(p)
    p.set_defaults(func=cmd_balance)


__all__ = ["UNIT_ALIASES", "add_market_commands", "new_id"]
