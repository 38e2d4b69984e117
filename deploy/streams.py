"""The federation's streams on the hubs, made and kept with the operator's admin user:
one member stream per neighborhood, which holds its quota, and the aggregate `COOP` that
sources them all (deploy/quotas.py, docs/OPERATIONS.md §12). Idempotent: run by
`federation up`, `federation streams` (the systemd units) and `neighborhood add`.

An older federation's COOP, with subjects `coop.>` and no quota, is converted in place: its
subjects go first (JetStream refuses streams whose subjects overlap), the member streams
are made, and COOP sources them; the messages it holds stay where they are, with their
sequence numbers, so the nodes' consumers and cursors go on from where they were.

Each reader's durable pull consumer on COOP is the operator's too (`ensure_consumers`):
`node-<slug>` for every member, `observer-<name>` for the observer. A member's credentials
may not create, delete or reset one (deploy/nats_auth.py), since its maker chooses where it
delivers: a push consumer aimed at `coopsync.x.y` would send the whole stream to every node
(PROTOCOL.md §9 "Receiving").
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, StreamConfig, StreamInfo

from coopnet.deploy.quotas import Quotas, aggregate_config, member_stream_config
from coopnet.node.engine.bus import STREAM, consumer_config, member_stream

log = logging.getLogger("coopnet.streams")

# JetStream's err_code when a stream's max_bytes does not fit the account's disk limit
# (or the server's storage): nats-server JSInsufficientResourcesErr.
INSUFFICIENT_RESOURCES = 10047


class StreamLimitError(RuntimeError):
    """The hubs refused to make a stream for lack of room in the account or on disk."""


async def ensure_streams(
    js: JetStreamContext,
    slugs: Iterable[str],
    quotas: Quotas,
    *,
    replicas: int = 1,
    observers: Iterable[str] = (),
) -> list[str]:
    """Make or update the member stream of every slug and the aggregate's sources and
    limits, then the consumers of every slug's node and of each observer
    (`ensure_consumers`); return the names of the streams created or changed. Raises what
    nats-py raises (nats.errors.Error, TimeoutError): the caller retries while a cluster
    forms. A JetStream error 10047 ("insufficient resources") means the account's disk
    cannot hold one more member stream: raise `members_max` (OPERATIONS.md §12)."""
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
    readers = [f"node-{slug}" for slug in members] + [f"observer-{o}" for o in observers]
    await ensure_consumers(js, readers)
    return sorted(set(changed))


async def ensure_consumers(js: JetStreamContext, names: Iterable[str]) -> list[str]:
    """Make each reader's durable pull consumer on COOP (`node-<slug>`, `observer-<name>`;
    node/engine/bus.py `consumer_config`, delivering all), idempotently; return the names
    created or changed. One that is there keeps its position: its limits are updated if
    they differ; one that is not the pull consumer readers expect (a push consumer, another
    filter or ack policy, headers only, an inactivity threshold: made by hand, or by a
    member's credentials before they lost the right) is deleted and made again, and its
    reader then reads again by sequence what its store lacks (PROTOCOL.md §9 "Attaching").
    Raises what nats-py raises (the caller retries)."""
    changed: list[str] = []
    for name in sorted(set(names)):
        wanted = consumer_config(name)
        try:
            current: ConsumerConfig | None = (await js.consumer_info(STREAM, name)).config
        except nats.js.errors.NotFoundError:
            current = None
        if current is not None and _consumer_kind(current) != _consumer_kind(wanted):
            log.warning("consumer %s is not a reader's pull consumer: making it again", name)
            await js.delete_consumer(STREAM, name)
            current = None
        if current is None:
            await js.add_consumer(STREAM, wanted)
            log.info("created consumer %s on %s", name, STREAM)
        elif _consumer_limits(current) != _consumer_limits(wanted):
            # deliver_policy and opt_start_seq cannot change: the server's are kept.
            wanted.deliver_policy, wanted.opt_start_seq = (
                current.deliver_policy,
                current.opt_start_seq,
            )
            await js.add_consumer(STREAM, wanted)  # an update: the position stays
            log.info("updated consumer %s to %s", name, _consumer_limits(wanted))
        else:
            continue
        changed.append(name)
    return changed


def _consumer_kind(config: ConsumerConfig) -> tuple[object, ...]:
    """What makes a consumer a reader's pull consumer: where and what it delivers."""
    return (
        config.deliver_subject or "",
        config.deliver_group or "",
        _value(config.ack_policy),
        config.filter_subject or "",
        tuple(config.filter_subjects or ()),
        bool(config.headers_only),
        float(config.inactive_threshold or 0),
    )


def _consumer_limits(config: ConsumerConfig) -> tuple[object, ...]:
    """What `ensure_consumers` updates in place."""
    return (float(config.ack_wait or 0), config.max_ack_pending, config.max_deliver)


def _value(enum: object) -> object:
    return getattr(enum, "value", enum)


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
