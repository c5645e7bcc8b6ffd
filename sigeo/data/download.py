"""Fetch a raw data file over HTTP(S), verify its SHA-256, and only then publish it."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import urllib.request
from pathlib import Path

from ..errors import DataError
from ..io import atomic_path

log = logging.getLogger(__name__)


def download(url: str, sha256: str, dest: str | os.PathLike, timeout_s: float = 60.0) -> Path:
    """Download ``url`` to ``dest``; a checksum mismatch raises and leaves no file behind."""
    if not url.startswith(("http://", "https://")):
        raise DataError(f"{url}: only http:// and https:// URLs can be downloaded")
    digest = hashlib.sha256()
    dest = Path(dest)
    with atomic_path(dest) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response, open(tmp, "wb") as out:
                length = response.headers.get("Content-Length")
                while block := response.read(1 << 20):
                    digest.update(block)
                    out.write(block)
        except (OSError, http.client.HTTPException) as exc:  # IncompleteRead is not an OSError
            raise DataError(f"{url}: download failed: {exc}") from exc
        received = tmp.stat().st_size
        if length is not None and received != int(length):  # http.client ends a short body silently
            raise DataError(f"{url}: download truncated: {received} of {length} bytes")
        if digest.hexdigest() != sha256.lower():
            raise DataError(f"{url}: sha256 {digest.hexdigest()} does not match the configured {sha256}")
    log.info("downloaded %s -> %s (%d bytes)", url, dest, dest.stat().st_size)
    return dest
