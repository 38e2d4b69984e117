"""The HTTP routes of passkeys (docs/APP.md, "Passkeys"): add one to one's account, list
and remove them, and sign in with one. The ceremonies are node/engine/passkeys.py's."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from coopnet.node.engine.accounts_api import Me, Ok, app_url, me_of, signed_in
from coopnet.node.engine.auth import PUBLIC, RESIDENT, principal_of
from coopnet.node.engine.passkeys import Passkeys

AnyRequest = Request[Any, Any, Any]
Key = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class CeremonyOut(msgspec.Struct, kw_only=True):
    ceremony: str  # send it back with the browser's answer
    options: dict[str, Any]  # for PublicKeyCredential.parse…OptionsFromJSON


class RegisterIn(msgspec.Struct, kw_only=True):
    ceremony: Key
    credential: dict[str, Any]  # PublicKeyCredential.toJSON()
    label: Annotated[str, msgspec.Meta(max_length=80)] = ""


class SignInIn(msgspec.Struct, kw_only=True):
    ceremony: Key
    credential: dict[str, Any]


class PasskeyOut(msgspec.Struct, kw_only=True):
    id: str
    label: str


def _passkeys(state: State) -> Passkeys:
    passkeys: Passkeys = state.passkeys
    return passkeys


def _origin(request: AnyRequest) -> str:
    return app_url(request).rstrip("/")


def _client(request: AnyRequest) -> str:
    return request.client.host if request.client else ""


@post("/auth/passkeys/options", opt=RESIDENT, status_code=200, summary="Start adding a passkey")
async def registration_options(request: AnyRequest, state: State) -> CeremonyOut:
    options, key = await _passkeys(state).registration_options(
        principal_of(request), _origin(request), _client(request)
    )
    return CeremonyOut(ceremony=key, options=msgspec.json.decode(options))


@post("/auth/passkeys", opt=RESIDENT, status_code=201, summary="Add a passkey to own account")
async def register(request: AnyRequest, state: State, data: JSONBody[RegisterIn]) -> PasskeyOut:
    label = data.label or "passkey"
    made = await _passkeys(state).register(
        principal_of(request), data.ceremony, data.credential, label
    )
    return PasskeyOut(id=made, label=label)


@get("/auth/passkeys", opt=RESIDENT, summary="Own passkeys")
async def listing(request: AnyRequest, state: State) -> list[dict[str, Any]]:
    return await _passkeys(state).listing(principal_of(request).name)


@post("/auth/passkeys/{passkey:str}/remove", opt=RESIDENT, status_code=200, summary="Remove one")
async def remove(request: AnyRequest, state: State, passkey: FromPath[str]) -> Ok:
    await _passkeys(state).remove(principal_of(request).name, passkey)
    return Ok()


@post(
    "/auth/passkey/options", opt=PUBLIC, status_code=200, summary="Start signing in with a passkey"
)
async def sign_in_options(request: AnyRequest, state: State) -> CeremonyOut:
    options, key = _passkeys(state).sign_in_options(_origin(request), _client(request))
    return CeremonyOut(ceremony=key, options=msgspec.json.decode(options))


@post("/auth/passkey/sign-in", opt=PUBLIC, status_code=200, summary="Sign in with a passkey")
async def sign_in(request: AnyRequest, state: State, data: JSONBody[SignInIn]) -> Response[Me]:
    passkeys = _passkeys(state)
    principal, secret = await passkeys.sign_in(data.ceremony, data.credential)
    return signed_in(request, await me_of(passkeys.accounts, principal), secret)


passkeys_router = Router(
    path="/",
    route_handlers=[registration_options, register, listing, remove, sign_in_options, sign_in],
)

__all__ = ["passkeys_router"]
