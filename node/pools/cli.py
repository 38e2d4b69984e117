"""`coopnet pool open|list|show|commit|withdraw|box-fill|close|cancel|deliver|receive`:
pooled purchases (PROTOCOL.md §19) from the command line.

These talk to a running node's resident API, as `coopnet trade …` does
(node/market/cli.py). People type and read amounts in the federation's currency
(`--price 4.50`); `--json` keeps them in integer cents beside the currency's code. A pool
is named `ORGANIZER POOL`, or `POOL` alone when one pool of that id is known. What a
command signs, it prints with the pool's id and the event's seq; with `--json`, the pool
as `GET /pools/{organizer}/{pool}` shows it, its `id`, the signed `event` (author, seq,
id, kind) and the `currency`.
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from typing import Any

from rich.console import Console
from rich.text import Text

from coopnet.node.engine.client import ApiError, NodeCommand
from coopnet.node.engine.config import ConfigError
from coopnet.node.engine.terminal import (
    cell,
    goods_text,
    quantity_text,
    relative_time,
    stacked,
    table,
)
from coopnet.protocol.offers import UNITS

UNIT_ALIASES = {
    "count": "piece", "each": "piece", "g": "gram", "kg": "kilogram", "ml": "millilitre",
    "l": "litre", "min": "minute", "h": "hour",
    **{f"{unit}s": unit for unit in UNITS},
}  # fmt: skip
CENTS_NOTE = " (amounts in integer cents of the currency its `currency` field names)"
# The organizer's steps: (help, what the command prints once signed, description).
ORGANIZER_STEPS = {
    "box-fill": ("turn an open pool to box fill: only raises filling the open case",
                 "in box fill",
                 "Turn this co-op's open pool to box fill: the participants counted so far may "
                 "only raise their quantities, and only to fill the case left open; the node "
                 "closes it `[pools] box_fill_s` seconds later (node.toml, default 600)."),
    "close": ("close the pool, counting each participant's latest commitment", "closed",
              "Close this co-op's pool: each participant's latest commitment counts, and "
              "every node computes the same whole cases and shares (PROTOCOL.md §19). Below "
              "its minimum of cases the pool is cancelled and nothing settles."),
    "cancel": ("cancel the pool before delivery: nothing settles", "cancelled",
               "Cancel this co-op's pool before delivery: every commitment's credit hold "
               "ends and nothing settles."),
    "deliver": ("mark the closed pool delivered (a member supplier is paid)", "delivered",
                "Mark this co-op's closed pool delivered, once the cases arrived: a member "
                "supplier is paid for the cases now; each participant pays its share when "
                "it confirms receipt (`coopnet pool receive`)."),
}  # fmt: skip
# The bounds the API checks (protocol/pools.py, node/pools/api.py), said per option.
MAX_UNITS = 10**9
MAX_CASES = 10**6
MAX_CLOSES_IN_S = 365 * 24 * 3600


class PoolCli(NodeCommand):
    """A pool command's view of its node (`NodeCommand`), finding pools by id."""

    def pool(self, pool: str, organizer: str | None) -> dict[str, Any]:
        """The pool named on the command line, as the API shows it (shares, holds …)."""
        if organizer is None:
            found = [p for p in self.call("GET", "/pools") if p["pool"] == pool]
            hint = f"`coopnet pool list --data {self.args.data}` lists them"
            if not found:
                raise ApiError(404, "not_found", f"no pool {pool} known to this node: {hint}")
            if len(found) > 1:
                raise ApiError(
                    409, "ambiguous",
                    f"{len(found)} pools are called {pool}: name the organizer,"
                    f" `coopnet pool {self.args.action} ORGANIZER {pool}`",
                )  # fmt: skip
            organizer = str(found[0]["organizer"])
        result: dict[str, Any] = self.call("GET", f"/pools/{organizer}/{pool}")
        return result

    def emit(self, data: Any, text: str) -> None:
        print(json.dumps(data) if self.args.json else text)

    def made(self, p: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
        return {**p, "id": p["pool"], "event": ref, "currency": self.currency.code}


def _unit(text: str) -> str:
    unit = UNIT_ALIASES.get(text, text)
    if unit not in UNITS:
        raise ConfigError(f"--unit {text!r}: choose one of {', '.join(UNITS)} (or count)")
    return unit


def _event(ref: dict[str, Any]) -> str:
    return f"(event #{ref['seq']})"


def _bounded(option: str, value: int, low: int, high: int, what: str, example: str = "") -> int:
    """`value` of `option` if within [low, high]; else ConfigError naming the option, what
    it counts and its range, with an example as the hint (checked before the node is
    asked, so the answer is in the option's own words, not the API's field names)."""
    if not low <= value <= high:
        raise ConfigError(
            f"{option} {value} is out of range: {what}, {low} to {high:,}",
            f"e.g. {option} {example or max(low, 1)}",
        )
    return value


def _cases_text(cases: int, case_size: int, unit: str) -> str:
    """`cases` cases of `case_size` units: "1 case of 10 kilograms", "2 cases of 6 litres"."""
    return f"{cases} case{'' if cases == 1 else 's'} of {quantity_text(case_size, unit)}"


def state_text(p: dict[str, Any], now: int) -> str:
    """Where the pool stands, for `pool show` (`p` as GET /pools/{organizer}/{pool} shows
    it, times ms since the epoch): an open pool says when it closes, one in box fill when
    its organizer closes it (known on the organizer's node), a closed one nothing more."""
    state = p["state"]
    if state == "open":
        return f"open, closes {relative_time(p['closes_at'], now)}"
    if state == "box_fill":
        if p.get("box_fill_closes_at"):  # on the organizer's node: its own timer
            return f"box fill: closes {relative_time(p['box_fill_closes_at'], now)}"
        return "box fill: the organizer closes it soon"
    if state == "closing":
        return "closing: waiting for the commitments it counts"
    if state == "cancelled" and p["organizer_state"] == "closed":
        return f"cancelled: closed below its minimum of {p['min_cases']} case(s)"
    return str(state)


def close_text(p: dict[str, Any], ref: dict[str, Any]) -> str:
    """What `pool close` prints once signed (`p` as the node holds the pool after it):
    the cases and each participant's share, or that it closed below its minimum."""
    name, unit = f"pool {p['organizer']}/{p['pool']}", p["unit"]
    if p["state"] == "cancelled":
        least = p["min_cases"] * p["case_size"]
        return (
            f"{name} closed below its minimum of {p['min_cases']} case"
            f"{'' if p['min_cases'] == 1 else 's'} ({p['committed']} of"
            f" {quantity_text(least, unit)} committed): cancelled, nothing settles {_event(ref)}"
        )
    if p["state"] == "closing":
        return f"{name} closed: shares follow once the commitments it counts arrive {_event(ref)}"
    shares = ", ".join(f"{s['participant']} {s['share']}" for s in p["shares"] if s["share"])
    return (
        f"{name} closed: {_cases_text(p['cases'], p['case_size'], unit)}"
        f"{f'; shares {shares}' if shares else ''} {_event(ref)}"
    )


def receipt_text(p: dict[str, Any], me: str, money: Any) -> str:
    """What `pool receive` prints: the share received and what it pays the organizer (the
    organizer's own share pays no one). `money` formats credit cents."""
    share = next((s["share"] for s in p["shares"] if s["participant"] == me), 0)
    got = quantity_text(share, p["unit"])
    if me == p["organizer"]:
        return f"received: {got}, our own share: nothing settles"
    return f"received: {got}, {money(share * p['unit_price'])} to {p['organizer']}"


def _terms(c: PoolCli, p: dict[str, Any]) -> str:
    case = goods_text(p["case_size"], p["unit"], p["item"])
    price = f"{c.money(p['unit_price'])} per {p['unit']}"
    supplier = p["supplier"] or p["supplier_name"]
    return f"cases of {case} at {price} from {supplier}"


def _cmd_open(c: PoolCli) -> int:
    a = c.args
    _bounded("--case-size", a.case_size, 1, MAX_CASES, "the units in one case")
    _bounded("--min-cases", a.min_cases, 1, MAX_CASES, "the fewest cases")
    _bounded("--max-cases", a.max_cases, 0, MAX_CASES, "the most cases (0: no cap)")
    if a.max_cases and a.max_cases < a.min_cases:
        raise ConfigError(
            f"--max-cases {a.max_cases} is below --min-cases {a.min_cases}",
            "raise --max-cases, or 0 for no cap",
        )
    _bounded(
        "--closes-in", a.closes_in, 1, MAX_CLOSES_IN_S, "seconds until it closes", "86400 (a day)"
    )
    if a.supplier_offer and not a.supplier:
        raise ConfigError(
            f"--supplier-offer {a.supplier_offer} needs --supplier",
            "--supplier names the member co-op whose offer it is; --supplier-name a business"
            " outside the federation, which has no offers here",
        )
    pool_id = a.id or f"p-{secrets.token_hex(4)}"
    body: dict[str, Any] = {
        "pool": pool_id, "item": a.item, "unit": _unit(a.unit), "case_size": a.case_size,
        "unit_price": c.cents("--price", a.price), "min_cases": a.min_cases,
        "max_cases": a.max_cases, "closes_in_s": a.closes_in,
        "supplier": a.supplier or "", "supplier_name": a.supplier_name or "",
        "supplier_offer": a.supplier_offer or "",
    }  # fmt: skip
    if a.single_price is not None:
        body["single_unit_price"] = c.cents("--single-price", a.single_price)
    ref = c.call("POST", "/pools", body)
    p = c.pool(pool_id, c.me)
    closes = relative_time(p["closes_at"], int(time.time() * 1000))
    c.emit(
        c.made(p, ref),
        f"pool {pool_id} opened: {_terms(c, p)}, closes {closes} {_event(ref)}\n"
        f"others commit with: coopnet pool commit {c.me} {pool_id} --quantity N",
    )
    return 0


def _cmd_list(c: PoolCli) -> int:
    pools = c.call("GET", "/pools" + (f"?state={c.args.state}" if c.args.state else ""))
    if c.args.json:
        print(json.dumps([{**p, "currency": c.currency.code} for p in pools]))
        return 0
    if not pools:
        print("no pools yet" + (f" in state {c.args.state}" if c.args.state else ""))
        return 0
    # Five columns, as `trade list`: the pool's name whole, the item over its case size.
    out = table("Pools", "pool", "item", "price/unit", "committed", "state",
                whole=("pool", "price/unit"))  # fmt: skip
    for p in pools:
        cases = [] if p["state"] not in ("closed", "delivered") else [
            f"{p['cases']} case{'' if p['cases'] == 1 else 's'}"]  # fmt: skip
        out.add_row(
            cell(f"{p['organizer']}/{p['pool']}"),
            stacked(p["item"], f"by {quantity_text(p['case_size'], p['unit'])}"),
            cell(c.money(p["unit_price"])),
            cell(quantity_text(p["committed"], p["unit"])),
            stacked(p["state"], *cases),
        )
    Console().print(out)
    return 0


def _cmd_show(c: PoolCli) -> int:
    p = c.pool(c.args.pool, c.args.organizer)
    if c.args.json:
        print(json.dumps({**p, "currency": c.currency.code}))
        return 0
    console = Console()
    now = int(time.time() * 1000)
    console.print(
        Text.assemble(
            cell(f"{p['organizer']}/{p['pool']}", "bold"),
            cell(f": {_terms(c, p)}; {state_text(p, now)}"),
        )
    )
    limits = f"at least {p['min_cases']} case(s)"
    if p["max_cases"]:
        limits += f", at most {p['max_cases']}"
    console.print(cell(f"{limits}; {p['cases']} case(s) bought"))
    out = table("", "participant", "quantity", "tolerance", "share", "received",
                whole=("participant",))  # fmt: skip
    for s in p["shares"]:
        out.add_row(*map(cell, (s["participant"], s["quantity"], s["tolerance"], s["share"],
                                "yes" if s["received"] else "")))  # fmt: skip
    console.print(out)
    for s in p["settlements"]:
        console.print(cell(f"{s['payer']} pays {s['payee']} {c.money(s['amount'])}"))
    for who, cents in sorted(p["holds"].items()):
        console.print(cell(f"{who}: {c.money(cents)} held"))
    return 0


def _cmd_commit(c: PoolCli, quantity: int, tolerance: int) -> int:
    _bounded("--quantity", quantity, 0, MAX_UNITS, "the units wanted")
    _bounded("--tolerance", tolerance, 0, MAX_UNITS, "the units more to fill a case")
    p = c.pool(c.args.pool, c.args.organizer)
    path = f"/pools/{p['organizer']}/{p['pool']}/commit"
    ref = c.call("POST", path, {"quantity": quantity, "tolerance": tolerance})
    p = c.pool(p["pool"], p["organizer"])
    if quantity == 0 and tolerance == 0:
        done = "withdrawn"
    else:
        done = f"{quantity_text(quantity, p['unit'])} committed"
        if tolerance:
            done += f", up to {tolerance} more to fill a case"
        done += f" (holds {c.money((quantity + tolerance) * p['unit_price'])})"
    c.emit(c.made(p, ref), f"pool {p['organizer']}/{p['pool']}: {done} {_event(ref)}")
    return 0


def _cmd_step(c: PoolCli) -> int:
    action = c.args.action
    p = c.pool(c.args.pool, c.args.organizer)
    body = {"reason": c.args.reason} if getattr(c.args, "reason", "") else None
    ref = c.call("POST", f"/pools/{p['organizer']}/{p['pool']}/{action}", body)
    p = c.pool(p["pool"], p["organizer"])
    if action == "close":
        c.emit(c.made(p, ref), close_text(p, ref))
        return 0
    done = receipt_text(p, c.me, c.money) if action == "receive" else ORGANIZER_STEPS[action][1]
    c.emit(c.made(p, ref), f"pool {p['organizer']}/{p['pool']} {done} {_event(ref)}")
    return 0


def cmd_pool(args: argparse.Namespace) -> int:
    c = PoolCli(args)
    if args.action == "open":
        return _cmd_open(c)
    if args.action == "list":
        return _cmd_list(c)
    if args.action == "show":
        return _cmd_show(c)
    if args.action == "commit":
        return _cmd_commit(c, args.quantity, args.tolerance)
    if args.action == "withdraw":
        return _cmd_commit(c, 0, 0)
    return _cmd_step(c)


def add_pool_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def data_and_json(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", required=True, help="the node's data directory (node running)")
        p.add_argument("--json", action="store_true", help="print JSON" + CENTS_NOTE)

    def named(p: argparse.ArgumentParser) -> None:
        p.add_argument("organizer", nargs="?", help="the organizing co-op (optional: the pool's)")
        p.add_argument("pool", help="the pool's id, as `pool open` or `pool list` prints it")

    pool = sub.add_parser(
        "pool",
        help="pooled purchases: buy by the case together",
        description="Pooled purchases (PROTOCOL.md §19): a co-op opens a pool for one product "
        "sold by the case, others commit a quantity (and a tolerance to fill a case), the "
        "organizer closes it and every node computes the same allocation.",
    )
    acts = pool.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = acts.add_parser("open", help="open a pool as its organizer; prints its id")
    p.add_argument("item", help="what is bought, e.g. 'rolled oats'")
    p.add_argument("--unit", required=True, metavar="UNIT", help=f"{', '.join(UNITS)}")
    p.add_argument("--case-size", type=int, required=True, help="units in one case")
    p.add_argument("--price", required=True, help="price per unit in the currency, e.g. 1.20")
    p.add_argument("--min-cases", type=int, default=1, help="fewest cases, else cancelled")
    p.add_argument("--max-cases", type=int, default=0, help="most cases (default 0: no cap)")
    p.add_argument("--closes-in", type=int, default=7 * 24 * 3600,
                   help="seconds until it closes (default a week)")  # fmt: skip
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--supplier", help="a member co-op that supplies it")
    who.add_argument("--supplier-name", help="a business outside the federation")
    p.add_argument("--supplier-offer", help="the member supplier's offer it sells from")
    p.add_argument("--single-price", help="the price of one unit bought alone (for savings)")
    p.add_argument("--id", help="the pool's id (default: generated, e.g. p-7f3a2c1d)")
    data_and_json(p)
    p = acts.add_parser("list", help="pools across the federation")
    p.add_argument("--state", help="only pools in this state (open, box_fill, closed …)")
    data_and_json(p)
    p = acts.add_parser(
        "show",
        help="one pool with its shares, settlements and holds",
        description="Show one pool: its terms, where it stands, each participant's "
        "commitment and share, what settled and the credit its commitments hold. "
        "`coopnet pool show POOL` (or `ORGANIZER POOL` when two co-ops use the same id).",
    )
    named(p)
    data_and_json(p)
    p = acts.add_parser(
        "commit",
        help="commit a quantity to a pool, or change the commitment",
        description="Commit to a pool: `coopnet pool commit POOL --quantity N [--tolerance T]`"
        " (the organizer is found from the pool; `ORGANIZER POOL` works too). The latest "
        "commitment replaces the earlier ones; it holds (N + T) × price of credit.",
    )
    named(p)
    p.add_argument("--quantity", type=int, required=True, help="units wanted")
    p.add_argument("--tolerance", type=int, default=0, help="up to this many more to fill a case")
    data_and_json(p)
    p = acts.add_parser(
        "withdraw",
        help="withdraw this co-op's commitment (while open)",
        description="Withdraw this co-op's commitment to an open pool (a commitment of 0 "
        "and 0): its credit hold ends. `coopnet pool withdraw POOL`.",
    )
    named(p)
    data_and_json(p)
    for action, (text, _, described) in ORGANIZER_STEPS.items():
        p = acts.add_parser(
            action,
            help=f"{text} (organizer)",
            description=f"{described} `coopnet pool {action} POOL` (the organizer's node).",
        )
        named(p)
        if action == "cancel":
            p.add_argument("--reason", default="", help="why (members see it)")
        data_and_json(p)
    p = acts.add_parser(
        "receive",
        help="confirm this co-op received its share: pays the organizer",
        description="Confirm this co-op received its share of a delivered pool: it pays the "
        "organizer share × price (the organizer's own share pays no one). "
        "`coopnet pool receive POOL`.",
    )
    named(p)
    data_and_json(p)
    pool.set_defaults(func=cmd_pool)


__all__ = ["add_pool_commands"]
