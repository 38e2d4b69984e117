"""The error codes of docs/PROTOCOL.md §7, typed here from its table: which exist, in which
group, and that a retired code is never raised again. Other implementations report these
codes for the same inputs, so a renamed, dropped or regrouped code is a protocol change."""

from __future__ import annotations

from coopnet.protocol import errors

# §7, "raised by" unseal (§4), in the order of the checks.
SPEC_UNSEAL = (
    "too_large",
    "malformed",
    "non_canonical",
    "bad_version",
    "wrong_network",
    "bad_signature",
    "body_hash_mismatch",
    "bad_body",
)
# §7, raised against what a receiver holds (§5-6).
SPEC_STATEFUL = ("unknown_author", "wrong_key", "fork", "future_timestamp", "not_authorized")
# §7, raised by domain rules only (a stored event's refusal, §7.1).
SPEC_DOMAIN_ONLY = ("out_of_bounds", "personal_data")
# §7, *retired*: no longer raised, never given to anything else.
SPEC_RETIRED = ("unknown_kind",)


def test_the_code_groups_are_the_specs() -> None:
    assert errors.UNSEAL_CODES == SPEC_UNSEAL
    assert errors.STATEFUL_CODES == SPEC_STATEFUL
    assert errors.DOMAIN_CODES == SPEC_DOMAIN_ONLY
    assert errors.RETIRED_CODES == SPEC_RETIRED
    assert errors.ALL_CODES == SPEC_UNSEAL + SPEC_STATEFUL


def _subclasses(cls: type[errors.InvalidEvent]) -> list[type[errors.InvalidEvent]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def test_every_refusal_class_has_one_code_of_the_spec_and_no_retired_one() -> None:
    # The protocol's own classes; a receiver's counts (§6.4's `unverifiable_gap`, defined by
    # the node) are not §7 errors.
    protocol = [
        c for c in _subclasses(errors.InvalidEvent) if c.__module__.startswith("coopnet.protocol")
    ]
    codes = [cls.code for cls in protocol]
    assert len(codes) == len(set(codes))  # one class per code
    assert set(codes) == set(SPEC_UNSEAL + SPEC_STATEFUL + SPEC_DOMAIN_ONLY)
    assert errors.InvalidEvent.code == "invalid"  # the base is never raised as such
