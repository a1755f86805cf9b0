"""Password hashing (stdlib scrypt) and the password policy."""

from __future__ import annotations

import base64

import pytest

from nonsite.auth import passwords
from nonsite.auth.passwords import (
    check_password_policy,
    hash_password,
    needs_rehash,
    verify_password,
)


def test_the_hash_is_salted_scrypt_with_its_parameters():
    stored = hash_password("correct horse")
    scheme, n, r, p, salt, key = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(base64.b64decode(salt)) == 16
    assert len(base64.b64decode(key)) == 32
    assert "correct horse" not in stored
    assert hash_password("correct horse") != stored  # a fresh salt each time


def test_verify_accepts_the_password_and_nothing_else():
    stored = hash_password("correct horse")
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsE", stored)
    assert not verify_password("", stored)
    assert not verify_password("correct horse ", stored)


def test_it_is_rfc_7914_scrypt():
    # RFC 7914 section 12: scrypt("password", "NaCl", N=1024, r=8, p=16); the first 32 bytes.
    key = bytes.fromhex("fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162")
    stored = (
        f"scrypt$1024$8$16${base64.b64encode(b'NaCl').decode()}${base64.b64encode(key).decode()}"
    )
    assert verify_password("password", stored)
    assert not verify_password("Password", stored)
    assert needs_rehash(stored)  # not today's parameters


def test_chinese_passwords_and_full_width_forms():
    stored = hash_password("环保监管2026")
    assert verify_password("环保监管2026", stored)
    # NFKC: the full-width digits an input method may produce are the same password
    assert verify_password("环保监管２０２６", stored)
    assert not verify_password("环保监管2025", stored)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain",
        "scrypt$16384$8$1$c2FsdA==",  # too few fields
        "bcrypt$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA==$" + "A" * 44,
        "scrypt$16383$8$1$c2FsdHNhbHRzYWx0c2FsdA==$" + "A" * 44,  # N not a power of two
        "scrypt$1$8$1$c2FsdHNhbHRzYWx0c2FsdA==$" + "A" * 44,
        f"scrypt${2**30}$8$1$c2FsdHNhbHRzYWx0c2FsdA==$" + "A" * 44,  # would take 128 GiB
        "scrypt$16384$0$1$c2FsdHNhbHRzYWx0c2FsdA==$" + "A" * 44,
        "scrypt$16384$8$1$not base64!$" + "A" * 44,
        "scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA==$c2hvcnQ=",  # key not 32 bytes
        "scrypt$16384$8$1$$" + "A" * 44,  # no salt
        "scrypt$x$8$1$c2FsdHNhbHRzYWx0c2FsdA==$" + "A" * 44,
    ],
)
def test_a_malformed_hash_verifies_nothing_and_needs_rehash(stored):
    assert not verify_password("anything", stored)
    assert needs_rehash(stored)


def test_needs_rehash_follows_the_parameters(monkeypatch):
    stored = hash_password("correct horse")
    assert not needs_rehash(stored)
    monkeypatch.setattr(passwords, "SCRYPT_N", 2**15)
    assert needs_rehash(stored)
    assert verify_password("correct horse", stored)  # old hashes still verify


def test_overlong_passwords_are_refused_and_never_verify():
    stored = hash_password("correct horse")
    assert not verify_password("x" * 2000, stored)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "at least 8 characters"),
        ("1234567", "at least 8 characters"),
        ("aaaaaaaaaaaa", "one character repeated"),
        ("wang.jiance", "not be the username"),
        ("WANG.JIANCE", "not be the username"),
        ("x" * 1025, "at most 1024"),
    ],
)
def test_the_policy_says_what_is_wrong(password, message):
    with pytest.raises(ValueError, match=message):
        check_password_policy(password, username="wang.jiance")


def test_the_policy_accepts_reasonable_passwords():
    for password in ("correct horse", "环保监管2026", "aaaaaaab", "xy" * 512):
        check_password_policy(password, username="wang.jiance")
