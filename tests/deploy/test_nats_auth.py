"""Decentralized NATS auth minted in Python: the JWTs, creds and files it writes, and what a
real hub (from `hub_config`) lets each user do with them: nodes, observers, revocation."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import os
import stat
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import msgspec
import nacl.signing
import nats.errors
import nats.js.errors
import pytest
from nats.js.api import ConsumerConfig

from coopnet.deploy.nats_auth import (
    Authority,
    BusLimits,
    ClaimsUpdateError,
    InvalidJwt,
    Permissions,
    UserLimits,
    decode_jwt,
    node_permissions,
    observer_permissions,
    parse_update_reply,
    push_account,
)
from coopnet.deploy.quotas import (
    MIB,
    USER_PAYLOAD_BYTES,
    USER_SUBSCRIPTIONS,
    Quotas,
    account_disk_bytes,
    bus_limits,
)
from coopnet.deploy.streams import INSUFFICIENT_RESOURCES, ensure_streams
from coopnet.node.engine.bus import STREAM, consumer_config, member_stream, stream_config
from coopnet.node.engine.sync import REPLY_MAX_BYTES
from tests.conftest import wait_until
from tests.deploy.nats_fixtures import (
    REFUSED_WAIT_S,
    Hub,
    Session,
    _start_hub,
    admin_creds,
    create_stream,
    login_errors,
    refused,
    running_hub,
    session,
    stream_counts,
)

# --- the JWTs and files, without a server ---


def _segments(token: str) -> list[bytes]:
    return [base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in token.split(".")]


def test_jwts_have_the_nats_jwt_v2_form() -> None:
    authority = Authority.generate()
    operator = decode_jwt(authority.operator_jwt())
    account = decode_jwt(authority.account_jwt())
    user = decode_jwt(authority.user_creds("oakley", node_permissions("oakley")).jwt)

    assert msgspec.json.decode(_segments(authority.account_jwt())[0]) == {
        "typ": "JWT",
        "alg": "ed25519-nkey",
    }
    assert "=" not in authority.account_jwt()  # base64url without padding
    # The operator signs itself and names the system account.
    assert operator["iss"] == operator["sub"] == authority.operator_public_key
    assert operator["nats"] == {
        "system_account": authority.system_public_key,
        "type": "operator",
        "version": 2,
    }
    # COOP: signed by the operator; JetStream on; nothing limited.
    assert (account["iss"], account["sub"]) == (
        authority.operator_public_key,
        authority.account_public_key,
    )
    limits = account["nats"]["limits"]
    js_limits = ("mem_storage", "disk_storage", "streams", "consumer")
    nats_limits = ("subs", "data", "payload", "imports", "exports", "conn", "leaf")
    assert {limits[k] for k in (*js_limits, *nats_limits)} == {-1}
    assert limits["wildcards"] is True
    assert (account["nats"]["type"], account["nats"]["version"]) == ("account", 2)
    # A user: signed by COOP; no subscription, data or payload limit.
    assert user["iss"] == authority.account_public_key and user["sub"].startswith("U")
    assert [user["nats"][k] for k in ("subs", "data", "payload")] == [-1, -1, -1]
    assert "resp" not in user["nats"]  # sync answers are plain publishes (PROTOCOL.md §9)
    # jti: base32 (no padding) of the SHA-512/256 of the standard claims without jti.
    standard = {k: user[k] for k in ("iat", "iss", "name", "sub")}
    digest = hashlib.new("sha512_256", msgspec.json.encode(standard)).digest()
    assert user["jti"] == base64.b32encode(digest).decode().rstrip("=")


def test_a_tampered_jwt_does_not_verify() -> None:
    token = Authority.generate().account_jwt()
    header, _, signature = token.split(".")
    claims = msgspec.json.decode(_segments(token)[1])
    claims["nats"]["limits"]["conn"] = 1
    forged = base64.urlsafe_b64encode(msgspec.json.encode(claims)).decode().rstrip("=")
    with pytest.raises(InvalidJwt, match="signature"):
        decode_jwt(f"{header}.{forged}.{signature}")
    with pytest.raises(InvalidJwt, match="not a JWT"):
        decode_jwt("not.a.jwt")


def test_a_node_signing_seed_is_its_nats_user() -> None:
    seed = os.urandom(32)
    creds = Authority.generate().user_creds("oakley", node_permissions("oakley"), seed=seed)
    raw = base64.b32decode(creds.public_key + "=" * (-len(creds.public_key) % 8))
    assert raw[1:33] == bytes(nacl.signing.SigningKey(seed).verify_key)
    assert creds.seed.startswith("SU")


def test_a_name_that_is_not_one_subject_token_is_refused() -> None:
    for bad in ("a", "oak.elm", "oak.>", "*", "Oak", ""):
        with pytest.raises(ValueError, match="is not"):
            node_permissions(bad)
        with pytest.raises(ValueError, match="is not"):
            observer_permissions(bad)


def test_creds_are_the_standard_creds_file_readable_by_its_owner_only(tmp_path: Path) -> None:
    creds = Authority.generate().user_creds("oakley", node_permissions("oakley"))
    path = creds.write(tmp_path / "nats.creds")
    lines = path.read_text().splitlines()
    assert lines[:3] == [
        "-----BEGIN NATS USER JWT-----",
        creds.jwt,
        "------END NATS USER JWT------",
    ]
    at = lines.index("-----BEGIN USER NKEY SEED-----")
    assert lines[at + 1 : at + 3] == [creds.seed, "------END USER NKEY SEED------"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_authority_saves_and_loads_its_keys_and_revocations(tmp_path: Path) -> None:
    authority = Authority.generate()
    home = authority.save(tmp_path)
    assert home == tmp_path / "nats"
    for secret in ("operator.nk", "coop.nk", "sys.nk", "sys.creds"):
        assert stat.S_IMODE((home / secret).stat().st_mode) == 0o600
    for public in ("operator.jwt", "COOP.jwt", "SYS.jwt"):
        decode_jwt((home / public).read_text())
    user = authority.user_creds("elm", node_permissions("elm")).public_key
    authority.revoke(user, at=1_700_000_000)

    loaded = Authority.load(tmp_path)
    assert loaded.account_public_key == authority.account_public_key
    assert loaded.revocations == {user: 1_700_000_000}
    assert decode_jwt((home / "COOP.jwt").read_text())["nats"]["revocations"] == loaded.revocations
    with pytest.raises(ValueError, match="not a user public key"):
        loaded.revoke(loaded.account_public_key)


# --- what a real hub lets each user do ---


def _violation_of(s: Session, *subjects: str) -> Callable[[], Awaitable[bool]]:
    """Whether the server has told the client of a permissions violation on each subject."""

    async def seen() -> bool:
        told = " ".join(s.violations()).lower()
        return all(f'"{subject.lower()}"' in told for subject in subjects)

    return seen


async def test_a_node_publishes_its_own_events_only(tmp_path: Path) -> None:
    with running_hub(tmp_path) as hub:
        admin = admin_creds(hub)
        await create_stream(hub.url, admin)
        async with session(hub.url, hub.creds("oak", node_permissions("oak")), user="oak") as oak:
            js = oak.jetstream(timeout=REFUSED_WAIT_S)
            ack = await js.publish("coop.oak.x", b"mine")
            assert (ack.stream, ack.seq) == (STREAM, 1)
            # Another node's subject: the server drops the message and sends -ERR
            # 'Permissions Violation for Publish to "coop.elm.x"' (the connection stays up);
            # JetStream never sees it, so the publish waits for an ack that never comes.
            assert await refused(js.publish("coop.elm.x", b"not mine"))
            await wait_until(_violation_of(oak, "coop.elm.x"), what="the violation reaches oak")
            # nats-py hands it to error_cb as a plain nats.errors.Error, lower-cased.
            assert [str(e) for e in oak.errors] == [
                'nats: permissions violation for publish to "coop.elm.x"'
            ]
            assert oak.nc.is_connected
        assert await stream_counts(hub.url, admin) == {("coop.oak.x", b"mine"): 1}


async def test_a_node_cannot_delete_purge_or_update_the_stream(tmp_path: Path) -> None:
    with running_hub(tmp_path) as hub:
        admin = admin_creds(hub)
        await create_stream(hub.url, admin)
        async with session(hub.url, hub.creds("oak", node_permissions("oak")), user="oak") as oak:
            js = oak.jetstream(timeout=REFUSED_WAIT_S)
            await js.publish("coop.oak.x", b"kept")
            unlimited = dataclasses.replace(stream_config(), max_msg_size=-1)
            assert await refused(js.delete_stream(STREAM))
            assert await refused(js.purge_stream(STREAM))
            assert await refused(js.update_stream(unlimited))
            assert await refused(js.delete_msg(STREAM, 1))
            await wait_until(
                _violation_of(
                    oak,
                    "$JS.API.STREAM.DELETE.COOP",
                    "$JS.API.STREAM.PURGE.COOP",
                    "$JS.API.STREAM.UPDATE.COOP",
                    "$JS.API.STREAM.MSG.DELETE.COOP",
                ),
                what="four violations",
            )
        assert await stream_counts(hub.url, admin) == {("coop.oak.x", b"kept"): 1}
        async with session(hub.url, admin) as s:
            info = await s.jetstream().stream_info(STREAM)
            assert info.config.max_msg_size == 70 * 1024  # as created, not updated


async def test_a_node_consume_path_works_under_its_permissions(tmp_path: Path) -> None:
    """Every JetStream call of coopnet.node (bus, outbox, recovery, the re-read window),
    with the inbox prefix the node connects with, on the consumer the operator made: no
    permissions violation. Creating, deleting or resetting it is refused (PROTOCOL.md §9)."""
    with running_hub(tmp_path) as hub:
        admin = admin_creds(hub)
        await create_stream(hub.url, admin)
        async with session(hub.url, admin) as s:
            await s.jetstream().add_consumer(STREAM, consumer_config("node-oak"))
        async with session(hub.url, hub.creds("oak", node_permissions("oak")), user="oak") as oak:
            js = oak.jetstream()
            await js.stream_info(STREAM)
            for i in range(3):  # the outbox: publish_async with a message id
                await js.publish_async("coop.oak.x", b"%d" % i, headers={"Nats-Msg-Id": str(i)})
            await js.publish_async_completed()
            info = await js.consumer_info(STREAM, "node-oak")
            assert info.config.deliver_subject is None and info.config.max_deliver == 1
            psub = await js.pull_subscribe_bind("node-oak", STREAM)
            msgs = await psub.fetch(10, timeout=2)
            assert [m.data for m in msgs] == [b"0", b"1", b"2"]
            await msgs[-1].ack_sync()
            info = await js.consumer_info(STREAM, "node-oak")
            assert info.ack_floor is not None and info.ack_floor.stream_seq == 3
            assert (await js.get_last_msg(STREAM, "coop.oak.>")).data == b"2"
            found = await js.get_msg(STREAM, seq=1, subject="coop.oak.>", next=True)
            assert found.seq == 1
            assert (await js.get_msg(STREAM, seq=2)).data == b"1"  # the re-read window
            assert oak.errors == []
            # The consumer is the operator's: no creation (push or pull), deletion or reset.
            js = oak.jetstream(timeout=REFUSED_WAIT_S)
            push = dataclasses.replace(consumer_config("node-oak"), deliver_subject="coopsync.x.y")
            assert await refused(js.add_consumer(STREAM, push))
            assert await refused(js.add_consumer(STREAM, consumer_config("node-oak", 2)))
            assert await refused(js.delete_consumer(STREAM, "node-oak"))
            assert await refused(oak.nc.request("$JS.API.CONSUMER.RESET.COOP.node-oak", b"", 1))
            # The account's limits and use it may read (the quota it is under; this test's
            # account sets none, so -1): answered, not refused.
            limits = (await oak.jetstream().account_info()).limits
            assert limits.max_storage == -1
            await wait_until(
                _violation_of(
                    oak,
                    "$JS.API.CONSUMER.CREATE.COOP.node-oak.coop.>",
                    "$JS.API.CONSUMER.DELETE.COOP.node-oak",
                    "$JS.API.CONSUMER.RESET.COOP.node-oak",
                ),
                what="the violations",
            )
        async with session(hub.url, admin) as s:
            info = await s.jetstream().consumer_info(STREAM, "node-oak")
            assert info.config.deliver_subject is None and info.delivered.stream_seq == 3


async def test_an_observer_reads_but_cannot_publish_or_change_the_stream(tmp_path: Path) -> None:
    with running_hub(tmp_path) as hub:
        admin = admin_creds(hub)
        await create_stream(hub.url, admin)
        async with session(hub.url, admin) as s:
            await s.jetstream().publish("coop.oak.x", b"public")
            await s.jetstream().add_consumer(STREAM, consumer_config("observer-watch"))
        watcher = hub.creds("watcher", observer_permissions("watch"))
        async with session(hub.url, watcher, user="observer-watch") as o:
            js = o.jetstream(timeout=REFUSED_WAIT_S)
            # The durable consumer the operator made for it, from the start of the stream…
            durable = await js.pull_subscribe_bind("observer-watch", STREAM)
            msgs = await durable.fetch(5, timeout=2)
            assert [m.data for m in msgs] == [b"public"]
            await msgs[-1].ack_sync()
            assert o.errors == []
            # …which it may not delete, nor make again, durable or ephemeral.
            assert await refused(js.delete_consumer(STREAM, "observer-watch"))
            ephemeral = ConsumerConfig(name="observer-watch", inactive_threshold=5.0)
            assert await refused(js.add_consumer(STREAM, ephemeral))
            # No event, no change to the stream, no one else's consumer.
            assert await refused(js.publish("coop.oak.x", b"forged"))
            assert await refused(js.purge_stream(STREAM))
            assert await refused(js.delete_stream(STREAM))
            assert await refused(js.consumer_info(STREAM, "node-oak"))
            await wait_until(
                _violation_of(
                    o,
                    "coop.oak.x",
                    "$JS.API.STREAM.PURGE.COOP",
                    "$JS.API.CONSUMER.DELETE.COOP.observer-watch",
                ),
                what="the observer's violations",
            )
        assert await stream_counts(hub.url, admin) == {("coop.oak.x", b"public"): 1}


async def test_users_minted_after_the_hub_started_connect_without_a_server_change(
    tmp_path: Path,
) -> None:
    with running_hub(tmp_path) as hub:
        await create_stream(hub.url, admin_creds(hub))
        late = hub.creds("late", node_permissions("late"), seed=os.urandom(32))
        async with session(hub.url, late, user="late") as s:
            assert (await s.jetstream().publish("coop.late.x", b"hello")).seq == 1


async def test_a_user_jwt_without_permissions_gets_the_account_default_nothing(
    tmp_path: Path,
) -> None:
    with running_hub(tmp_path) as hub:
        await create_stream(hub.url, admin_creds(hub))
        async with session(hub.url, hub.creds("bare", Permissions())) as s:
            assert await refused(s.jetstream(timeout=REFUSED_WAIT_S).publish("coop.x.y", b""))
            await wait_until(_violation_of(s, "coop.x.y"), what="a violation")


async def test_a_revoked_user_is_refused_and_disconnected_until_the_hub_restarts(
    tmp_path: Path,
) -> None:
    with running_hub(tmp_path) as hub:
        elm = hub.authority.user_creds("elm", node_permissions("elm"))
        elm_path = elm.write(tmp_path / "elm.creds")
        oak = hub.creds("oak", node_permissions("oak"))
        sys_creds = tmp_path / "nats" / "sys.creds"
        async with session(hub.url, elm_path, user="elm") as connected:
            new_jwt = hub.authority.revoke(elm.public_key)
            assert await push_account([hub.url], sys_creds, new_jwt) == ["hub"]

            async def closed() -> bool:
                return connected.nc.is_closed

            # The server closes the revoked user's connection ("-ERR User Authentication
            # Revoked", closed as "Credentials Revoked").
            await wait_until(closed, what="the server closes elm's connection")
        await _assert_refused(hub.url, elm_path)
        async with session(hub.url, oak, user="oak") as other:
            assert other.nc.is_connected

        # The hub's resolver dir keeps the pushed JWT: a restart from the same config (its
        # preload predates the revocation) does not bring elm back.
        hub.server.stop()
        hub.server.start()
        await _assert_refused(hub.url, elm_path)
        async with session(hub.url, oak, user="oak") as other:
            assert other.nc.is_connected


async def _assert_refused(url: str, creds: Path) -> None:
    # A new connection of a revoked user: "-ERR Authorization Violation" at CONNECT.
    errors = await login_errors(url, creds)
    assert any("Authorization Violation" in str(e) for e in errors), errors


async def test_push_account_refuses_what_is_not_a_signed_account_jwt(tmp_path: Path) -> None:
    authority = Authority.generate()
    authority.save(tmp_path)
    sys_creds = tmp_path / "nats" / "sys.creds"
    user_jwt = authority.user_creds("oak", node_permissions("oak")).jwt
    for token, problem in (("not-a-jwt", "not a JWT"), (user_jwt, "not an account JWT")):
        with pytest.raises(ClaimsUpdateError, match=problem):
            await push_account(["nats://127.0.0.1:1"], sys_creds, token)
    with pytest.raises(ClaimsUpdateError, match="no system user creds"):
        await push_account(["nats://127.0.0.1:1"], tmp_path / "no.creds", authority.account_jwt())


def test_a_claims_update_reply_names_the_server_or_raises() -> None:
    ok = b'{"server":{"name":"hub-2"},"data":{"account":"A","code":200,"message":"jwt updated"}}'
    assert parse_update_reply("url", ok) == "hub-2"
    refused = (  # what nats-server 2.15 answers a user JWT sent as an account's
        b'{"server":{"name":"hub"},"error":{"account":"n/a","code":500,'
        b'"description":"jwt update resulted in error - not account claim"}}'
    )
    with pytest.raises(ClaimsUpdateError, match=r"url: update refused: .* not account claim"):
        parse_update_reply("url", refused)
    with pytest.raises(ClaimsUpdateError, match="unreadable"):
        parse_update_reply("url", b"<html>")


async def test_a_hub_takes_an_account_jwt_of_another_operator_and_locks_users_out(
    tmp_path: Path,
) -> None:
    """Why push_account must only carry JWTs this operator minted: the server stores any
    well-formed account JWT ("jwt updated") and checks trust only when it loads the account."""
    with running_hub(tmp_path) as hub:
        oak = hub.creds("oak", node_permissions("oak"))
        sys_creds = tmp_path / "nats" / "sys.creds"
        rogue = dataclasses.replace(hub.authority, operator_seed=Authority.generate().operator_seed)
        assert await push_account([hub.url], sys_creds, rogue.account_jwt()) == ["hub"]
        await _assert_refused(hub.url, oak)
        assert await push_account([hub.url], sys_creds, hub.authority.account_jwt()) == ["hub"]
        async with session(hub.url, oak, user="oak") as s:
            assert s.nc.is_connected


# --- limits: what the quotas mint, and what the server enforces (OPERATIONS.md §12) ---


def test_the_quotas_are_minted_into_the_account_and_user_jwts(tmp_path: Path) -> None:
    quotas = Quotas(member_bytes=8 * MIB, members_max=10, bus_bytes=100 * MIB)
    authority = Authority.generate()
    authority.limits = bus_limits(quotas, replicas=3)
    limits = decode_jwt(authority.account_jwt())["nats"]["limits"]
    assert limits["disk_storage"] == account_disk_bytes(quotas, 3) == (100 + 10 * 8) * MIB * 3
    assert (limits["streams"], limits["consumer"], limits["conn"], limits["leaf"]) == (
        14, 36, 72, 10,
    )  # fmt: skip
    assert limits["max_bytes_required"] is True
    assert limits["payload"] == USER_PAYLOAD_BYTES
    assert "mem_storage" not in limits  # 0, omitted as in Go: no memory streams
    node = authority.user_creds("node-oak", node_permissions("oak"), limits=authority.limits.node)
    observer = authority.user_creds(
        "observer-ob", observer_permissions("ob"), limits=authority.limits.observer
    )
    for creds in (node, observer):
        claims = decode_jwt(creds.jwt)["nats"]
        assert (claims["subs"], claims["payload"], claims["data"]) == (
            USER_SUBSCRIPTIONS, USER_PAYLOAD_BYTES, -1,
        )  # fmt: skip
    # The payload lets the largest sync answer through (node/engine/sync.py).
    assert USER_PAYLOAD_BYTES > REPLY_MAX_BYTES + 5 * 5000
    # Saved with the keys: an account JWT minted again (a revocation) keeps them.
    authority.save(tmp_path)
    again = Authority.load(tmp_path)
    assert again.limits == authority.limits
    revoked = decode_jwt(again.revoke(node.public_key))["nats"]
    assert revoked["limits"] == limits and node.public_key in revoked["revocations"]


async def test_the_hub_enforces_the_users_subscriptions_and_payload(tmp_path: Path) -> None:
    """nats-server closes a connection that subscribes beyond its JWT's `subs` or sends a
    message beyond its `payload`; within them a node works."""
    authority = Authority.generate()
    authority.limits = BusLimits(node=UserLimits(subs=8, payload=4096))
    authority.save(tmp_path)
    with _hub_of(tmp_path, authority) as hub:
        creds = hub.creds_with("node-oak", node_permissions("oak"), authority.limits.node)
        async with session(hub.url, creds, user="oak") as s:
            for i in range(8):
                await s.nc.subscribe(f"_INBOX.oak.{i}")
            await s.nc.flush()
            assert s.nc.is_connected
            await s.nc.subscribe("_INBOX.oak.one-too-many")
            await wait_until(lambda: _closed(s), what="the connection closed")
            assert "maximum subscriptions exceeded" in str(s.nc.last_error)
        async with session(hub.url, creds, user="oak") as s:
            await s.nc.publish("coop.oak.small", b"x" * 4000)
            await s.nc.flush()
            await s.nc.publish("coop.oak.big", b"x" * 4097)
            await wait_until(lambda: _closed(s), what="the connection closed")
            assert "maximum payload violation" in str(s.nc.last_error)


async def test_the_account_refuses_a_stream_beyond_its_disk(tmp_path: Path) -> None:
    """Each member stream's max_bytes is reserved against the account's disk: with room
    for two members, a third member stream is refused (err_code 10047), and a stream
    without a byte limit is refused outright."""
    quotas = Quotas(member_bytes=1 * MIB, bus_bytes=2 * MIB, members_max=2)
    authority = Authority.generate()
    authority.limits = bus_limits(quotas)
    authority.save(tmp_path)
    with _hub_of(tmp_path, authority) as hub:
        async with session(hub.url, admin_creds(hub)) as s:
            js = s.jetstream()
            assert await ensure_streams(js, ["ana", "ben"], quotas) == sorted(
                [STREAM, member_stream("ana"), member_stream("ben")]
            )
            seen = (await js.account_info()).limits
            assert (seen.max_storage, seen.max_bytes_required) == (4 * MIB, True)
            with pytest.raises(nats.js.errors.APIError) as refused_stream:
                await ensure_streams(js, ["ana", "ben", "cai"], quotas)
            assert refused_stream.value.err_code == INSUFFICIENT_RESOURCES
            with pytest.raises(nats.js.errors.APIError, match="max bytes"):
                await js.add_stream(dataclasses.replace(stream_config(), name="OTHER"))


async def _closed(s: Session) -> bool:
    return s.nc.is_closed


@contextlib.contextmanager
def _hub_of(root: Path, authority: Authority) -> Iterator[LimitedHub]:
    hub = _start_hub(root, authority)
    try:
        yield LimitedHub(hub.root, hub.authority, hub.server, hub.leaf_port)
    finally:
        hub.server.stop()


class LimitedHub(Hub):
    def creds_with(self, name: str, permissions: Permissions, limits: UserLimits) -> Path:
        """Mint a COOP user with `limits`; write its creds file; return the path."""
        creds = self.authority.user_creds(name, permissions, limits=limits)
        return creds.write(self.root / f"{name}.creds")
