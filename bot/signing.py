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
