"""Signed, expiring URLs for stored files (HMAC-SHA256 with PINWALL_SECRET_KEY)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from urllib.parse import quote


class UrlSigner:
    def __init__(self, key: str) -> None:
        self._key = key.encode()

    def signature(self, blob_id: str, expires: int) -> str:
        mac = hmac.new(self._key, f"file:{blob_id}:{expires}".encode(), hashlib.sha256)
        return mac.hexdigest()[:32]

    def file_url(self, base: str, blob_id: str, name: str, *, now: datetime, ttl: timedelta) -> str:
        expires = int((now + ttl).timestamp())
        safe_name = quote(name.replace("/", "_") or "file", safe="")
        sig = self.signature(blob_id, expires)
        return f"{base.rstrip('/')}/files/{blob_id}/{safe_name}?exp={expires}&sig={sig}"

    def check(self, blob_id: str, expires: str, sig: str, *, now: datetime) -> str | None:
        """None when the URL is good; else why not: "forged" or "expired"."""
        if not expires.isdigit():
            return "forged"
        if not hmac.compare_digest(self.signature(blob_id, int(expires)), sig):
            return "forged"
        if int(expires) < now.timestamp():
            return "expired"
        return None

    # --- tokens in addresses and links (mail: reply+<token>@..., one-click unsubscribe) --

    def _mac(self, purpose: str, body: str) -> str:
        mac = hmac.new(self._key, f"{purpose}:{body}".encode(), hashlib.sha256)
        return mac.hexdigest()[:20]  # 80 bits: lower case, fits a mail address's local part

    def tag(self, purpose: str, body: str) -> str:
        """The MAC of `body` for `purpose` (20 lower-case hex digits)."""
        return self._mac(purpose, body)

    def token(self, purpose: str, *numbers: int) -> str:
        """`numbers` signed for `purpose`: "12.5.<mac>" (digits, dots and lower-case hex,
        which survive mail systems that fold the local part's case)."""
        body = ".".join(str(n) for n in numbers)
        return f"{body}.{self._mac(purpose, body)}"

    def open_token(self, purpose: str, token: str, count: int) -> tuple[int, ...] | None:
        """The `count` numbers a token of `purpose` carries; None when it is not one."""
        body, _, mac = token.lower().rpartition(".")
        parts = body.split(".")
        if len(parts) != count or not all(p.isascii() and p.isdigit() for p in parts):
            return None
        if not hmac.compare_digest(self._mac(purpose, body), mac):
            return None
        return tuple(int(p) for p in parts)
