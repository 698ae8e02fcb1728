"""The Content-Disposition header of download URLs: both blob stores sign it in, the local gateway serves it."""

from __future__ import annotations

from urllib.parse import quote


def content_disposition(download_name: str) -> str:
    """`attachment` with an ASCII fallback and the exact UTF-8 name (RFC 6266 / RFC 5987)."""
    printable = "".join(ch for ch in download_name if ch.isprintable()) or "download"
    fallback = "".join(ch if ch.isascii() and ch not in '"\\' else "_" for ch in printable)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(printable, safe='')}"
