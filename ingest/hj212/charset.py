"""The text encoding of data segments: UTF-8 by the standard, GBK from many Chinese loggers.

HJ 212 says the packet is ASCII except Chinese text, which is UTF-8, but many data loggers
send GBK (or GB 18030) in CP text fields: a 现场端信息 log line, an enterprise name in a
vendor's CN 3020 packet. Framing, the length (bytes) and the CRC (over bytes) do not depend on
the encoding; only the segment's text does. The encoding is configured per data logger, so it
is chosen by the MN, which is read from the segment's bytes first (the MN is ASCII, and the
bytes ``;`` and ``=`` never occur inside a GBK or GB 18030 character).
"""

from __future__ import annotations

import codecs

DEFAULT_ENCODING = "utf-8"
SUGGESTED = ("utf-8", "gbk", "gb18030")
_ASCII = bytes(range(128))
_ASCII_TEXT = _ASCII.decode("ascii")


def text_encoding(name: str) -> str:
    """The codec's canonical name (``GBK`` → ``gbk``, ``utf8`` → ``utf-8``) when ``name`` is a
    text encoding that keeps ASCII as ASCII, as the packet's framing and field names need.
    Raises ValueError with the choices otherwise."""
    choices = ", ".join(SUGGESTED)
    try:
        canonical = codecs.lookup(name).name
    except LookupError:
        raise ValueError(f"unknown encoding {name!r}; use one of {choices}") from None
    try:  # a bytes-to-bytes codec (base64, zlib) raises LookupError here
        same = _ASCII.decode(canonical) == _ASCII_TEXT and _ASCII_TEXT.encode(canonical) == _ASCII
    except (LookupError, UnicodeError):
        same = False
    if not same:
        raise ValueError(
            f"{name!r} is not a text encoding that keeps ASCII as ASCII (HJ 212 framing and "
            f"field names are ASCII); use one of {choices}"
        )
    return canonical


def header_mn(segment: bytes) -> str | None:
    """The MN in a data segment's header, read from the bytes; None if there is none or it is
    not ASCII. Like the parser, the last ``MN=`` of the header (before ``CP=&&``) counts."""
    cp_at = segment.find(b"CP=&&")
    head = segment if cp_at < 0 else segment[:cp_at]
    found = None
    for entry in head.split(b";"):
        if entry.startswith(b"MN="):
            found = entry[3:]
    if found is None or not found.isascii():
        return None
    return found.decode("ascii")


def readable_as(data: bytes) -> str | None:
    """A Chinese encoding in which ``data`` (not valid in its configured one) is valid text:
    ``gbk``, else ``gb18030``; None when neither fits."""
    for encoding in ("gbk", "gb18030"):
        try:
            data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return encoding
    return None
