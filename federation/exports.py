"""What an observer hands to other tools: Prometheus text, CSV tables, CloudEvents.

- `/metrics`: the Prometheus text exposition format (version 0.0.4), written here with its
  escaping rules; the tests read it back with `prometheus_client`'s own parser.
- `/export/<table>.csv`: one table of the store, its text made safe to open (PROTOCOL.md
  §18): format characters removed, controls as spaces, and a cell that a spreadsheet would
  read as a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) quoted
  with a leading `'`. Bytes are lowercase hex; the `events` table's `wire` keeps every
  event exactly as signed. Times are ISO 8601 UTC (`2026-12-01T14:05:09.123Z`), amounts
  integer cents of the federation's currency, hours integer quarter hours (`quarters`),
  and a table that names an offer (`trades`, `reservations`) carries its `item` and `unit`
  beside the offer's id. `pools.csv` is one row per pooled purchase (PROTOCOL.md §19), and
  `hours.csv` (the `hour_transfers` table) one per transfer of hours between
  neighborhoods (§20).
- `/export/events.jsonl`: every event as a CloudEvent (spec 1.0, structured JSON mode), one
  per line, in the order the observer stored them; `data` is the event body as JSON (bytes
  as lowercase hex) and the coopnet extensions carry what a verifier needs: `coopseq`,
  `coopkey` and `coopwire` (the signed wire bytes, base64: anyone can verify it again).
  An event of a kind the observer does not know (PROTOCOL.md §8.1) has its body map as
  received in `data` and the extension `coopopaque: true`. Each line is ASCII: every
  other character is a JSON `\\uXXXX` escape, so the text is exactly as signed once decoded,
  and no bidi control or escape sequence reaches a terminal that shows the file.
"""

from __future__ import annotations

import base64
import csv
import datetime
import io
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiosqlite
import msgspec

from coopnet.node.engine.store_io import fetch_all
from coopnet.protocol import Opaque, unseal_stored
from coopnet.protocol.text import safe_text

# The tables an export may name, and nothing else (they end up in SQL).
EXPORT_TABLES = ("events", "neighborhoods", "offers", "needs", "trades", "trade_events",
                 "reservations", "aid_requests", "aid_pledges", "alerts", "member_applications",
                 "member_positions", "member_retirements", "forks", "rejected_events",
                 "domain_rejections", "pools", "pool_shares", "pool_settlements",
                 "hour_transfers")  # fmt: skip
# Export names that are not a table's: `hours.csv` is the hours between neighborhoods
# (PROTOCOL.md §20), one row per `hours.transferred` the rules kept.
EXPORT_ALIASES = {"hours": "hour_transfers"}
Labels = tuple[tuple[str, str], ...]


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def metric(name: str, kind: str, help_text: str, samples: Mapping[Labels, float]) -> str:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples.items():
        inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels)
        text = str(int(value)) if value.is_integer() else repr(value)  # every digit
        lines.append(f"{name}{{{inner}}} {text}" if inner else f"{name} {text}")
    return "\n".join(lines)


async def metrics_text(db: aiosqlite.Connection, *, summary: Mapping[str, Any]) -> str:
    events: dict[Labels, float] = {
        (("author", str(a)), ("kind", str(k))): float(n)
        for a, k, n in await fetch_all(
            db, "SELECT author, kind, COUNT(*) FROM events GROUP BY author, kind ORDER BY 1, 2"
        )
    }
    rejections: dict[Labels, float] = {
        (("code", str(c)),): float(n) for c, n in summary["rejected"].items()
    }
    aid_open: dict[Labels, float] = {
        (("urgency", str(u)),): float(n) for u, n in summary["aid"]["open_by_urgency"].items()
    }
    audit: dict[Labels, float] = {
        (("severity", str(s)),): float(n) for s, n in summary["audit"].items()
    }
    buffer = summary["buffer"]
    parts = [
        metric("coopnet_events_total", "counter", "Events stored, by author and kind.", events),
        metric("coopnet_rejections_total", "counter",
               "Events refused, by stable code (PROTOCOL.md §7 and the domain rules).",
               rejections),
        metric("coopnet_ledger_sum", "gauge",
               "Sum of all mutual-credit balances, in cents: always 0.",
               {(): float(summary["ledger_sum"])}),
        metric("coopnet_aid_open", "gauge", "Open calls for help in the federation, by urgency.",
               aid_open),
        metric("coopnet_pools", "gauge", "Pooled purchases, by state (PROTOCOL.md §19).",
               {(("state", str(k)),): float(n)
                for k, n in sorted(summary["pools"]["by_state"].items())}),
        metric("coopnet_pool_saved_cents_total", "counter",
               "What delivered pools saved against the suppliers' single-unit prices.",
               {(): float(summary["pools"]["saved"])}),
        metric("coopnet_hours_moved_quarters_total", "counter",
               "Quarter hours signed over between neighborhoods (PROTOCOL.md §20).",
               {(): float(summary["hours"]["quarters"])}),
        metric("coopnet_hours_ledger_sum", "gauge",
               "Sum of all hour balances, in quarter hours: always 0.",
               {(): float(summary["hours_ledger_sum"])}),
        metric("coopnet_trades_settled_total", "counter", "Trades settled.",
               {(): float(summary["trades"]["settled"])}),
        metric("coopnet_trade_volume_cents_total", "counter", "Credit moved by settled trades.",
               {(): float(summary["trades"]["volume"])}),
        metric("coopnet_audit_findings", "gauge", "Audit findings, by severity.", audit),
        metric("coopnet_neighborhoods", "gauge", "Neighborhoods known, and members.",
               {(("membership", "known"),): float(summary["neighborhoods"]),
                (("membership", "member"),): float(summary["members"])}),
        metric("coopnet_gap_buffer_events", "gauge",
               "Events held in memory beyond a gap, waiting for the missing range "
               "(PROTOCOL.md §6.4).", {(): float(buffer["events"])}),
        metric("coopnet_gap_buffer_bytes", "gauge",
               "Wire bytes of the events held beyond a gap (capped per author and in all).",
               {(): float(buffer["bytes"])}),
        metric("coopnet_gap_buffer_dropped_total", "counter",
               "Events left out of the gap buffer because a byte cap was reached.",
               {(): float(buffer["dropped"])}),
    ]  # fmt: skip
    return "\n".join(parts) + "\n"


