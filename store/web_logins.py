"""One-time links into the operator's window: made by `admin web`, used once by the web
page (app/operator.py). Only the hash of a token is stored."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from store.models import WebLogin


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_login(session: Session, person_id: int, now: datetime, ttl: timedelta) -> str:
    """A token for `person_id` that works once until now + ttl (older ones are pruned)."""
    session.execute(delete(WebLogin).where(WebLogin.expires_at < now - timedelta(days=1)))
    token = secrets.token_urlsafe(32)
    session.add(
        WebLogin(token_hash=_hash(token), person_id=person_id, created_at=now, expires_at=now + ttl)
    )
    session.flush()
    return token


def use_login(session: Session, token: str, now: datetime) -> int | None:
    """The person the token logs in, marking it used; None when it is unknown, used or
    expired. Two requests racing with one token: one gets the person, the other None."""
    row = session.scalar(select(WebLogin).where(WebLogin.token_hash == _hash(token)))
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    done = session.execute(
        update(WebLogin)
        .where(WebLogin.id == row.id, WebLogin.used_at.is_(None))
        .values(used_at=now)
    )
    return row.person_id if getattr(done, "rowcount", 0) == 1 else None
