"""The observer's quota report: the pure rule that says `ok`, `near` or `full`, and the
watch that logs a member reaching its quota once (docs/OPERATIONS.md §12). The report read
from a real hub is in tests/deploy/test_quotas.py."""

from __future__ import annotations

import logging
import math

import pytest

from coopnet.federation.quotas import NEAR_SHARE, QuotaUse, QuotaWatch, quota_state
from coopnet.node.engine.bus import MAX_MSG_SIZE

MIB = 1024 * 1024


def test_a_member_stream_is_full_when_one_more_largest_event_might_not_fit() -> None:
    assert quota_state(0, 64 * MIB, 0, 1000) == "ok"
    assert quota_state(math.ceil(NEAR_SHARE * 64 * MIB) - 1, 64 * MIB, 0, 1000) == "ok"
    assert quota_state(math.ceil(NEAR_SHARE * 64 * MIB), 64 * MIB, 0, 1000) == "near"
    assert quota_state(64 * MIB - MAX_MSG_SIZE, 64 * MIB, 0, 1000) == "near"
    assert quota_state(64 * MIB - MAX_MSG_SIZE + 1, 64 * MIB, 0, 1000) == "full"
    assert quota_state(10, 64 * MIB, 800, 1000) == "near"
    assert quota_state(10, 64 * MIB, 1000, 1000) == "full"
    assert quota_state(10**12, -1, 10**9, -1) == "ok"  # no limits: never full


def _use(member: str, state: str) -> QuotaUse:
    return QuotaUse(
        member=member, stream=f"COOP_{member}", bytes=0, max_bytes=1, msgs=0, max_msgs=1,
        period_s=86_400, state=state,
    )  # fmt: skip


def test_the_watch_says_once_that_a_member_is_full_and_reports_it_first(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch = QuotaWatch("observer")
    for _ in range(3):
        watch.update([_use("ana", "ok"), _use("rog", "full"), _use("ben", "near")], at=1.0)
    full = [r for r in caplog.records if "is at its bus quota" in r.message]
    assert len(full) == 1 and full[0].levelno == logging.WARNING and "rog" in full[0].message
    assert [row["member"] for row in watch.report()] == ["rog", "ben", "ana"]
    watch.update([_use("rog", "ok")], at=2.0)
    assert any("below its bus quota again" in r.message for r in caplog.records)
