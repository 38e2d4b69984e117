"""`coopnet bench`: each command runs end to end and reports its figure, its limit and the
ratio. (No timing is asserted: these machines are shared; BENCHMARKS.md holds the figures.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(180)


def bench(*args: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "coopnet", "bench", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    machine = result["machine"]
    assert isinstance(machine, dict) and machine["cores"] and machine["versions"]
    return result


def test_bench_ingest_reports_rate_limit_and_ratio() -> None:
    r = bench("ingest", "--events", "600", "--authors", "3", "--batch", "300")
    assert r["events"] == 600
    # Run as `python -m coopnet`: the worker processes started (they import that main
    # module, which must not run the command line again) and verified the batches.
    assert r["verified_in_worker_processes"] == 600
    assert isinstance(r["events_per_s"], int) and r["events_per_s"] > 0
    assert isinstance(r["verify_limit_per_s"], int) and r["verify_limit_per_s"] > 0
    assert isinstance(r["ratio"], float) and r["ratio"] > 0


def test_bench_publish_reports_rate_limit_and_ratio() -> None:
    r = bench("publish", "--events", "100")
    assert r["events"] == 100
    assert isinstance(r["raw_publish_async_per_s"], int) and r["raw_publish_async_per_s"] > 0
    assert isinstance(r["ratio"], float) and r["ratio"] > 0


def test_bench_trade_reports_each_step() -> None:
    r = bench("trade", "--trades", "5")
    steps = r["steps_ms"]
    assert isinstance(steps, dict)
    assert set(steps) == {"proposed_to_accepted", "accepted_to_shipped", "shipped_to_received"}
    for figures in steps.values():
        assert 0 < figures["p50"] <= figures["p99"]


def test_bench_catchup_reports_rate_and_ratio_to_ingest() -> None:
    r = bench("catchup", "--events", "300", "--authors", "3")
    assert r["events"] == 300
    assert isinstance(r["ingest_per_s"], int) and r["ingest_per_s"] > 0
    assert isinstance(r["ratio"], float) and r["ratio"] > 0


def test_bench_scale_converges_at_each_size() -> None:
    r = bench("scale", "--neighborhoods", "2,3", "--burst", "2")
    runs = r["runs"]
    assert isinstance(runs, list)
    assert [run["neighborhoods"] for run in runs] == [2, 3]
    assert [run["events_each_node_holds"] for run in runs] == [6, 9]


def test_bench_api_reports_token_and_session_rows_beside_publish() -> None:
    r = bench("api", "--events", "64", "--concurrency", "4")
    assert (r["events"], r["concurrency"]) == (64, 4)
    assert isinstance(r["publish_events_per_s"], int) and r["publish_events_per_s"] > 0
    assert isinstance(r["ratio"], float) and r["ratio"] > 0
    rows = (r["token"], r["session"])
    for row in rows:
        assert isinstance(row, dict)
        assert isinstance(row["posts_per_s"], int) and row["posts_per_s"] > 0
        assert isinstance(row["ratio"], float) and row["ratio"] > 0
        assert 0 < row["latency_ms"]["p50"] <= row["latency_ms"]["p99"]
        assert row["clients_cpu_s"] > 0
    assert r["api_posts_per_s"] == rows[0]["posts_per_s"]  # type: ignore[index]
    assert r["latency_ms"] == rows[0]["latency_ms"]  # type: ignore[index]
