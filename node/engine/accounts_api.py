"""The HTTP routes of accounts: sign-in, join, reset, own account, tokens, and the
coordinators' management of accounts (docs/APP.md). The guard is node/engine/auth.py."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.datastructures import Cookie, State
from litestar.params import FromPath, JSONBody

from coopnet.node.engine.accounts import (
    INVITATION_HOURS,
    SESSION_MS,
    AccountOut,
    Accounts,
    InvitationOut,
    Principal,
    Role,
)
from coopnet.node.engine.auth import (
    COORDINATOR,
    PUBLIC,
    RESIDENT,
    SESSION_COOKIE,
    principal_of,
)
from coopnet.node.engine.refusals import Refused

Secret = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Password = Annotated[str, msgspec.Meta(max_length=1024)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class SignIn(msgspec.Struct, kw_only=True):
    name: Name
    password: Password


class InvitationIn(msgspec.Struct, kw_only=True):
    invitation: Secret


class JoinIn(msgspec.Struct, kw_only=True):
    invitation: Secret
    name: Name
    password: Password
    display_name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    contact: Annotated[str, msgspec.Meta(max_length=200)] = ""


class ResetIn(msgspec.Struct, kw_only=True):
    invitation: Secret
    password: Password


class PasswordIn(msgspec.Struct, kw_only=True):
    current: Password
    new: Password


class TokenIn(msgspec.Struct, kw_only=True):
    label: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]


class InviteIn(msgspec.Struct, kw_only=True):
    role: Role = "resident"
    expires_in_hours: Annotated[int, msgspec.Meta(ge=1, le=24 * 30)] = INVITATION_HOURS


class RoleIn(msgspec.Struct, kw_only=True):
    role: Role


class Me(msgspec.Struct, kw_only=True):
    name: str
    display_name: str
    role: Role
    csrf: str  # send as X-CSRF-Token with every change made with this session
    contact: str = ""


class TokenOut(msgspec.Struct, kw_only=True):
    id: str
    label: str
    role: Role
    token: str  # shown only here


class LinkOut(msgspec.Struct, kw_only=True):
    id: str
    role: Role
    expires_at: int  # ms since the epoch
    link: str  # the app's page for it: <app>/#/join/<secret> or #/reset/<secret>


class Ok(msgspec.Struct, kw_only=True):
    ok: bool = True


class Health(msgspec.Struct, kw_only=True):
    ok: bool = True
    neighborhood: str = ""  # its display name, public in the federation (the sign-in page)


def _accounts(state: State) -> Accounts:
    accounts: Accounts = state.accounts
    return accounts


def app_url(request: Request[Any, Any, Any]) -> str:
    """The app's URL as this request reached it (Host was checked by the doors)."""
    scheme = "https" if request.url.scheme == "https" else "http"
    return f"{scheme}://{request.headers.get('host', '127.0.0.1')}/"


async def me_of(accounts: Accounts, principal: Principal) -> Me:
    account = await accounts.get(principal.name)
    return Me(
        name=principal.name,
        display_name=account.display_name if account else principal.name,
        role=principal.role,
        csrf=principal.csrf,
        contact=account.contact if account else "",
    )


def signed_in(
    request: Request[Any, Any, Any], me: Me, secret: str, status: int = 200
) -> Response[Me]:
    cookie = Cookie(
        key=SESSION_COOKIE,
        value=secret,
        max_age=SESSION_MS // 1000,
        path="/",
        httponly=True,
        samesite="strict",
        # Over HTTPS (a TLS proxy in front: node.toml `api_https`), never sent in clear.
        secure=request.url.scheme == "https" or request.app.state.node.config.api_https,
    )
    return Response(me, status_code=status, cookies=[cookie])


@post("/auth/sign-in", opt=PUBLIC, status_code=200, summary="Sign in with name and password")
async def sign_in(
    request: Request[Any, Any, Any], state: State, data: JSONBody[SignIn]
) -> Response[Me]:
    client = request.client.host if request.client else "?"
    name = data.name.strip().lower()
    accounts = _accounts(state)
    pairs, clients, names = (
        accounts.failures_by_name_and_client,
        accounts.failures_by_client,
        accounts.failures_by_name,
    )
    pair = f"{name}\n{client}"
    wait = max(pairs.wait_s(pair), clients.wait_s(client), names.wait_s(name))
    if wait:
        raise Refused(
            "too_many_attempts",
            f"too many failed sign-ins: try again in {wait} s",
            429,
            retry_after_s=wait,
        )
    found = await accounts.sign_in(name, data.password)
    if found is None:
        pairs.failed(pair)
        clients.failed(client)
        names.failed(name)
        raise Refused("bad_credentials", "that name and password do not match an account", 401)
    pairs.succeeded(pair)
    principal, secret = found
    return signed_in(request, await me_of(accounts, principal), secret)


@post("/auth/invitation", opt=PUBLIC, status_code=200, summary="What a join or reset link is for")
async def check_invitation(state: State, data: JSONBody[InvitationIn]) -> InvitationOut:
    found = await _accounts(state).invitation(data.invitation)
    return msgspec.structs.replace(found, id="", created_by="")


@post("/auth/join", opt=PUBLIC, status_code=201, summary="Make an account from an invitation")
async def join(
    request: Request[Any, Any, Any], state: State, data: JSONBody[JoinIn]
) -> Response[Me]:
    accounts = _accounts(state)
    principal, secret = await accounts.join(
        data.invitation, data.name.strip().lower(), data.password, data.display_name, data.contact
    )
    return signed_in(request, await me_of(accounts, principal), secret, 201)


