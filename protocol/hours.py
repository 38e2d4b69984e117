"""A time bank in hours between neighborhoods, pure (docs/PROTOCOL.md §20).

Hours are a second unit of account, in their own ledger that sums to zero and is never
converted into credit. An hour is an hour whatever the service. On the wire hours are
integers of quarter hours (1 = 15 minutes). Residents' own time accounts never leave their
node (node/timebank/); on the bus, a neighborhood that received help signs the hours over
to the neighborhood that gave it (`hours.transferred`): the payer's own statement moves
its own hours, as a buyer's receipt moves its credit (§11).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from coopnet.protocol.body import Body
from coopnet.protocol.offers import LocalId
from coopnet.protocol.pools import OptionalLocalId
from coopnet.protocol.trades import Slug

QUARTERS_PER_HOUR = 4
# One transfer moves at most 10,000 hours.
Quarters = Annotated[int, msgspec.Meta(ge=1, le=10_000 * QUARTERS_PER_HOUR)]


class HoursTransferred(Body, frozen=True, kw_only=True):
    """The signer received `quarters` quarter hours of help from neighborhood `to` and
    signs them over: its hour balance goes down by `quarters`, `to`'s up. `request`: the
    signer's call for help the hours answered (its id in §13), or "" for none."""

    kind = "hours.transferred"
    transfer: LocalId
    to: Slug
    quarters: Quarters
    request: OptionalLocalId = ""


HOURS_KINDS: tuple[type[Body], ...] = (HoursTransferred,)
