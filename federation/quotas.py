"""What the observer reports about bus quotas: how much of its quota each member's stream
holds, and which members are near it or at it (docs/OPERATIONS.md §12).

A member's stream `COOP_<slug>` refuses its publishes once it holds its quota (max_bytes or
max_msgs, discard NEW); COOP sources every member stream, so the sources of COOP name them.
The observer reads each one's config and state (its credentials allow `STREAM.INFO` and
nothing that changes a stream). A federation without credentials has one COOP on `coop.>`
and no member streams: the report is empty.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
import msgspec
import nats.errors
import nats.js.errors
from nats.js import JetStreamContext

from coopnet.node.engine.bus import MAX_MSG_SIZE, MEMBER_STREAM_PREFIX, STREAM

log = logging.getLogger("coopnet.observer")

# A member stream is "near" its quota from this share of its bytes or messages, "full" once
# one more event of the largest size might not fit (or no more message would).
NEAR_SHARE = 0.8
CHECK_S = 5.0  # how often the observer reads the member streams


class QuotaUse(msgspec.Struct, kw_only=True):
    """One member stream: bytes and messages held against its limits (-1: none), over the
    last `period_s` seconds, and `state`: `ok`, `near` or `full`."""

    member: str
    stream: str
    bytes: int
    max_bytes: int
    msgs: int
    max_msgs: int
    period_s: int
    state: str


def quota_state(used_bytes: int, max_bytes: int, msgs: int, max_msgs: int) -> str:
    """`full`, `near` or `ok` (pure; -1 or 0 as a limit means none)."""
    if (max_bytes > 0 and used_bytes + MAX_MSG_SIZE > max_bytes) or (
        max_msgs > 0 and msgs >= max_msgs
    ):
        return "full"
    if (max_bytes > 0 and used_bytes >= NEAR_SHARE * max_bytes) or (
        max_msgs > 0 and msgs >= NEAR_SHARE * max_msgs
    ):
        return "near"
    return "ok"


async def read_quota_use(js: JetStreamContext) -> list[QuotaUse]:
    """Every member stream COOP sources, by member. Raises nats.errors.Error or TimeoutError
    when the bus does not answer; a member stream that is gone is left out."""
    aggregate = await js.stream_info(STREAM)
    names = sorted(
        s.name
        for s in aggregate.config.sources or ()
        if s.name and s.name.startswith(MEMBER_STREAM_PREFIX)
    )
    found: list[QuotaUse] = []
    for name in names:
        try:
            info = await js.stream_info(name)
        except nats.js.errors.NotFoundError:
            continue
        c, st = info.config, info.state
        max_bytes = c.max_bytes if c.max_bytes is not None else -1
        max_msgs = c.max_msgs if c.max_msgs is not None else -1
        found.append(
            QuotaUse(
                member=name.removeprefix(MEMBER_STREAM_PREFIX),
                stream=name,
                bytes=st.bytes,
                max_bytes=max_bytes,
                msgs=st.messages,
                max_msgs=max_msgs,
                period_s=int(c.max_age or 0),
                state=quota_state(st.bytes, max_bytes, st.messages, max_msgs),
            )
        )
    return found


class QuotaWatch:
    """The latest quota report, read every `interval_s`; a member reaching `full` (or
    leaving it) is logged once per change."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.uses: list[QuotaUse] = []
        self.read_at = 0.0  # monotonic time of the last report, 0 before the first

    def update(self, uses: list[QuotaUse], at: float) -> None:
        before = {u.member: u.state for u in self.uses}
        for use in uses:
            was = before.get(use.member, "ok")
            if use.state == "full" and was != "full":
                log.warning(
                    "%s: member %s is at its bus quota (%d of %d bytes, %d of %d events): "
                    "the bus refuses its events",
                    self.name, use.member, use.bytes, use.max_bytes, use.msgs, use.max_msgs,
                )  # fmt: skip
            elif was == "full" and use.state != "full":
                log.info("%s: member %s is below its bus quota again", self.name, use.member)
        self.uses, self.read_at = uses, at

    def report(self) -> list[dict[str, object]]:
        """The latest report as JSON-able rows, fullest first."""
        rows = sorted(self.uses, key=lambda u: (u.state != "full", u.state != "near", u.member))
        return [msgspec.to_builtins(u) for u in rows]


async def watch_quotas(
    js: Callable[[], JetStreamContext], watch: QuotaWatch, *, interval_s: float = CHECK_S
) -> None:
    """Read the report into `watch` every `interval_s` seconds, until cancelled; a bus that
    does not answer (or credentials that may not read a stream's info) is logged, and the
    last report stays."""
    while True:
        try:
            watch.update(await read_quota_use(js()), anyio.current_time())
        except (nats.errors.Error, TimeoutError) as exc:
            log.info("%s: cannot read the bus quotas now (%r)", watch.name, exc)
        await anyio.sleep(interval_s)
