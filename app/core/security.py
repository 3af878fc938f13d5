"""API keys: creation and authentication.

A secret looks like ``hws_<43 url-safe characters>`` and is shown to its owner once.
Only its SHA-256 is stored, so a leaked database reveals no usable key; looking a key
up by the hash of what the caller sent leaks nothing through timing about stored keys.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import ApiKey

SECRET_PREFIX = "hws_"
_SECRET_BYTES = 32
_DISPLAY_PREFIX_LENGTH = 12
_MAX_SECRET_LENGTH = 200


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
