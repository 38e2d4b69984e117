"""Edges of membership and the charter on both sides (docs/PROTOCOL.md §16): the quorum
("more than" the percentage: exactly it is not enough), the charter's bounds and its
policies. Expected values are the spec's, written here; where the spec names no value,
the test says so."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from coopnet.protocol.charter import CharterError, Policies, parse_charter
from coopnet.protocol.membership import Application, Position, consents_needed, decide

# -- the quorum (§16.4) -----------------------------------------------------------------------


def needed(n: int, quorum_percent: int) -> int:
    """§16.4, transcribed: max(1, min(n, floor(n × quorum_percent / 100) + 1))."""
    return max(1, min(n, (n * quorum_percent) // 100 + 1))


# (members, quorum_percent, consents needed), worked out by hand from the rule.
NEEDED = [
    (1, 50, 1), (2, 50, 2), (3, 50, 2), (4, 50, 3), (5, 50, 3), (6, 50, 4), (10, 50, 6),
    (4, 0, 1), (4, 24, 1), (4, 25, 2), (4, 49, 2), (4, 74, 3), (4, 75, 4), (4, 99, 4),
    (4, 100, 4), (3, 33, 1), (3, 34, 2), (3, 66, 2), (3, 67, 3), (10, 9, 1), (10, 10, 2),
    (10, 66, 7), (10, 70, 8), (10, 100, 10), (256, 50, 129), (0, 50, 1), (0, 0, 1),
]  # fmt: skip


@pytest.mark.parametrize(("members", "percent", "count"), NEEDED)
def test_consents_needed(members: int, percent: int, count: int) -> None:
    assert needed(members, percent) == count  # the table agrees with the formula
    assert consents_needed(members, percent) == count


def app_id(slug: str) -> bytes:
    return hashlib.sha256(f"application of {slug}".encode()).digest()


def standing(
    founders: list[str], consenting: list[str], quorum: int, objecting: tuple[str, ...] = ()
) -> tuple[str, int]:
    positions = [Position(voter=v, applicant="dee", application=app_id("dee"), stance="consent")
                 for v in consenting]  # fmt: skip
    positions += [Position(voter=v, applicant="dee", application=app_id("dee"), stance="object")
                  for v in objecting]  # fmt: skip
    app = Application(applicant="dee", id=app_id("dee"), display_name="Dee", area="N9",
                      about="", reason="we bake", at=0)  # fmt: skip
    result = decide(founders=founders, applications={"dee": app}, positions=positions,
                    retired=(), quorum_percent=quorum)["dee"]  # fmt: skip
    return result.status, result.needed


FOUR = ["ana", "ben", "cai", "dan"]


@pytest.mark.parametrize(
    ("consents", "quorum", "status"),
    [
        (2, 50, "applicant"),  # exactly 50 % of 4 is not more than 50 %
        (3, 50, "admitted"),
        (1, 0, "admitted"),  # more than 0 %: one consent
        (0, 0, "applicant"),
        (3, 100, "applicant"),
        (4, 100, "admitted"),
        (3, 75, "applicant"),  # exactly 75 %
        (4, 75, "admitted"),
        (2, 49, "admitted"),  # 50 % is more than 49 %
        (1, 25, "applicant"),  # exactly 25 %
        (2, 25, "admitted"),
    ],
)
def test_admission_at_the_quorum_edge(consents: int, quorum: int, status: str) -> None:
    got, count = standing(FOUR, FOUR[:consents], quorum)
    assert (got, count) == (status, needed(4, quorum))


def test_the_default_quorum_is_a_strict_majority() -> None:
    """§16.4: "with the default 50, a strict majority"."""
    quorum = Policies().quorum_percent
    assert quorum == 50
    assert standing(FOUR, FOUR[:2], quorum)[0] == "applicant"
    assert standing(FOUR, FOUR[:3], quorum)[0] == "admitted"
    assert standing(FOUR[:3], FOUR[:2], quorum)[0] == "admitted"


def test_every_consent_and_one_objection_does_not_admit() -> None:
    assert standing(FOUR, FOUR, 0, objecting=("ana",))[0] == "applicant"


def test_with_no_member_left_nobody_is_admitted() -> None:
    """needed(0) = 1, and no member is left to give it."""
    app = Application(applicant="dee", id=app_id("dee"), display_name="Dee", area="N9",
                      about="", reason="we bake", at=0)  # fmt: skip
    votes = [Position(voter="ana", applicant="dee", application=app_id("dee"), stance="consent")]
    result = decide(founders=["ana"], applications={"dee": app}, positions=votes,
                    retired=["ana"], quorum_percent=0)  # fmt: skip
    assert result["dee"].status == "applicant"


# -- the charter (§16.1) ----------------------------------------------------------------------

KEY = "ab" * 32


def founder(i: int) -> dict[str, Any]:
    return {"slug": f"n{i:03d}", "display_name": f"N {i}", "area": "N1",
            "key": hashlib.sha256(str(i).encode()).hexdigest()}  # fmt: skip


def charter(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "version": 1,
        "name": "Riverside",
        "founders": [founder(1)],
        "policies": {
            "credit_limit": 50_000,
            "consent_window_s": 604_800,
            "quorum_percent": 50,
            "escalate_critical_s": 900,
            "escalate_high_s": 7200,
            "escalate_normal_s": 86_400,
        },
        "created": "2026-11-30T22:00:00Z",
        "admission_key": KEY,
    }
    value.update(changes)
    return value


def with_policy(**changes: Any) -> dict[str, Any]:
    value = charter()
    value["policies"].update(changes)
    return value


def with_founder(**changes: Any) -> dict[str, Any]:
    return charter(founders=[{**founder(1), **changes}])


def ok(value: dict[str, Any]) -> None:
    parse_charter(json.dumps(value).encode())


def bad(value: dict[str, Any]) -> str:
    with pytest.raises(CharterError) as caught:
        parse_charter(json.dumps(value).encode())
    return str(caught.value)


KEY1, SLUG1 = founder(1)["key"], founder(1)["slug"]
SECONDS_MAX = 10 * 365 * 24 * 3600  # §16.1: seconds are 0-315,360,000 (ten years)

CHARTER_CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("the example", charter(), True),
    ("version 2", charter(version=2), False),
    ("version 0", charter(version=0), False),
    ("name of 1 character", charter(name="R"), True),
    ("name of 80 characters", charter(name="é" * 80), True),
    ("an empty name", charter(name=""), False),
    ("name of 81 characters", charter(name="é" * 81), False),
    ("one founder", charter(founders=[founder(1)]), True),
    ("256 founders", charter(founders=[founder(i) for i in range(256)]), True),
    ("no founder", charter(founders=[]), False),
    ("257 founders", charter(founders=[founder(i) for i in range(257)]), False),
    ("two founders, a slug", charter(founders=[founder(1), {**founder(2), "slug": SLUG1}]), False),
    ("two founders, one key", charter(founders=[founder(1), {**founder(2), "key": KEY1}]), False),
    ("founder key of 64 hex digits", with_founder(key="0f" * 32), True),
    ("founder key of 63 hex digits", with_founder(key="0f" * 31 + "0"), False),
    ("founder key of 65 hex digits", with_founder(key="0f" * 32 + "0"), False),
    ("founder key in capitals", with_founder(key="0F" * 32), False),
    ("founder key with a final newline", with_founder(key="0f" * 32 + "\n"), False),
    ("founder slug of 2 characters", with_founder(slug="ab"), True),
    ("founder slug of 32 characters", with_founder(slug="a" * 32), True),
    ("founder slug of 1 character", with_founder(slug="a"), False),
    ("founder slug of 33 characters", with_founder(slug="a" * 33), False),
    ("founder display name of 80", with_founder(display_name="x" * 80), True),
    ("founder display name of 81", with_founder(display_name="x" * 81), False),
    ("founder display name empty", with_founder(display_name=""), False),
    ("founder area of 32", with_founder(area="A" * 32), True),
    ("founder area of 33", with_founder(area="A" * 33), False),
    ("founder with an unknown key", with_founder(colour="red"), False),
    ("admission key absent", {k: v for k, v in charter().items() if k != "admission_key"}, True),
    ("admission key of 63 hex digits", charter(admission_key="ab" * 31 + "a"), False),
    ("admission key of 65 hex digits", charter(admission_key="ab" * 32 + "a"), False),
    ("admission key in capitals", charter(admission_key="AB" * 32), False),
    ("admission key empty", charter(admission_key=""), True),  # §16.1: "" asks no ticket
    ("credit limit 0", with_policy(credit_limit=0), True),
    ("credit limit 10^12", with_policy(credit_limit=10**12), True),
    ("credit limit -1", with_policy(credit_limit=-1), False),
    ("credit limit 10^12 + 1", with_policy(credit_limit=10**12 + 1), False),
    ("quorum 0", with_policy(quorum_percent=0), True),
    ("quorum 100", with_policy(quorum_percent=100), True),
    ("quorum -1", with_policy(quorum_percent=-1), False),
    ("quorum 101", with_policy(quorum_percent=101), False),
    ("an unknown policy", with_policy(quorum=50), False),
    ("an unknown key", charter(colour="red"), False),
    ("a control character", charter(name="River\x1fside"), False),
    ("a delete character", charter(name="River\x7fside"), False),
    ("a space", charter(name="River side"), True),
    ("a fraction", with_policy(quorum_percent=50.0), False),
    ("created of 40 characters", charter(created="x" * 40), True),  # §16.1
    ("created of 41 characters", charter(created="x" * 41), False),
]  # fmt: skip
for _policy in ("consent_window_s", "escalate_critical_s", "escalate_high_s", "escalate_normal_s"):
    CHARTER_CASES += [
        (f"{_policy} 0", with_policy(**{_policy: 0}), True),
        (f"{_policy} -1", with_policy(**{_policy: -1}), False),
        # §16.1: seconds are 0-315,360,000 (ten years).
        (f"{_policy} ten years", with_policy(**{_policy: SECONDS_MAX}), True),
        (f"{_policy} ten years and a second", with_policy(**{_policy: SECONDS_MAX + 1}), False),
    ]


@pytest.mark.parametrize(
    ("value", "valid"), [pytest.param(v, o, id=n) for n, v, o in CHARTER_CASES]
)
def test_charter_bounds(value: dict[str, Any], valid: bool) -> None:
    if valid:
        ok(value)
    else:
        bad(value)


@pytest.mark.parametrize(
    ("policy", "value", "bound"),
    [("quorum_percent", 101, "100"), ("quorum_percent", -1, "0"),
     ("credit_limit", 10**12 + 1, str(10**12))],
)  # fmt: skip
def test_a_policy_out_of_range_is_named_with_its_bound(policy: str, value: int, bound: str) -> None:
    message = bad(with_policy(**{policy: value}))
    assert policy in message and bound in message


OPTIONAL = {  # §16.1: what an absent key means
    "version": ("version", 1),
    "created": ("created", ""),
    "policies.quorum_percent": ("quorum_percent", 50),
    "policies.consent_window_s": ("consent_window_s", 604_800),
}


@pytest.mark.parametrize("key", [*OPTIONAL, "policies"])
def test_an_absent_optional_key_takes_the_specs_default(key: str) -> None:
    """§16.1: `version`, `created`, `policies` and each policy may be left out, and mean
    their default; the canonical bytes are the charter as written, so `net` differs."""
    value = charter()
    if key.startswith("policies."):
        del value["policies"][key.removeprefix("policies.")]
    else:
        del value[key]
    parsed, net = parse_charter(json.dumps(value).encode())
    assert net != parse_charter(json.dumps(charter()).encode())[1]
    if key == "policies":
        assert parsed.policies == Policies()
        return
    field, default = OPTIONAL[key]
    holder = parsed.policies if key.startswith("policies.") else parsed
    assert getattr(holder, field) == default


@pytest.mark.parametrize("key", ["name", "founders"])
def test_a_charter_without_a_required_key_is_refused(key: str) -> None:
    bad({k: v for k, v in charter().items() if k != key})


@pytest.mark.parametrize("char", ["\x80", "\x85", "\x9f"])
def test_a_c1_character_is_not_refused_in_a_charter(char: str) -> None:
    """§16.1: the control characters a charter refuses are U+0000-U+001F and U+007F; the
    C1 range is left to §18's display rule."""
    parse_charter(json.dumps(charter(name=f"River{char}side")).encode())


def test_a_charter_without_admission_key_asks_for_no_ticket() -> None:
    """§16.6: "A charter without `admission_key` asks for no ticket"."""
    value = {k: v for k, v in charter().items() if k != "admission_key"}
    assert parse_charter(json.dumps(value).encode())[0].admission_public_key() is None
    assert parse_charter(json.dumps(charter()).encode())[0].admission_public_key() == bytes.fromhex(
        KEY
    )


def test_the_policy_defaults() -> None:
    """§16.1's defaults: credit limit 50,000 cents, quorum 50, windows 15 min, 2 h, 24 h,
    consent window 7 days."""
    p = Policies()
    assert (p.credit_limit, p.quorum_percent) == (50_000, 50)
    assert (p.escalate_critical_s, p.escalate_high_s, p.escalate_normal_s) == (900, 7200, 86_400)
    assert p.consent_window_s == 7 * 24 * 3600
