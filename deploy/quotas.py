"""Bus quotas: how much each member may put on the federation's bus, and the JetStream and
JWT limits that hold it there (docs/OPERATIONS.md §12, PROTOCOL.md §9). Pure: values in,
stream configs and limits out; deploy/streams.py applies them to the hubs.

NATS has no per-publisher quota inside one stream, so each member has its own stream
`COOP_<slug>` on `coop.<slug>.>` (node/engine/bus.py `member_stream`): at most
`member_bytes` and `member_msgs` over the last `period_s` (max_age), discard NEW, so once a
member reaches its quota the server refuses its publishes (503, err_code 10077, "maximum
bytes exceeded" or "maximum messages exceeded") until its oldest messages age out. `COOP`,
which every node's consumer and the observer read, has no subjects of its own: it *sources*
every member stream, bounded by `bus_bytes` and `bus_age_s` with discard OLD. What leaves
it (or a member stream before it was copied) is still held by its author and by every peer
that read it, and comes back over sync (node/engine/sync.py): the bus is a transport, not
the record.

The COOP account JWT is sized to hold every stream at its limit (nats-server reserves each
stream's max_bytes against the account's disk, times its replicas when the limits are not
tiered), with `members_max` member streams.
"""

from __future__ import annotations

import msgspec
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig, StreamSource

from coopnet.deploy.nats_auth import NO_LIMIT, AccountLimits, BusLimits, UserLimits
from coopnet.node.engine.bus import (
    DUPLICATE_WINDOW_S,
    MAX_MSG_SIZE,
    STREAM,
    member_stream,
    member_subjects,
)
from coopnet.node.engine.sync import REPLY_MAX_BYTES

MIB = 1024 * 1024
# The largest message a node or observer may send on plain NATS: a sync reply (at most
# REPLY_MAX_BYTES of events, node/engine/sync.py) with its MessagePack framing, or an event
# (MAX_MSG_SIZE) with its headers. nats-server closes a connection that sends more.
USER_PAYLOAD_BYTES = REPLY_MAX_BYTES + 128 * 1024
# Subscriptions one node or observer connection may hold: it needs a handful (sync
# requests, its inbox, its consumer, one per sync request in flight).
USER_SUBSCRIPTIONS = 128


class Quotas(msgspec.Struct, kw_only=True, frozen=True):
    """The operator's choices, stored in `federation.toml` `[quotas]` (`federation init`
    flags). Bytes, counts and seconds; each must be positive."""

    member_bytes: int = 64 * MIB  # per member, per period
    member_msgs: int = 250_000  # per member, per period
    period_s: int = 86_400  # a member stream keeps (and counts) this long
    bus_bytes: int = 4096 * MIB  # the aggregate COOP stream, all members together
    bus_age_s: int = 365 * 86_400  # the aggregate keeps events this long
    members_max: int = 32  # member streams the account's disk is sized for

    def check(self) -> Quotas:
        """Self, or ValueError naming the first value that is not positive or too small."""
        for name in self.__struct_fields__:
            if getattr(self, name) <= 0:
                raise ValueError(f"quota {name} must be positive, not {getattr(self, name)}")
        if self.member_bytes < 4 * MAX_MSG_SIZE:
            raise ValueError(f"member_bytes must be at least {4 * MAX_MSG_SIZE} (4 events)")
        if min(self.period_s, self.bus_age_s) < DUPLICATE_WINDOW_S:  # JetStream's rule
            raise ValueError(f"period_s and bus_age_s must be at least {int(DUPLICATE_WINDOW_S)} s")
        return self


def member_stream_config(slug: str, quotas: Quotas, *, replicas: int = 1) -> StreamConfig:
    """`COOP_<slug>` on `coop.<slug>.>`: the member's quota, discard NEW (its publishes are
    refused when full), its messages kept `period_s`."""
    return StreamConfig(
        name=member_stream(slug),
        subjects=[member_subjects(slug)],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_bytes=quotas.member_bytes,
        max_msgs=quotas.member_msgs,
        max_age=float(quotas.period_s),
        discard=DiscardPolicy.NEW,
        duplicate_window=DUPLICATE_WINDOW_S,
        max_msg_size=MAX_MSG_SIZE,
        num_replicas=replicas,
    )


def aggregate_config(slugs: list[str], quotas: Quotas, *, replicas: int = 1) -> StreamConfig:
    """`COOP`: no subjects, every member stream as a source, the global bound with discard
    OLD (what it drops is held by the authors and their peers: PROTOCOL.md §9)."""
    return StreamConfig(
        name=STREAM,
        subjects=[],
        sources=[StreamSource(name=member_stream(s)) for s in sorted(slugs)],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_bytes=quotas.bus_bytes,
        max_age=float(quotas.bus_age_s),
        discard=DiscardPolicy.OLD,
        duplicate_window=DUPLICATE_WINDOW_S,
        # No size limit of its own: the member streams bound it, and a sourced message
        # carries one more header (`Nats-Stream-Source`); a limit here would stall the
        # source of a member that published a message of the largest size.
        max_msg_size=-1,
        num_replicas=replicas,
    )


def account_disk_bytes(quotas: Quotas, replicas: int) -> int:
    """What the COOP account may hold on disk: the aggregate and `members_max` member
    streams at their limits, each copy counted (nats-server reserves max_bytes x replicas)."""
    return (quotas.bus_bytes + quotas.members_max * quotas.member_bytes) * replicas


def bus_limits(quotas: Quotas, *, replicas: int = 1) -> BusLimits:
    """The JWT limits of the COOP account and of its node and observer users.

    Enforced by nats-server 2.15: the account's disk_storage, streams, consumer, conn,
    leaf, and payload and subs (which apply to each connection, as the user's do); the
    user's payload and subs (the connection is closed on a violation). Not enforced by
    nats-server, so left unlimited: `data` (the member stream's max_bytes bounds what a
    member stores; nothing bounds what it reads but its consumer)."""
    quotas.check()
    members = quotas.members_max
    user = UserLimits(subs=USER_SUBSCRIPTIONS, payload=USER_PAYLOAD_BYTES, data=NO_LIMIT)
    return BusLimits(
        account=AccountLimits(
            conn=4 * members + 32,  # a node reconnecting, observers, the operator's tools
            leaf=members,
            subs=NO_LIMIT,  # per connection: the users' own limit holds
            payload=USER_PAYLOAD_BYTES,
            disk_storage=account_disk_bytes(quotas, replicas),
            mem_storage=0,
            streams=members + 4,  # the member streams and the aggregate
            consumer=2 * members + 16,  # one durable per node, observers' consumers
            max_bytes_required=True,  # no stream without a byte limit
        ),
        node=user,
        observer=user,
    )
