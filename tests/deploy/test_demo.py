"""`coopnet demo`: a federation on an embedded nats-server that converges with no rejections."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

DEMO_ARGS = ["--neighborhoods", "3", "--seconds", "10", "--json"]


@pytest.mark.timeout(120)
def test_demo_json_converges() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "coopnet", "demo", *DEMO_ARGS],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["neighborhoods"] == 3
    assert result["converged"] is True
    assert result["rejected"] == {}
    assert result["nats_url"].startswith("nats://127.0.0.1:")
    stored = result["events_stored"]
    assert set(stored) == {"oakley", "riverside", "elmwood"}
    assert len(set(stored.values())) == 1
    assert stored["oakley"] == result["events_published"] >= 3
    # The market: co-ops traded, and the rules held.
    assert result["offers_posted"] == 9
    assert result["trades_settled"] > 0
    assert result["ledger_sum"] == 0
    assert sum(result["ledger"].values()) == 0
    assert result["oversold_offers"] == 0
    assert result["credit_limit_breaches"] == 0
    assert result["projections_equal"] is True
    # Calls for help: some met by neighbors, some escalated and met by the federation.
    assert result["aid_requests"] > 0
    assert result["aid_fulfilled"] > 0
    assert result["aid_escalated"] >= 0
    assert result["aid_escalated"] <= result["aid_requests"]
