"""The federation's streams on the hubs, made and kept with the operator's admin user:
one member stream per neighborhood, which holds its quota, and the aggregate `COOP` that
sources them all (deploy/quotas.py, docs/OPERATIONS.md §12). Idempotent: run by
`federation up`, `federation streams` (the systemd units) and `neighborhood add`.

An older federation's COOP, with subjects `coop.>` and no quota, is converted in place: its
subjects go first (JetStream refuses streams whose subjects overlap), the member streams
are made, and COOP sources them; the messages it holds stay where they are, with their
sequence numbers, so the nodes' consumers and cursors go on from where they were.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import StreamConfig, StreamInfo

from coopnet.deploy.quotas import Quotas, aggregate_config, member_stream_config
from coopnet.node.engine.bus import STREAM, member_stream

log = logging.getLogger("coopnet.streams")

# JetStream's err_code when a stream's max_bytes does not fit the account's disk limit
# (or the server's storage): nats-server JSInsufficientResourcesErr.
INSUFFICIENT_RESOURCES = 10047


class StreamLimitError(RuntimeError):
    """The hubs refused to make a stream for lack of room in the account or on disk."""


async def ensure_streams(
    js: JetStreamContext, slugs: Iterable[str], quotas: Quotas, *, replicas: int = 1
) -> list[str]:
    """Make or update the member stream of every slug and the aggregate's sources and
    limits; return the names of the streams created or changed. Raises what nats-py raises
    (nats.errors.Error, TimeoutError): the caller retries while a cluster forms. A JetStream
    error 10047 ("insufficient resources") means the account's disk cannot hold one more
    member stream: raise `members_max` (OPERATIONS.md §12)."""
    members = sorted(set(slugs))
    changed: list[str] = []
    aggregate = aggregate_config(members, quotas, replicas=replicas)
    current = await _info(js, STREAM)
    if current is not None and current.config.subjects:
        # An older COOP on `coop.>`: free its subjects first, keeping what it holds.
        await js.update_stream(aggregate)
        log.info("converted %s into the aggregate of %d member streams", STREAM, len(members))
        changed.append(STREAM)
        current = await _info(js, STREAM)
    for slug in members:
        if await _ensure(js, member_stream_config(slug, quotas, replicas=replicas)):
            changed.append(member_stream(slug))
    if await _ensure(js, aggregate, current):
        changed.append(STREAM)
    return sorted(set(changed))


async def _info(js: JetStreamContext, name: str) -> StreamInfo | None:
    try:
        return await js.stream_info(name)
    except nats.js.errors.NotFoundError:
        return None


async def _ensure(
    js: JetStreamContext, wanted: StreamConfig, current: StreamInfo | None = None
) -> bool:
    """Create the stream, or update it when its limits or sources differ; True if either."""
    assert wanted.name is not None
    current = current or await _info(js, wanted.name)
    if current is None:
        await js.add_stream(wanted)
        log.info("created stream %s", wanted.name)
        return True
    if _shape(current.config) == _shape(wanted):
        return False
    await js.update_stream(wanted)
    log.info("updated stream %s to %s", wanted.name, _shape(wanted))
    return True


def _shape(config: StreamConfig) -> tuple[object, ...]:
    """What `ensure_streams` sets, comparable between a wanted config and the server's."""
    discard = config.discard
    return (
        tuple(config.subjects or ()),
        tuple(sorted(s.name for s in config.sources or ())),
        _limit(config.max_bytes),
        _limit(config.max_msgs),
        float(config.max_age or 0),
        str(getattr(discard, "value", discard) or "old"),
        _limit(config.max_msg_size),
        config.num_replicas or 1,
    )


def _limit(value: int | None) -> int:
    return -1 if value is None else value
