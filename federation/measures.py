"""What the co-operatives achieve together, measured from an observer's store.

Read-only queries over the projections every node keeps (market, pools, hours, aid,
membership) and the log itself; each function returns plain JSON-able values for the
dashboard's API, the Prometheus text and the CLI.

What an observer cannot see, it does not pretend to: calls for help met inside a
neighborhood never leave it (they carry residents' needs), so "escalation rate" here is the
share of the federation's requests escalated because neighbors had not pledged enough in
time, as against at once on a resident's request (PROTOCOL.md §13).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

import aiosqlite

from coopnet.federation.names import shown_names
from coopnet.node.engine.money import currency_json
from coopnet.node.engine.store_io import fetch_all, fetch_one
from coopnet.node.membership.projection import standings
from coopnet.protocol.charter import DEFAULT_CURRENCY, Charter
from coopnet.protocol.text import safe_text
from coopnet.protocol.trades import OPEN_STATES

MINUTE_MS = 60_000
URGENCY_ORDER = ("critical", "high", "normal", "low")
# Escalated at least this long after a resident asked: the neighbors had their chance first.
WAITED_MS = 60_000


def currency(charter: Charter | None) -> dict[str, object]:
    """The federation's currency as its charter names it (PROTOCOL.md §16), as the JSON API
    and `--json` outputs name it: `{"code": "CRD", "name": "credits", "symbol": "",
    "minor_units": 2}` when it names none. Amounts stay integers in the minor unit (cents);
    `minor_units` says where people put the point."""
    named = charter.currency_or_default() if charter is not None else DEFAULT_CURRENCY
    return currency_json(named)


async def neighborhoods(
    db: aiosqlite.Connection, charter: Charter | None, now_ms: int
) -> list[dict[str, Any]]:
    """One row per neighborhood: membership, activity, liveness, trade, pools, hours and aid.

    `balance` (cents) is its credit balance: settled trades sold minus bought, plus what
    pooled purchases paid it (`pool_earned`) minus what it paid for them (`pool_paid`,
    PROTOCOL.md §19). `hours_given`, `hours_received` and `hours_balance` are quarter hours
    (§20, `hours_by_neighborhood`).

    `display_name` is the name as shown (federation/names.py: made safe, and followed by
    the slug when it looks like an earlier neighborhood's); `name_warning` says why, or is
    "" (PROTOCOL.md §18).
    """
    members = await standings(db, charter)
    rows: dict[str, dict[str, Any]] = {}
    for slug, name in (await shown_names(db, charter)).items():
        rows[slug] = {"slug": slug, "display_name": name.shown, "area": "",
                      "imitates": name.imitates, "name_warning": name.warning()}  # fmt: skip
    for slug, area in await fetch_all(db, "SELECT author, area FROM neighborhoods"):
        rows[slug]["area"] = safe_text(str(area))
    for slug, count, head, last_at in await fetch_all(
        db, "SELECT author, COUNT(*), MAX(seq), MAX(at) FROM events GROUP BY author"
    ):
        row = rows.setdefault(
            slug,
            {"slug": slug, "display_name": slug, "area": "", "imitates": "", "name_warning": ""},
        )
        row |= {"events": count, "head": head, "last_event_at": last_at,
                "liveness_s": max(0, (now_ms - last_at) // 1000)}  # fmt: skip
    offers = dict(
        await fetch_all(db, "SELECT author, COUNT(*) FROM offers WHERE state = 'open' GROUP BY 1")
    )
    sold = {
        r[0]: (r[1], r[2])
        for r in await fetch_all(
            db, "SELECT seller, COUNT(*), SUM(total) FROM trades WHERE state = 'settled' GROUP BY 1"
        )
    }
    bought = {
        r[0]: (r[1], r[2])
        for r in await fetch_all(
            db, "SELECT buyer, COUNT(*), SUM(total) FROM trades WHERE state = 'settled' GROUP BY 1"
        )
    }
    # Pooled purchases settle on the same ledger (PROTOCOL.md §19): paid out, paid in.
    pool_paid = dict(await fetch_all(
        db, "SELECT payer, SUM(amount) FROM pool_settlements GROUP BY 1"))  # fmt: skip
    pool_earned = dict(await fetch_all(
        db, "SELECT payee, SUM(amount) FROM pool_settlements GROUP BY 1"))  # fmt: skip
    hours = {r["slug"]: r for r in await hours_by_neighborhood(db)}
    aid_asked = dict(await fetch_all(db, "SELECT requester, COUNT(*) FROM aid_requests GROUP BY 1"))
    aid_given = dict(await fetch_all(
        db, "SELECT pledger, COUNT(*) FROM aid_pledges WHERE accepted > 0 GROUP BY 1"))  # fmt: skip
    out = []
    for slug, row in sorted(rows.items()):
        s = members.get(slug)
        balance = sold.get(slug, (0, 0))[1] - bought.get(slug, (0, 0))[1]
        balance += pool_earned.get(slug, 0) - pool_paid.get(slug, 0)
        given = hours.get(slug, {})
        out.append(
            {
                "events": 0, "head": 0, "last_event_at": None, "liveness_s": None, **row,
                "membership": s.status if s else "outsider",
                "offers_open": offers.get(slug, 0),
                "trades_sold": sold.get(slug, (0, 0))[0],
                "volume_sold": sold.get(slug, (0, 0))[1],
                "trades_bought": bought.get(slug, (0, 0))[0],
                "volume_bought": bought.get(slug, (0, 0))[1],
                "balance": balance,
                "aid_requested": aid_asked.get(slug, 0),
                "aid_pledges_accepted": aid_given.get(slug, 0),
                "pool_paid": pool_paid.get(slug, 0),
                "pool_earned": pool_earned.get(slug, 0),
                "hours_given": given.get("given", 0),
                "hours_received": given.get("received", 0),
                "hours_balance": given.get("balance", 0),
            }
        )  # fmt: skip
    return out


async def flows(db: aiosqlite.Connection) -> list[dict[str, Any]]:
    """Settled trade between each pair: goods went seller → buyer, credit the other way.
    These are the federation's emergent supply chains."""
    rows = await fetch_all(
        db,
        "SELECT seller, buyer, COUNT(*), SUM(total) FROM trades WHERE state = 'settled'"
        " GROUP BY seller, buyer ORDER BY SUM(total) DESC",
    )
    return [{"from": s, "to": b, "trades": n, "volume": v} for s, b, n, v in rows]


async def goods_moved(db: aiosqlite.Connection) -> list[dict[str, Any]]:
    """What the settled trades moved, by pair and item: `{"from": seller, "to": buyer,
    "item", "unit", "quantity" (in `unit`), "trades", "volume" (cents)}`, largest volume
    first. The item and unit are the seller's offer's (an offer's revisions change neither)."""
    rows = await fetch_all(
        db,
        "SELECT t.seller, t.buyer, o.item, o.unit, SUM(t.quantity), COUNT(*), SUM(t.total)"
        " FROM trades t JOIN offers o ON o.author = t.seller AND o.offer = t.offer"
        " WHERE t.state = 'settled' GROUP BY t.seller, t.buyer, o.item, o.unit"
        " ORDER BY SUM(t.total) DESC, t.seller, t.buyer, o.item",
    )
    keys = ("from", "to", "item", "unit", "quantity", "trades", "volume")
    out = [dict(zip(keys, r, strict=True)) for r in rows]
    for r in out:
        r["item"] = safe_text(str(r["item"]))  # signed free text (PROTOCOL.md §18)
    return out


# The open market shown at most this many rows of each side; the totals count them all.
MARKET_ROWS = 200


async def open_market(
    db: aiosqlite.Connection, now_ms: int, *, limit: int = MARKET_ROWS
) -> dict[str, Any]:
    """The federation's open offers and needs, still in time at `now_ms` (milliseconds).

    `offers`: `{"seller", "offer", "item", "category", "left" (quantity not yet reserved,
    in `unit`), "unit", "unit_price" (cents per unit), "min_order", "until" (ms), "area",
    "delivery"}`, by item then price; `needs`: `{"buyer", "need", "item", "category",
    "quantity", "unit", "max_unit_price" (cents or None), "until" (ms), "area"}`, by item
    then soonest needed. At most `limit` of each; `offers_total` and `needs_total` count all.
    """
    offer_where = (
        " FROM offers WHERE state = 'open' AND quantity > reserved AND available_until >= ?"
    )
    need_where = " FROM needs WHERE state = 'open' AND needed_by >= ?"
    offer_rows = await fetch_all(
        db,
        "SELECT author, offer, item, category, quantity - reserved, unit, unit_price,"
        f" min_order, available_until, area, delivery{offer_where}"
        " ORDER BY item, unit_price, author, offer LIMIT ?",
        (now_ms, limit),
    )
    need_rows = await fetch_all(
        db,
        "SELECT author, need, item, category, quantity, unit, max_unit_price, needed_by,"
        f" area{need_where} ORDER BY item, needed_by, author, need LIMIT ?",
        (now_ms, limit),
    )
    offers_total = await fetch_one(db, f"SELECT COUNT(*){offer_where}", (now_ms,))
    needs_total = await fetch_one(db, f"SELECT COUNT(*){need_where}", (now_ms,))
    offer_keys = ("seller", "offer", "item", "category", "left", "unit", "unit_price",
                  "min_order", "until", "area", "delivery")  # fmt: skip
    need_keys = ("buyer", "need", "item", "category", "quantity", "unit", "max_unit_price",
                 "until", "area")  # fmt: skip
    offers = [dict(zip(offer_keys, r, strict=True)) for r in offer_rows]
    needs = [dict(zip(need_keys, r, strict=True)) for r in need_rows]
    for row in (*offers, *needs):
        row["item"] = safe_text(str(row["item"]))
    return {
        "offers": offers,
        "offers_total": int(offers_total[0]) if offers_total else 0,
        "needs": needs,
        "needs_total": int(needs_total[0]) if needs_total else 0,
    }


async def trade_totals(db: aiosqlite.Connection) -> dict[str, int]:
    states = dict(await fetch_all(db, "SELECT state, COUNT(*) FROM trades GROUP BY state"))
    volume = await fetch_one(
        db, "SELECT COALESCE(SUM(total), 0) FROM trades WHERE state = 'settled'"
    )
    return {
        "count": sum(states.values()),
        "settled": states.get("settled", 0),
        "open": sum(n for state, n in states.items() if state in OPEN_STATES),
        "disputed": states.get("disputed", 0),
        "volume": int(volume[0]) if volume else 0,
    }  # fmt: skip


async def needs_met_share(db: aiosqlite.Connection) -> float | None:
    """Of the needs co-ops posted (what they would otherwise import), the share met inside
    the federation: the needing co-op settled trades in that category, in the need's unit,
    for at least the quantity it asked, after posting it."""
    needs = await fetch_all(db, "SELECT author, category, unit, quantity FROM needs")
    if not needs:
        return None
    bought: dict[tuple[str, str, str], int] = defaultdict(int)
    for buyer, category, unit, qty in await fetch_all(
        db,
        "SELECT t.buyer, o.category, o.unit, SUM(t.quantity) FROM trades t JOIN offers o"
        " ON o.author = t.seller AND o.offer = t.offer WHERE t.state = 'settled'"
        " GROUP BY t.buyer, o.category, o.unit",
    ):
        bought[(buyer, category, unit)] += qty
    met = 0
    for author, category, unit, qty in needs:
        key = (author, category, unit)
        if bought[key] >= qty:
            met += 1
            bought[key] -= qty
    return round(met / len(needs), 4)


async def aid_summary(db: aiosqlite.Connection) -> dict[str, Any]:
    """Calls for help the federation saw: by category and urgency, open ones, time to
    fulfilment (median and 90th percentile), how many were escalated after waiting."""
    rows = await fetch_all(
        db,
        "SELECT category, urgency, requester_state, raised_at, escalated_at, closed_at"
        " FROM aid_requests",
    )
    by: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    minutes: list[float] = []
    open_by_urgency = dict.fromkeys(URGENCY_ORDER, 0)
    waited = 0
    for category, urgency, state, raised_at, escalated_at, closed_at in rows:
        by[category][urgency] += 1
        if state == "open":
            open_by_urgency[urgency] = open_by_urgency.get(urgency, 0) + 1
        if state == "fulfilled" and closed_at is not None:
            minutes.append((closed_at - raised_at) / MINUTE_MS)
        if escalated_at is not None and escalated_at - raised_at >= WAITED_MS:
            waited += 1
    alerts = await fetch_all(
        db,
        "SELECT author, alert, kind, severity, area, advice, raised_at FROM alerts"
        " WHERE resolved_at IS NULL ORDER BY raised_at DESC",
    )
    keys = ("author", "alert", "kind", "severity", "area", "advice", "raised_at")
    return {
        "requests": len(rows),
        "by_category": {c: dict(u) for c, u in sorted(by.items())},
        "open_by_urgency": open_by_urgency,
        "fulfilled": len(minutes),
        "median_minutes_to_fulfil": round(statistics.median(minutes), 1) if minutes else None,
        "p90_minutes_to_fulfil": _p90(minutes),
        "escalated_after_waiting_share": round(waited / len(rows), 4) if rows else None,
        "alerts_open": [
            {**dict(zip(keys, a, strict=True)), "advice": safe_text(str(a[5]))} for a in alerts
        ],
    }


def _p90(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 1)


async def open_aid(db: aiosqlite.Connection) -> list[dict[str, Any]]:
    """Open requests for the whole federation: most urgent first, then soonest needed."""
    rows = await fetch_all(
        db,
        "SELECT requester, request, category, urgency, quantity, pledged, accepted, area,"
        " description, needed_by, raised_at FROM aid_requests WHERE requester_state = 'open'",
    )
    keys = ("requester", "request", "category", "urgency", "quantity", "pledged", "accepted",
            "area", "description", "needed_by", "raised_at")  # fmt: skip
    out = [dict(zip(keys, r, strict=True)) for r in rows]
    for r in out:
        r["description"] = safe_text(str(r["description"]))  # free text (PROTOCOL.md §18)
    out.sort(key=lambda r: (URGENCY_ORDER.index(r["urgency"]), r["needed_by"]))
    return out


async def timeseries(
    db: aiosqlite.Connection, *, now_ms: int, bucket_ms: int = MINUTE_MS, buckets: int = 60
) -> dict[str, Any]:
    """Counts per time bucket (by the authors' clocks): events, trade proposals, settled
    trades' receipts and calls for help, for the last `buckets` buckets."""
    start = (now_ms // bucket_ms - buckets + 1) * bucket_ms
    series: dict[str, list[int]] = {k: [0] * buckets for k in ("events", "trades", "aid")}
    for kind, at in await fetch_all(db, "SELECT kind, at FROM events WHERE at >= ?", (start,)):
        i = (at - start) // bucket_ms
        if not 0 <= i < buckets:
            continue
        series["events"][i] += 1
        if kind == "trade.proposed":
            series["trades"][i] += 1
        elif kind == "aid.requested":
            series["aid"][i] += 1
    return {"start": start, "bucket_ms": bucket_ms, **series}


async def consent(db: aiosqlite.Connection, charter: Charter | None) -> dict[str, Any]:
    s = await standings(db, charter)
    counts: dict[str, int] = defaultdict(int)
    for st in s.values():
        counts[st.status] += 1
    applicants = [
        {"slug": st.slug, "consents": list(st.consents), "objections": list(st.objections),
         "needed": st.needed}
        for st in s.values() if st.status == "applicant"
    ]  # fmt: skip
    return {"by_status": dict(counts), "applicants": applicants}


# The open market shown at most this many pools; the totals count them all.
POOL_ROWS = 200
# Pool states that still take commitments or wait for their allocation (PROTOCOL.md §19).
POOL_OPEN_STATES = ("open", "box_fill", "closing")


async def pool_totals(db: aiosqlite.Connection) -> dict[str, Any]:
    """The federation's pooled purchases (PROTOCOL.md §19): how many pools in each state
    (`by_state`; `open` counts open, box-fill and closing ones), the cases and units
    delivered pools bought (`cases_bought`, `units_bought`), the credit their settlements
    moved (`volume`, cents) and what pooling saved (`saved`, cents): over delivered pools
    that give a single-unit price, (single_unit_price - unit_price) × units. The
    single-unit price is what the organizer declared in its `pool.opened` (what the
    supplier charges for one unit alone), not a price anyone else confirmed. Summed in
    Python integers: each product may pass 64 bits (SQLite would turn it into a REAL)."""
    states = {
        str(k): int(n)
        for k, n in await fetch_all(db, "SELECT state, COUNT(*) FROM pools GROUP BY state")
    }
    cases = units = saved = 0
    for got, size, price, single in await fetch_all(
        db,
        "SELECT cases, case_size, unit_price, single_unit_price FROM pools"
        " WHERE state = 'delivered'",
    ):
        cases += int(got)
        units += int(got) * int(size)
        if single:
            saved += (int(single) - int(price)) * int(got) * int(size)
    volume = await fetch_one(db, "SELECT COALESCE(SUM(amount), 0) FROM pool_settlements")
    return {
        "count": sum(states.values()),
        "by_state": states,
        "open": sum(states.get(s, 0) for s in POOL_OPEN_STATES),
        "closed": states.get("closed", 0),
        "delivered": states.get("delivered", 0),
        "cancelled": states.get("cancelled", 0),
        "cases_bought": cases,
        "units_bought": units,
        "volume": int(volume[0]) if volume else 0,
        "saved": saved,
    }


async def pools_list(db: aiosqlite.Connection, *, limit: int = POOL_ROWS) -> dict[str, Any]:
    """The federation's pools, the newest opened first (at most `limit`; `total` counts
    all): `{"organizer", "pool", "item", "unit", "case_size" (units), "unit_price" and
    "single_unit_price" (cents per unit, 0: not given), "min_cases", "max_cases" (0: no
    cap), "closes_at" and "opened_at" (ms), "supplier" (a member's slug, or ""),
    "supplier_name" (a supplier outside the federation, or ""), "state", "cases",
    "participants", "committed" (units: quantities of the latest or counted commitments),
    "allocated" (units shared out), "received" (participants who confirmed), "saved"
    (cents, delivered pools only: against the single-unit price the organizer declared)}`."""
    keys = ("organizer", "pool", "item", "unit", "case_size", "unit_price", "single_unit_price",
            "min_cases", "max_cases", "closes_at", "opened_at", "supplier", "supplier_name",
            "state", "cases")  # fmt: skip
    rows = await fetch_all(
        db,
        f"SELECT {', '.join(keys)} FROM pools ORDER BY opened_at DESC, organizer, pool LIMIT ?",
        (limit,),
    )
    shares = {
        (r[0], r[1]): (int(r[2]), int(r[3] or 0), int(r[4] or 0), int(r[5] or 0))
        for r in await fetch_all(
            db,
            "SELECT organizer, pool, COUNT(*), SUM(quantity), SUM(share), SUM(received > 0)"
            " FROM pool_shares WHERE quantity > 0 OR share > 0 GROUP BY organizer, pool",
        )
    }
    total = await fetch_one(db, "SELECT COUNT(*) FROM pools")
    out = []
    for row in rows:
        pool = dict(zip(keys, row, strict=True))
        pool["item"] = safe_text(str(pool["item"]))  # signed free text (PROTOCOL.md §18)
        pool["supplier_name"] = safe_text(str(pool["supplier_name"] or ""))
        people, committed, allocated, received = shares.get((row[0], row[1]), (0, 0, 0, 0))
        units = int(pool["cases"] or 0) * int(pool["case_size"])
        cheaper = int(pool["single_unit_price"] or 0) - int(pool["unit_price"])
        delivered = pool["state"] == "delivered" and pool["single_unit_price"]
        out.append(
            pool | {"participants": people, "committed": committed, "allocated": allocated,
                    "received": received, "saved": cheaper * units if delivered else 0}
        )  # fmt: skip
    return {"pools": out, "total": int(total[0]) if total else 0}


async def hours_by_neighborhood(db: aiosqlite.Connection) -> list[dict[str, Any]]:
    """Hours between neighborhoods (PROTOCOL.md §20), in quarter hours: per neighborhood
    named by a transfer, the hours it `given` (signed over to it by those it helped), the
    hours it `received` (it signed them over), its `balance` (given - received), and the
    transfers behind each: `transfers_given` (naming it as `to`) and `transfers_received`
    (it signed them). Each transfer counts once in each column, so either column sums to
    `hour_totals`' `transfers`. By slug."""
    rows: dict[str, dict[str, Any]] = {}

    def row(slug: str) -> dict[str, Any]:
        return rows.setdefault(
            slug,
            {"slug": slug, "given": 0, "received": 0, "balance": 0,
             "transfers_given": 0, "transfers_received": 0},
        )  # fmt: skip

    for author, to, quarters, count in await fetch_all(
        db,
        "SELECT author, to_slug, SUM(quarters), COUNT(*) FROM hour_transfers"
        " GROUP BY author, to_slug",
    ):
        giver, receiver = row(str(to)), row(str(author))
        giver["given"] += int(quarters)
        receiver["received"] += int(quarters)
        giver["transfers_given"] += int(count)
        receiver["transfers_received"] += int(count)
    for r in rows.values():
        r["balance"] = r["given"] - r["received"]
    return [rows[s] for s in sorted(rows)]


async def hour_totals(db: aiosqlite.Connection) -> dict[str, int]:
    """The hours moved between neighborhoods (PROTOCOL.md §20): `transfers` counted and
    `quarters` moved (quarter hours) by the federation's `hours.transferred`."""
    row = await fetch_one(db, "SELECT COUNT(*), COALESCE(SUM(quarters), 0) FROM hour_transfers")
    return {"transfers": int(row[0]), "quarters": int(row[1])} if row else {
        "transfers": 0, "quarters": 0}  # fmt: skip
