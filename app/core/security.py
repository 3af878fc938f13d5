"""API keys: creation and authentication.

A secret looks like ``hws_<43 url-safe characters>`` and is shown to its owner once.
Only its SHA-256 is stored, so a leaked database reveals no usable key; looking a key
up by the hash of what the caller sent leaks nothing through timing about stored keys.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import ApiKey

LOCAL_OWNER = "local"
"""Owner of jobs submitted without a key while no key is needed (auth off, or loopback)."""
SECRET_PREFIX = "hws_"
_SECRET_BYTES = 32
_DISPLAY_PREFIX_LENGTH = 12
_MAX_SECRET_LENGTH = 200
_PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def is_loopback(address: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and ::ffff:127.x; False for names and anything else."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def key_required(
    mode: str, local_address: str | None, headers: Mapping[str, str] | None = None
) -> bool:
    """Whether a request must present an API key under the auth ``mode``.

    ``auto`` follows the local address the connection really arrived on (the ASGI
    scope's ``server``), not the address the server was told to bind: a server on
    0.0.0.0 asks a key of every connection from outside and none of one over loopback.
    A request that a proxy forwarded (Forwarded, X-Forwarded-For, X-Real-IP) always
    needs a key, since a proxy on the same machine also connects over loopback.
    """
    if mode != "auto":
        return mode == "on"
    if any(name in (headers or {}) for name in _PROXY_HEADERS):
        return True
    return not is_loopback(local_address)


def caller_words(owner: str) -> str:
    """Who a message about limits speaks to: "this API key", or "you" without one.

    A keyless user on their own machine never dealt with API keys; telling them that
    "this API key" is over a limit sends them looking for a key they do not have.
    """
    return "you" if owner == LOCAL_OWNER else "this API key"


def hash_secret(secret: str) -> str:
    """The stored form of a secret: hex SHA-256."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_api_key(session: Session, name: str) -> tuple[ApiKey, str]:
    """Add a key named ``name`` and return it with its secret (the caller commits)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError("an API key name must be 1 to 100 characters, e.g. 'ci' or 'alice'")
    secret = SECRET_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)
    key = ApiKey(name=name, prefix=secret[:_DISPLAY_PREFIX_LENGTH], key_hash=hash_secret(secret))
    session.add(key)
    session.flush()
    return key, secret


def authenticate(session: Session, secret: str) -> ApiKey | None:
    """The active key whose secret this is, or None."""
    if not secret.startswith(SECRET_PREFIX) or len(secret) > _MAX_SECRET_LENGTH:
        return None
    return session.scalars(
        select(ApiKey).where(ApiKey.key_hash == hash_secret(secret), ApiKey.revoked_at.is_(None))
    ).first()


def revoke_api_key(session: Session, key_id: str) -> bool:
    """Revoke a key by id; False when no active key has that id (the caller commits)."""
    key = session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        return False
    key.revoked_at = datetime.now(UTC)
    return True
