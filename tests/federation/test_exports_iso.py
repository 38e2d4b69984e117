"""CSV exports as a spreadsheet reads them (issue 17): every time an ISO 8601 UTC moment
(`2026-12-01T14:05:09.123Z`), not epoch milliseconds, and an offer's item and unit beside
its id. Read back with Python's own csv and datetime parsers from a real observer's
dashboard over a day of trade on a real nats-server."""

from __future__ import annotations

import csv
import datetime
import io
import re
from pathlib import Path

import httpx
import pytest

from coopnet.federation.exports import EXPORT_TABLES, TIME_COLUMNS, iso_time
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.market import projection as market
from tests.federation.test_observer import DAY_MS, market_day

pytestmark = pytest.mark.timeout(90)

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def ms_of(text: str) -> int:
    """An exported moment back to milliseconds, by the standard library's own parser."""
    at = datetime.datetime.fromisoformat(text)
    assert at.utcoffset() == datetime.timedelta(0), text
    return int(at.timestamp()) * 1000 + at.microsecond // 1000


def test_iso_time_is_exact_to_the_millisecond_and_empty_for_never() -> None:
    assert iso_time(0) == "1970-01-01T00:00:00.000Z"
    assert iso_time(1_796_133_909_123) == "2026-12-01T14:05:09.123Z"
    assert iso_time(1_796_133_909_999) == "2026-12-01T14:05:09.999Z"  # no float rounding up
    assert iso_time(253_402_300_799_999) == "9999-12-31T23:59:59.999Z"
    assert iso_time(2**62) == ""  # an offer without end: beyond any calendar
    assert iso_time(None) == ""
    assert ms_of(iso_time(1_796_133_909_123)) == 1_796_133_909_123


async def csv_table(http: httpx.AsyncClient, url: str, table: str) -> list[dict[str, str]]:
    r = await http.get(f"{url}/export/{table}.csv")
    assert r.status_code == 200, table
    return list(csv.DictReader(io.StringIO(r.text)))


async def test_exports_carry_iso_times_and_the_item_beside_each_offer(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    async with market_day(tmp_path, nats_server.url) as day, httpx.AsyncClient() as http:
        # trades.csv: the offer's item and unit follow its id; the other columns as stored.
        r = await http.get(f"{day.url}/export/trades.csv")
        header = next(csv.reader(io.StringIO(r.text)))
        columns = list(market.TRADE_COLUMNS)
        at = columns.index("offer") + 1
        assert header == [*columns[:at], "item", "unit", *columns[at:]]
        trades = {t["trade"]: t for t in await csv_table(http, day.url, "trades")}
        goods = {name: (t["offer"], t["item"], t["unit"]) for name, t in trades.items()}
        assert goods == {
            "t-1": ("eggs-1", "eggs", "piece"), "t-2": ("eggs-1", "eggs", "piece"),
            "t-3": ("eggs-1", "eggs", "piece"), "t-4": ("kale-1", "kale", "piece"),
            "t-5": ("eggs-1", "eggs", "piece"),
        }  # fmt: skip
        assert trades["t-4"]["total"] == "200"  # amounts stay integer cents
        stored = await day.obs.store.all("SELECT trade, proposed_at, expires_at FROM trades")
        for trade, proposed_at, expires_at in stored:
            assert ISO.match(trades[trade]["proposed_at"]), trades[trade]
            assert ms_of(trades[trade]["proposed_at"]) == proposed_at
            assert ms_of(trades[trade]["expires_at"]) == expires_at

        reservations = await csv_table(http, day.url, "reservations")
        assert reservations and all(
            (r["item"], r["unit"]) == ({"eggs-1": "eggs", "kale-1": "kale"}[r["offer"]], "piece")
            for r in reservations
        )

        # events.csv: each event's own clock and when the observer stored it, exactly.
        events = await csv_table(http, day.url, "events")
        rows = await day.obs.store.all("SELECT at, received_at FROM events ORDER BY pos")
        assert [(ms_of(e["at"]), ms_of(e["received_at"])) for e in events] == rows

        offers = {o["offer"]: o for o in await csv_table(http, day.url, "offers")}
        until = await day.obs.store.all("SELECT offer, available_until FROM offers")
        assert {o: ms_of(offers[o]["available_until"]) for o, _ in until} == dict(until)
        assert all(ms_of(offers[o]["available_until"]) > day.obs.clock() for o, _ in until)
        assert all(v < day.obs.clock() + 2 * DAY_MS for _, v in until)

        # Every time column of every table: an ISO moment, or empty when it never happened.
        seen = 0
        for table in EXPORT_TABLES:
            for row in await csv_table(http, day.url, table):
                for column in TIME_COLUMNS & row.keys():
                    assert row[column] == "" or ISO.match(row[column]), (table, column, row)
                    seen += row[column] != ""
        assert seen > len(rows)