@post("/auth/reset", opt=PUBLIC, status_code=200, summary="Set a new password from a reset link")
async def reset(
    request: Request[Any, Any, Any], state: State, data: JSONBody[ResetIn]
) -> Response[Me]:
    accounts = _accounts(state)
    principal, secret = await accounts.reset(data.invitation, data.password)
    return signed_in(request, await me_of(accounts, principal), secret)


@get("/health", opt=PUBLIC, summary="Whether the node's API answers, and the neighborhood's name")
async def health(state: State) -> Health:
    return Health(neighborhood=state.node.config.display_name)


@get("/auth/me", opt=RESIDENT, summary="Who is signed in, with the CSRF token for changes")
async def me(request: Request[Any, Any, Any], state: State) -> Me:
    return await me_of(_accounts(state), principal_of(request))


@post("/auth/sign-out", opt=RESIDENT, status_code=200, summary="End this session")
async def sign_out(request: Request[Any, Any, Any], state: State) -> Response[Ok]:
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        await _accounts(state).sign_out(secret)
    gone = Cookie(
        key=SESSION_COOKIE, value="", max_age=0, path="/", httponly=True, samesite="strict"
    )
    return Response(Ok(), cookies=[gone])


@post("/auth/password", opt=RESIDENT, status_code=200, summary="Change own password")
async def change_password(
    request: Request[Any, Any, Any], state: State, data: JSONBody[PasswordIn]
) -> Ok:
    principal = principal_of(request)
    if principal.via == "peer" or principal.name.startswith("@"):
        raise Refused("no_account", "the node's own user has no password to change", 400)
    await _accounts(state).change_password(
        principal.name, data.current, data.new, request.cookies.get(SESSION_COOKIE)
    )
    return Ok()


@get("/auth/tokens", opt=RESIDENT, summary="Own API tokens (never their secrets)")
async def list_tokens(request: Request[Any, Any, Any], state: State) -> list[dict[str, Any]]:
    return await _accounts(state).tokens(principal_of(request).name)


@post("/auth/tokens", opt=RESIDENT, status_code=201, summary="A new API token, shown once")
async def new_token(
    request: Request[Any, Any, Any], state: State, data: JSONBody[TokenIn]
) -> TokenOut:
    principal = principal_of(request)
    token_id, secret = await _accounts(state).new_token(principal, data.label)
    return TokenOut(id=token_id, label=data.label, role=principal.role, token=secret)


@post("/auth/tokens/{token:str}/revoke", opt=RESIDENT, status_code=200, summary="Revoke a token")
async def revoke_token(request: Request[Any, Any, Any], state: State, token: FromPath[str]) -> Ok:
    await _accounts(state).revoke_token(principal_of(request).name, token)
    return Ok()


@get("/accounts", opt=COORDINATOR, summary="The neighborhood's accounts")
async def list_accounts(state: State) -> list[AccountOut]:
    return await _accounts(state).listing()


@post("/accounts/invitations", opt=COORDINATOR, status_code=201, summary="Invite someone")
async def invite(
    request: Request[Any, Any, Any], state: State, data: JSONBody[InviteIn]
) -> LinkOut:
    found, secret = await _accounts(state).invite(
        data.role, principal_of(request).name, data.expires_in_hours
    )
    link = f"{app_url(request)}#/join/{secret}"
    return LinkOut(id=found.id, role=found.role, expires_at=found.expires_at, link=link)


@get("/accounts/invitations", opt=COORDINATOR, summary="Open invitations and reset links")
async def list_invitations(state: State) -> list[InvitationOut]:
    return await _accounts(state).open_invitations()


@post(
    "/accounts/invitations/{invitation:str}/revoke",
    opt=COORDINATOR,
    status_code=200,
    summary="Revoke an invitation or reset link",
)
async def revoke_invitation(state: State, invitation: FromPath[str]) -> Ok:
    await _accounts(state).revoke_invitation(invitation)
    return Ok()


@post("/accounts/{name:str}/role", opt=COORDINATOR, status_code=200, summary="Change a role")
async def set_role(state: State, name: FromPath[str], data: JSONBody[RoleIn]) -> Ok:
    await _accounts(state).set_role(name, data.role)
    return Ok()


@post("/accounts/{name:str}/reset", opt=COORDINATOR, status_code=201, summary="A reset link")
async def reset_link(request: Request[Any, Any, Any], state: State, name: FromPath[str]) -> LinkOut:
    found, secret = await _accounts(state).reset_link(name, principal_of(request).name)
    link = f"{app_url(request)}#/reset/{secret}"
    return LinkOut(id=found.id, role=found.role, expires_at=found.expires_at, link=link)


@post("/accounts/{name:str}/disable", opt=COORDINATOR, status_code=200, summary="Disable")
async def disable(state: State, name: FromPath[str]) -> Ok:
    await _accounts(state).disable(name)
    return Ok()


accounts_router = Router(
    path="/",
    route_handlers=[
        sign_in,
        check_invitation,
        join,
        reset,
        health,
        me,
        sign_out,
        change_password,
        list_tokens,
        new_token,
        revoke_token,
        list_accounts,
        invite,
        list_invitations,
        revoke_invitation,
        set_role,
        reset_link,
        disable,
    ],
)

__all__ = ["Me", "Ok", "accounts_router", "app_url", "me_of", "signed_in"]
