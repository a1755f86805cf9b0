"""Bearer secrets: what browser sessions and API tokens have in common.

Both are 256-bit random strings (``secrets.token_urlsafe(32)``) kept as their SHA-256: a slow
KDF protects guessable secrets (passwords, nonsite.auth.passwords), and there is nothing to
guess in 256 random bits, so a fast hash (which also lets a token be looked up by its hash)
loses nothing. Neither hashes nor secrets ever leave the user store except a new token,
returned once to its creator.

Their use is written down (``last_seen_at``, ``last_used_at``) at most once a minute, so reading
does not turn every request into a write.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Final

from ingest.china_time import stored_utc

TOUCH_INTERVAL: Final = timedelta(minutes=1)
_MAX_SECRET_LENGTH: Final = 200  # longer presented tokens are not ours: no lookup


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What is stored of a secret: its SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def lookup_digest(presented: str) -> str | None:
    """The digest to look a presented secret up by; None if it cannot be one of ours."""
    if not presented or len(presented) > _MAX_SECRET_LENGTH:
        return None
    return digest(presented)


def touch_due(last: datetime | None, now: datetime) -> bool:
    """Whether a use at ``now`` is to be written down, the last one written being ``last``."""
    return last is None or now - stored_utc(last) >= TOUCH_INTERVAL
