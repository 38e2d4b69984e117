"""The observer's web face: a dashboard (assets shipped in the package, no CDN), the JSON
API behind each view, live updates (server-sent events), Prometheus `/metrics` and exports.

    GET /                          the dashboard (federation/static/)
    GET /api/summary               the overview: counts, ledger, trade, aid, audit, liveness
    GET /api/neighborhoods         one row per neighborhood;  /api/neighborhoods/{slug}
    GET /api/flows                 settled trade between pairs (the supply chains)
    GET /api/goods                 what settled trade moved: items, quantities, units
    GET /api/market                open offers and needs of the federation
    GET /api/timeseries            events, trades and calls for help per minute
    GET /api/aid                   open calls for help (most urgent first) and alerts
    GET /api/pools                 pooled purchases: totals, and each pool (newest first)
    GET /api/hours                 hours between neighborhoods (quarter hours), per neighborhood
    GET /api/audit                 findings, most severe first
    GET /api/membership            consent decisions: statuses, applicants and their votes
    GET /api/live                  server-sent events: `update` with the summary on change
    GET /metrics                   Prometheus text
    GET /export/{table}.csv        one table (`pools.csv`, `hours.csv` too);
    GET /export/events.jsonl       CloudEvents

Amounts are integer cents (the currency's minor unit), hours integer quarter hours and
times milliseconds since the Unix epoch in every JSON answer; `/api/summary` names the
currency once (`currency`: code, name, symbol, minor_units) and the page shows amounts in
it ("12.50 credits") and hours as hours ("2.25 h").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
from anyio.abc import TaskStatus
from litestar import Litestar, Request, Response, get
from litestar.datastructures import State
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath
from litestar.response import ServerSentEvent, Stream
from litestar.static_files import create_static_files_router

from coopnet.federation import measures
from coopnet.federation.audit import audit, audit_report, critical_count
from coopnet.federation.exports import (
    EXPORT_ALIASES,
    EXPORT_TABLES,
    cloudevents_lines,
    metrics_text,
    table_csv,
)
from coopnet.federation.findings import Finding
from coopnet.federation.observer import Observer
from coopnet.node.engine.api import HttpCounts, serve_app
from coopnet.node.engine.live import Changes, live_updates
from coopnet.node.engine.status import all_rejections

log = logging.getLogger("coopnet.dashboard")
STATIC = Path(__file__).parent / "static"


def _obs(state: State) -> Observer:
    obs: Observer = state.observer
    return obs


async def summary(obs: Observer) -> dict[str, Any]:
    db, charter, now = obs.store.db, obs.charter, obs.clock()
    hoods = await measures.neighborhoods(db, charter, now)
    report = await audit_report(db, charter, now_ms=now)
    findings = report.findings
    balances = {h["slug"]: h["balance"] for h in hoods}
    live = [h["liveness_s"] for h in hoods if h["liveness_s"] is not None]
    return {
        "federation": charter.name if charter else "development federation",
        "net": obs.net.hex(),
        "observer": obs.name,
        "currency": measures.currency(charter),
        "caught_up": obs.progress.caught_up,
        "stream_seq": obs.progress.read,
        "neighborhoods": len(hoods),
        "members": sum(1 for h in hoods if h["membership"] in ("founder", "admitted")),
        "events": sum(h["events"] for h in hoods),
        "trades": await measures.trade_totals(db),
        "ledger_sum": sum(balances.values()),  # pooled purchases' settlements included
        # The pools' settlements and the hour ledger folded again by the audit: always 0.
        "pool_ledger_sum": report.pool_ledger_sum,
        "hours_ledger_sum": report.hours_ledger_sum,
        "balances": balances,
        "pools": await measures.pool_totals(db),
        "hours": await measures.hour_totals(db),
        "needs_met_share": await measures.needs_met_share(db),
        "aid": await measures.aid_summary(db),
        "audit": {
            "critical": critical_count(findings),
            "warning": sum(1 for f in findings if f.severity == "warning"),
        },
        "rejected": await all_rejections(obs.store),
        # Events held beyond a gap in memory (PROTOCOL.md §6.4): count, wire bytes, and
        # events left out for a byte cap since the observer started.
        "buffer": {
            "events": obs.chains.gaps.count,
            "bytes": obs.chains.gaps.bytes,
            "dropped": obs.chains.gaps.dropped,
        },
        "oldest_silence_s": max(live) if live else None,
        # Members at (or near) their bus quota: their events are refused (OPERATIONS §12).
        "quota": {
            "full": [q.member for q in obs.quotas.uses if q.state == "full"],
            "near": [q.member for q in obs.quotas.uses if q.state == "near"],
        },
        "updated_at": now,
    }


@get("/api/summary", summary="The federation at a glance")
async def get_summary(state: State) -> dict[str, Any]:
    counts: HttpCounts = state.http
    # Requests refused at the dashboard's HTTP doors (OPERATIONS.md §13), by code.
    return {**await summary(_obs(state)), "http_refused": counts.as_dict()}


@get("/api/quotas", summary="Each member's use of its bus quota, fullest first")
async def get_quotas(state: State) -> list[dict[str, object]]:
    return _obs(state).quotas.report()


@get("/api/neighborhoods", summary="Every neighborhood: membership, activity, trade, aid")
async def get_neighborhoods(state: State) -> list[dict[str, Any]]:
    obs = _obs(state)
    return await measures.neighborhoods(obs.store.db, obs.charter, obs.clock())


@get("/api/neighborhoods/{slug:str}", summary="One neighborhood, with its flows and findings")
async def get_neighborhood(state: State, slug: FromPath[str]) -> dict[str, Any]:
    obs = _obs(state)
    rows = await measures.neighborhoods(obs.store.db, obs.charter, obs.clock())
    row = next((r for r in rows if r["slug"] == slug), None)
    if row is None:
        raise NotFoundException(f"no neighborhood {slug} here")
    flows = [f for f in await measures.flows(obs.store.db) if slug in (f["from"], f["to"])]
    goods = [g for g in await measures.goods_moved(obs.store.db) if slug in (g["from"], g["to"])]
    findings = await audit(obs.store.db, obs.charter, now_ms=obs.clock())
    return {
        **row,
        "flows": flows,
        "goods": goods,
        "findings": [msgspec.to_builtins(f) for f in findings if f.author == slug],
    }


@get("/api/flows", summary="Settled trade between neighborhoods: who supplies whom")
async def get_flows(state: State) -> list[dict[str, Any]]:
    return await measures.flows(_obs(state).store.db)


@get("/api/goods", summary="What settled trade moved between neighborhoods, by item")
async def get_goods(state: State) -> list[dict[str, Any]]:
    return await measures.goods_moved(_obs(state).store.db)


@get("/api/market", summary="The federation's open offers and needs, still in time")
async def get_market(state: State) -> dict[str, Any]:
    obs = _obs(state)
    return await measures.open_market(obs.store.db, obs.clock())


@get("/api/timeseries", summary="Events, trades and calls for help per minute, last hour")
async def get_timeseries(state: State) -> dict[str, Any]:
    obs = _obs(state)
    return await measures.timeseries(obs.store.db, now_ms=obs.clock())


@get("/api/aid", summary="Open calls for help, most urgent first, and open alerts")
async def get_aid(state: State) -> dict[str, Any]:
    db = _obs(state).store.db
    return {"open": await measures.open_aid(db), **await measures.aid_summary(db)}


@get("/api/pools", summary="Pooled purchases: totals, and each pool, newest first")
async def get_pools(state: State) -> dict[str, Any]:
    db = _obs(state).store.db
    return {**await measures.pools_list(db), "totals": await measures.pool_totals(db)}


@get("/api/hours", summary="Hours given and received per neighborhood, in quarter hours")
async def get_hours(state: State) -> dict[str, Any]:
    db = _obs(state).store.db
    return {
        "neighborhoods": await measures.hours_by_neighborhood(db),
        **await measures.hour_totals(db),
    }


@get("/api/audit", summary="Audit findings with their evidence, most severe first")
async def get_audit(state: State) -> list[Finding]:
    obs = _obs(state)
    return await audit(obs.store.db, obs.charter, now_ms=obs.clock())


@get("/api/membership", summary="Consent decisions: statuses, applicants and their votes")
async def get_membership(state: State) -> dict[str, Any]:
    obs = _obs(state)
    return await measures.consent(obs.store.db, obs.charter)


@get("/api/live", summary="Server-sent events: `update` (the summary) whenever events arrive")
async def live(state: State) -> ServerSentEvent:
    obs, changes = _obs(state), state.changes
    return ServerSentEvent(live_updates(changes, lambda: summary(obs)))


@get("/metrics", summary="Prometheus text exposition", media_type="text/plain; version=0.0.4")
async def metrics(state: State) -> str:
    obs = _obs(state)
    return await metrics_text(obs.store.db, summary=await summary(obs))


@get("/export/{name:str}", summary="A table as CSV (`trades.csv`), or `events.jsonl`")
async def export(state: State, name: FromPath[str]) -> Response[str] | Stream:
    obs = _obs(state)
    if name == "events.jsonl":
        return Stream(
            cloudevents_lines(obs.store.db, obs.net),
            media_type="application/x-ndjson",
            headers={"content-disposition": 'attachment; filename="events.jsonl"'},
        )
    table = name.removesuffix(".csv")
    if not name.endswith(".csv") or EXPORT_ALIASES.get(table, table) not in EXPORT_TABLES:
        names = ", ".join((*EXPORT_TABLES, *EXPORT_ALIASES))
        raise NotFoundException(f"exports: events.jsonl or one of {names}")
    return Response(
        await table_csv(obs.store.db, table),
        media_type="text/csv",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


def _on_http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, str]]:
    code = "not_found" if exc.status_code == 404 else "bad_request"
    return Response({"code": code, "message": str(exc.detail)}, status_code=exc.status_code)


def _on_crash(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, str]]:
    log.exception("dashboard request %s failed", request.url.path, exc_info=exc)
    return Response({"code": "internal", "message": "internal error; logged"}, status_code=500)


def create_dashboard(obs: Observer) -> Litestar:
    changes = Changes()
    obs.listeners.append(changes.notice)
    assets = create_static_files_router(path="/", directories=[STATIC], html_mode=True)
    return Litestar(
        route_handlers=[
            get_summary, get_neighborhoods, get_neighborhood, get_flows, get_goods, get_market,
            get_timeseries, get_aid, get_pools, get_hours, get_audit, get_membership, get_quotas,
            live, metrics, export, assets,
        ],
        state=State({"observer": obs, "changes": changes, "http": HttpCounts()}),
        logging_config=None,
        openapi_config=None,
        exception_handlers={HTTPException: _on_http, Exception: _on_crash},
    )  # fmt: skip


async def serve_dashboard(
    obs: Observer,
    host: str,
    port: int,
    *,
    names: Sequence[str] = (),
    task_status: TaskStatus[str],
) -> None:
    """Serve the dashboard on `host`:`port` behind the HTTP doors (node/engine/http_doors.py:
    it answers to the loopback names, `host` and `names`; security headers on every answer)."""

    def announce(url: str) -> None:
        log.info("%s: dashboard at %s", obs.name, url)

    app = create_dashboard(obs)
    await serve_app(
        app, host, port, names=names, counts=app.state.http, announce=announce,
        task_status=task_status,
    )  # fmt: skip
