"""Typed FastAPI dependencies: the application state, a database session, the caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.api.errors import ApiProblem
from app.api.state import AppState
from app.core.security import LOCAL_OWNER, authenticate, key_required

KEY_COOKIE = "hwscore_key"
"""The cookie that carries a browser's API key to the HTML pages (HttpOnly, SameSite)."""

_bearer = HTTPBearer(
    auto_error=False, description="An API key (hws_...) as `Authorization: Bearer <key>`."
)
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An API key (hws_...) in `X-API-Key`."
)


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.hwscore
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_db(state: StateDep) -> Iterator[Session]:
    session = state.database.session()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_db)]


def get_owner(
    request: Request,
    state: StateDep,
    session: SessionDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_api_key_header)],
) -> str:
    """The owner id of the caller's jobs: its API key id, or 'local' when auth is off.

    A key that is sent but wrong is always refused, so a typo never silently lands the
    caller's jobs under 'local'.
    """
    secret = bearer.credentials if bearer is not None else header_key
    return resolve_owner(request, state, session, secret)


def resolve_owner(request: Request, state: AppState, session: Session, secret: str | None) -> str:
    """The owner for a secret (or none), or ApiProblem 401; see ``get_owner``."""
    if secret:
        key = authenticate(session, secret)
        if key is None:
            raise _unauthorized("the API key is not valid or has been revoked")
        return key.id
    server = request.scope.get("server")
    local_address = server[0] if server else None
    if key_required(state.settings.auth, local_address, request.headers):
        raise _unauthorized(
            "this server needs an API key: send `Authorization: Bearer <key>` or "
            "`X-API-Key: <key>` (an operator creates one with `hwscore keys create NAME`)"
        )
    return LOCAL_OWNER


def get_viewer(
    request: Request,
    state: StateDep,
    session: SessionDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_api_key_header)],
) -> str | None:
    """The owner whose pages (dashboard, reports) to show, or None: a key is needed.

    Pages also read the key from the ``hwscore_key`` cookie that the dashboard's sign-in
    form sets, since a browser cannot send headers. Only these read-only GET pages
    honour the cookie, so it cannot be used to submit or cancel jobs across sites.
    """
    secret = bearer.credentials if bearer is not None else header_key
    secret = secret or request.cookies.get(KEY_COOKIE)
    try:
        return resolve_owner(request, state, session, secret)
    except ApiProblem:
        return None


def _unauthorized(detail: str) -> ApiProblem:
    return ApiProblem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="hwscore"'})


OwnerDep = Annotated[str, Depends(get_owner)]
ViewerDep = Annotated[str | None, Depends(get_viewer)]
