"""API routes of public notes: post one, read the newest (PROTOCOL.md §8 `note.posted`)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Router, get, post
from litestar.datastructures import State
from litestar.params import JSONBody, QueryParameter

from coopnet.node.engine.api import EventOut, event_out
from coopnet.node.engine.auth import COORDINATOR, RESIDENT
from coopnet.node.engine.context import NodeContext
from coopnet.protocol import NotePosted
from coopnet.protocol.body import NoteText


class NoteIn(msgspec.Struct, kw_only=True):
    text: NoteText


class NoteOut(msgspec.Struct, kw_only=True):
    author: str
    seq: int
    at: int
    text: str


def _node(state: State) -> NodeContext:
    node: NodeContext = state.node
    return node


@post("/notes", opt=COORDINATOR, summary="Post a public note to the federation", status_code=201)
async def post_note(state: State, data: JSONBody[NoteIn]) -> EventOut:
    env = await _node(state).post(NotePosted(text=data.text))
    return event_out(env)


@get("/notes", opt=RESIDENT, summary="Notes from every neighborhood, newest first")
async def get_notes(
    state: State, limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50
) -> list[NoteOut]:
    rows = await _node(state).store.all(
        "SELECT author, seq, at, text FROM notes ORDER BY at DESC, author LIMIT ?", (limit,)
    )
    return [NoteOut(author=r[0], seq=r[1], at=r[2], text=r[3]) for r in rows]


notes_router = Router(path="/", route_handlers=[post_note, get_notes])
