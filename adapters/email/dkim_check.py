"""Pinwall verifying a mail's DKIM signature itself (dkimpy), where the receiving MTA's
Authentication-Results say nothing: the signature must verify and its d= be the From
address's domain (or a domain above it), and it must cover the whole mail as it says
who it is for: To (and Cc, when there is one) among its signed headers (h=), no body
length (l=). Otherwise a mail signed for someone else, re-sent to a Pinwall address with
a To of its own, or with text added below the signed length, would pass as the sender's."""

from __future__ import annotations

import logging
from collections.abc import Callable

import dkim

log = logging.getLogger(__name__)

# (name, timeout) -> the TXT record; dkimpy's own resolver (dnspython) when None.
DnsLookup = Callable[..., bytes | None]


def dkim_checker(dnsfunc: DnsLookup | None = None) -> Callable[[bytes, str], bool]:
    def check(raw: bytes, sender: str) -> bool:
        verifier = dkim.DKIM(raw)
        try:
            ok = verifier.verify(dnsfunc=dnsfunc) if dnsfunc else verifier.verify()
        except dkim.DKIMException as exc:
            log.info("mail: DKIM of %s did not verify (%s)", sender, exc)
            return False
        if not ok or verifier.domain is None:
            return False
        signed = set(verifier.include_headers)
        present = {name.lower() for name, _ in verifier.headers}
        if b"to" not in signed or (b"cc" in present and b"cc" not in signed):
            log.warning("mail: DKIM of %s does not sign To/Cc: not believed", sender)
            return False
        if b"l" in verifier.signature_fields:
            log.warning("mail: DKIM of %s signs only part of the body (l=): not believed", sender)
            return False
        signer = verifier.domain.decode("ascii", "replace").lower().rstrip(".")
        domain = sender.rpartition("@")[2].lower().rstrip(".")
        return domain == signer or domain.endswith("." + signer)

    return check
