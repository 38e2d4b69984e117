"""The demo's residents call for help ("Call 4 Help").

Each neighborhood's residents raise requests now and then. Some are met by their own
neighbors (pledged and fulfilled inside the neighborhood, never on the bus); the others are
not pledged within their urgency's window (short in the demo) and escalate to the
federation, where other neighborhoods' automatic aid policy pledges, the requester accepts,
and confirms fulfilment.
"""

from __future__ import annotations

import random

import anyio

from coopnet.node.engine.refusals import Refused
from coopnet.node.engine.store_io import fetch_one
from coopnet.node.runtime import Node

# The demo's escalation windows, in seconds (the defaults are minutes to a day).
DEMO_WINDOWS = {"escalate_critical_s": 2, "escalate_high_s": 3, "escalate_normal_s": 5}
NEEDS = [
    ("food", "Hot meals for a family after a kitchen fire", 4),
    ("transport", "A ride to the clinic for two neighbors", 2),
    ("eldercare", "Someone to check on an elderly neighbor twice a day", 1),
    ("childcare", "Childcare for three children on Saturday", 3),
    ("repair", "Help fixing a broken window before the storm", 2),
    ("utilities", "Space heaters during the outage", 3),
    ("shelter", "Beds for a family for two nights", 4),
    ("medical-supplies", "Bandages and a first-aid kit", 1),
]


async def residents(node: Node, rng: random.Random, rate_per_s: float, stop: anyio.Event) -> None:
    """Raise requests until `stop`; neighbors meet about half of them locally."""
    await node.ready.wait()
    while not stop.is_set():
        with anyio.move_on_after(rng.expovariate(rate_per_s)):
            await stop.wait()
        if stop.is_set():
            return
        category, text, quantity = rng.choice(NEEDS)
        urgency = rng.choice(("critical", "high", "high", "normal"))
        try:
            rid = await node.aid.request(
                category=category, urgency=urgency, needed_in_min=60, quantity=quantity,
                description=text,
            )  # fmt: skip
            if rng.random() < 0.5:  # the neighbors answer in time, and come round
                await node.aid.pledge(node.slug, rid, "neighbors", quantity)
                with anyio.move_on_after(rng.uniform(0.5, 3.0)):
                    await stop.wait()  # the help arrives (or the demo ends: it is done)
                await node.aid.fulfil(rid)
        except Refused:
            continue


async def calls_for_help(node: Node) -> dict[str, int]:
    """This neighborhood's calls for help so far, from its own (private) tables: `raised`,
    `escalated` (to the federation), `fulfilled`, and `open` (neither fulfilled nor
    withdrawn yet)."""
    row = await fetch_one(
        node.store.db,
        "SELECT COUNT(*), COUNT(escalated_at), SUM(state = 'fulfilled'),"
        " SUM(state IN ('open', 'escalated')) FROM local_aid",
    )
    raised, escalated, fulfilled, open_ = (int(v or 0) for v in row) if row else (0, 0, 0, 0)
    return {"raised": raised, "escalated": escalated, "fulfilled": fulfilled, "open": open_}
