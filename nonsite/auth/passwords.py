"""Password hashing and the password policy.

Hashes use ``hashlib.scrypt`` from the standard library: scrypt (RFC 7914) is a memory-hard
key-derivation function, so guessing passwords from a stolen ``users`` table costs memory as
well as time, which takes away most of the advantage of GPUs and ASICs. It is what OpenSSL
provides under every Python we support, so there is no extra dependency (bcrypt or argon2
bindings would be a compiled package to build, pin and audit for the same protection).

Parameters: N = 2**14, r = 8, p = 1 (16 MiB, about 50 ms per hash), a 16-byte random salt and a
32-byte key, encoded with the parameters so they can be raised later without breaking stored
hashes (``needs_rehash`` says when a stored hash was made with other parameters; the user
store rehashes it at the next successful login)::

    scrypt$<N>$<r>$<p>$<salt, base64>$<key, base64>

``SCRYPT_N``, ``SCRYPT_R`` and ``SCRYPT_P`` are read at each call. Production code never changes
them; a test may lower ``SCRYPT_N`` (monkeypatch) to check that ``needs_rehash`` notices.

Passwords are normalised to Unicode NFKC before hashing (as NIST SP 800-63B recommends), so the
same password typed through different input methods (full-width and half-width forms) matches.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import unicodedata
from typing import Final

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES: Final = 16
KEY_BYTES: Final = 32
SCHEME: Final = "scrypt"

MIN_PASSWORD_LENGTH: Final = 8
MAX_PASSWORD_LENGTH: Final = 1024  # a bound on the work one login attempt can ask for

# The largest parameters a stored hash may name before it is treated as malformed (a
# corrupted or planted value must not make a login allocate gigabytes).
_MAX_N: Final = 2**20
_MAX_R: Final = 32
_MAX_P: Final = 16


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    secret = unicodedata.normalize("NFKC", password).encode("utf-8")
    # scrypt needs 128 * r * (N + p) bytes; OpenSSL's default ceiling (32 MiB) is too low for
    # larger N, so allow what the parameters need with some room.
    maxmem = 128 * r * (n + p + 2) + 1024 * 1024
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, dklen=KEY_BYTES, maxmem=maxmem)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password`` in the encoded form above."""
    n, r, p = SCRYPT_N, SCRYPT_R, SCRYPT_P
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(password, salt, n, r, p)
    return f"{SCHEME}${n}${r}${p}${_b64(salt)}${_b64(key)}"


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return None
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        key = base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error):
        return None
    if not (1 < n <= _MAX_N and n & (n - 1) == 0 and 0 < r <= _MAX_R and 0 < p <= _MAX_P):
        return None
    if not salt or len(key) != KEY_BYTES:
        return None
    return n, r, p, salt, key


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches the stored hash; False for a malformed one.

    The comparison takes the same time wherever the keys differ (``hmac.compare_digest``).
    """
    parsed = _parse(stored)
    if parsed is None or len(password) > MAX_PASSWORD_LENGTH:
        return False
    n, r, p, salt, key = parsed
    try:
        candidate = _scrypt(password, salt, n, r, p)
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(candidate, key)


def needs_rehash(stored: str) -> bool:
    """Whether the stored hash is malformed or was made with other parameters than today's."""
    parsed = _parse(stored)
    if parsed is None:
        return True
    n, r, p, salt, _key = parsed
    return (n, r, p, len(salt)) != (SCRYPT_N, SCRYPT_R, SCRYPT_P, SALT_BYTES)


def check_password_policy(password: str, *, username: str = "") -> None:
    """Refuse a weak password with a ``ValueError`` that says why.

    At least 8 characters, not one character repeated, not the username (in any case), at most
    1024 characters.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")
    if len(set(password)) == 1:
        raise ValueError("the password must not be one character repeated")
    if username and password.casefold() == username.casefold():
        raise ValueError("the password must not be the username")