# Columns holding a moment, in milliseconds since the Unix epoch in the store: exported as
# ISO 8601 UTC (`iso_time`), whatever table they are in.
TIME_COLUMNS = frozenset({"at", "received_at", "founded_at", "available_until", "needed_by",
                          "expires_at", "proposed_at", "raised_at", "escalated_at", "closed_at",
                          "resolved_at", "detected_at", "closes_at", "opened_at"})  # fmt: skip
# Tables that name an offer by (seller, offer): the offer's item and unit follow its id.
OFFER_OWNER = {"trades": "seller", "reservations": "seller"}
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def iso_time(ms: int | None) -> str:
    """Milliseconds since the Unix epoch as ISO 8601 UTC with milliseconds,
    `2026-12-01T14:05:09.123Z`; "" for None (never happened) and for a moment beyond the
    year 9999 (an offer without end is `available_until` 2^62)."""
    if ms is None:
        return ""
    try:  # integer arithmetic: exact to the millisecond, never through a float
        at = EPOCH + datetime.timedelta(milliseconds=ms)
    except OverflowError:
        return ""
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


async def export_columns(db: aiosqlite.Connection, table: str) -> list[str]:
    """The header of `table`'s CSV export: the table's columns, with `item` and `unit`
    after `offer` in a table that names an offer (`OFFER_OWNER`)."""
    cursor = await db.execute(f"SELECT * FROM {table} LIMIT 0")
    columns = [str(c[0]) for c in cursor.description]
    await cursor.close()
    if table in OFFER_OWNER:
        at = columns.index("offer") + 1
        columns[at:at] = ["item", "unit"]
    return columns


async def table_csv(db: aiosqlite.Connection, table: str) -> str:
    """One of `EXPORT_TABLES` (or `EXPORT_ALIASES`) as CSV text, a row per stored row in
    the order stored. Times (`TIME_COLUMNS`) as ISO 8601 UTC (`iso_time`), amounts as
    integer cents, hours as integer quarter hours (`quarters`), bytes as lowercase hex,
    text made safe (`csv_cell`); an offer's id is followed by its item and unit ("" when
    the observer does not hold the offer)."""
    table = EXPORT_ALIASES.get(table, table)
    if table not in EXPORT_TABLES:
        raise KeyError(table)
    columns = await export_columns(db, table)
    joined = ("item", "unit") if table in OFFER_OWNER else ()
    picked = ", ".join(f"o.{c}" if c in joined else f"x.{c}" for c in columns)
    sql = f"SELECT {picked} FROM {table} x"
    if table in OFFER_OWNER:
        sql += f" LEFT JOIN offers o ON o.author = x.{OFFER_OWNER[table]} AND o.offer = x.offer"
    rows = await fetch_all(db, sql + " ORDER BY x.rowid")
    times = [c in TIME_COLUMNS for c in columns]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            [iso_time(v) if t else csv_cell(v) for v, t in zip(row, times, strict=True)]
        )
    return out.getvalue()


# What a spreadsheet reads as the start of a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """One value as a CSV cell: bytes as hex; text made safe (§18) and kept from being
    read as a formula; anything else as it is."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, str):
        text = safe_text(value)
        return "'" + text if text.startswith(FORMULA_STARTS) else text
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def cloudevent(wire: bytes, net: bytes) -> dict[str, Any]:
    env = unseal_stored(wire, net=net)
    at = datetime.datetime.fromtimestamp(env.at / 1000, tz=datetime.UTC)
    opaque = isinstance(env.body, Opaque)
    body: Any = (
        msgspec.msgpack.decode(env.body.raw)  # the map as received, decoded without a schema
        if isinstance(env.body, Opaque)
        else msgspec.to_builtins(env.body, builtin_types=(bytes,))
    )
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": env.id.hex(),
        "source": f"coopnet:{net.hex()}/{env.author}",
        "type": f"coop.{env.kind}",
        "subject": f"{env.author}/{env.seq}",
        "time": at.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": _jsonable(body),
        "coopseq": env.seq,
        "coopkey": env.key.hex(),
        "coopwire": base64.b64encode(wire).decode("ascii"),
    }
    if opaque:
        event["coopopaque"] = True
    return event


def _ascii_json(value: Any) -> bytes:
    """`value` as JSON (msgspec), every non-ASCII character as a `\\uXXXX` escape (a
    surrogate pair beyond the BMP): the same JSON once decoded."""
    text = msgspec.json.encode(value).decode("utf-8")
    return _NON_ASCII.sub(_escape, text).encode("ascii")


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


async def cloudevents_lines(
    db: aiosqlite.Connection, net: bytes, *, page: int = 1000
) -> AsyncIterator[bytes]:
    """Every stored event as one JSON line, read a page at a time."""
    after = 0
    while True:
        rows = await fetch_all(
            db, "SELECT pos, wire FROM events WHERE pos > ? ORDER BY pos LIMIT ?", (after, page)
        )
        if not rows:
            return
        chunk = b"".join(_ascii_json(cloudevent(bytes(w), net)) + b"\n" for _, w in rows)
        yield chunk
        after = rows[-1][0]
