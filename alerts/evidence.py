"""Evidence (证据): photos, videos, documents and the enforcement recorder's files attached to a
case or a clue, kept append-only and content-addressed.

A file is stored once by its SHA-256 (``evidence_blobs``, its bytes in 1 MiB chunks in
``evidence_chunks``), whoever attaches it and however often; each attachment (``attachments``)
names the file, what it is, who attached it when, and to which case or clue, and is written on
the case's audit trail with its digest. Nothing here updates or deletes a row: a file attached
by mistake stays, and a later note says so. The files live in the service database, not on a
disk of their own: one place to back up (pgBackRest covers them), and every web node of a
cluster reads them.

A file's type is read from its first bytes, not taken from the client's word: a phone may send
any name and type. The types kept are those an inspection produces (JPEG, PNG, HEIC and WebP
photos; MP4/MOV and AVI video, which enforcement recorders write; PDF documents; MP3, M4A and
WAV recordings). Written by hand, why: six signatures of fixed bytes; a magic-number library
would add a dependency (libmagic, or a package of hundreds of signatures) for them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, Final

from sqlalchemy import Connection, insert, select

from alerts.case import Case, record_json
from alerts.case_store import CaseStore
from alerts.schema import attachments, evidence_blobs, evidence_chunks
from alerts.workflow import HIDDEN_FROM_ENTERPRISE, Actor, WorkflowError
from ingest.china_time import stored_utc

CHUNK: Final = 1 << 20  # bytes of a stored chunk: a file is read back a chunk at a time
KINDS: Final = {
    "photo": "照片",
    "video": "视频",
    "recorder": "执法记录仪",
    "document": "文书",
    "audio": "录音",
}
TYPE_NAMES: Final = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/heic": "HEIC",
    "image/webp": "WebP",
    "video/mp4": "MP4",
    "video/quicktime": "MOV",
    "video/x-msvideo": "AVI",
    "application/pdf": "PDF",
    "audio/mpeg": "MP3",
    "audio/mp4": "M4A",
    "audio/wav": "WAV",
}
_FTYP = {  # ISO base media file brands (bytes 8-11 after "ftyp")
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"mif1": "image/heic",
    b"qt  ": "video/quicktime",
    b"M4A ": "audio/mp4",
}


def sniff(head: bytes) -> str | None:
    """The content type of a file from its first bytes (at least 16), None if not kept."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head[4:8] == b"ftyp":
        return _FTYP.get(head[8:12], "video/mp4")
    if head.startswith(b"RIFF"):
        return {b"WEBP": "image/webp", b"AVI ": "video/x-msvideo", b"WAVE": "audio/wav"}.get(
            head[8:12]
        )
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    return None


def default_kind(content_type: str) -> str:
    if content_type.startswith("image/"):
        return "photo"
    if content_type.startswith("video/"):
        return "video"
    if content_type.startswith("audio/"):
        return "audio"
    return "document"


@dataclass(frozen=True)
class Attachment:
    id: int
    case_id: int | None
    clue_id: int | None
    sha256: str
    filename: str
    content_type: str
    size: int
    kind: str
    note: str
    uploaded_by: str
    role: str
    at: datetime

    def to_json(self) -> dict[str, Any]:
        out = record_json(self)
        out["kind_name"] = KINDS.get(self.kind, self.kind)
        out["type_name"] = TYPE_NAMES.get(self.content_type, self.content_type)
        return out


def digest_file(file: IO[bytes], max_bytes: int) -> tuple[str, int, str]:
    """The SHA-256, size and content type of ``file`` (read from its start, left at its
    end); WorkflowError when it is empty, too large or of a type not kept."""
    file.seek(0)
    head = file.read(64)
    if not head:
        raise WorkflowError("empty_file", "the file is empty")
    content_type = sniff(head)
    if content_type is None:
        raise WorkflowError(
            "unsupported_type",
            "kept are photos (JPEG, PNG, HEIC, WebP), videos (MP4, MOV, AVI), PDF documents "
            "and recordings (MP3, M4A, WAV)",
        )
    sha = hashlib.sha256(head)
    size = len(head)
    while chunk := file.read(CHUNK):
        sha.update(chunk)
        size += len(chunk)
        if size > max_bytes:
            raise WorkflowError("too_large", f"a file has at most {max_bytes} bytes")
    return sha.hexdigest(), size, content_type


def store_file(
    conn: Connection, file: IO[bytes], sha256: str, size: int, content_type: str, now: datetime
) -> None:
    """The file's bytes under its digest, unless they are there already (in this
    transaction)."""
    known = conn.execute(
        select(evidence_blobs.c.sha256).where(evidence_blobs.c.sha256 == sha256)
    ).first()
    if known is not None:
        return
    conn.execute(
        insert(evidence_blobs),
        {"sha256": sha256, "size": size, "content_type": content_type, "created_at": now},
    )
    file.seek(0)
    check = hashlib.sha256()
    n = 0
    while chunk := file.read(CHUNK):
        check.update(chunk)
        conn.execute(insert(evidence_chunks), {"sha256": sha256, "n": n, "data": chunk})
        n += 1
    if check.hexdigest() != sha256:  # the file changed between its digest and its storing
        raise WorkflowError("file_changed", "the file changed while it was stored; send it again")


def may_attach(actor: Actor, case: Case) -> None:
    """WorkflowError unless ``actor`` may attach evidence to ``case``: the monitoring centre
    and the supervisors to any, a brigade's officer to a case its brigade takes, an enterprise
    to its own (not a case a clue opened: it does not see those)."""
    if actor.role in ("monitor", "supervisor"):
        return
    if actor.role == "enforcer" and case.brigade == actor.brigade:
        return
    if (
        actor.role == "enterprise"
        and case.enterprise_id == actor.enterprise_id
        and case.rule not in HIDDEN_FROM_ENTERPRISE
    ):
        return
    raise WorkflowError("role_not_allowed", f"the {actor.role} role may not attach evidence here")


def attach(
    conn: Connection,
    store: CaseStore,
    now: datetime,
    actor: Actor,
    file: IO[bytes],
    filename: str,
    *,
    case_id: int | None,
    clue_id: int | None = None,
    kind: str | None = None,
    note: str = "",
    max_bytes: int,
) -> Attachment:
    """Attach ``file`` to a case (or to a clue, whose case is ``case_id``), written on the
    case's audit trail; WorkflowError when refused. The caller has checked that ``actor`` may
    act on the case or the clue."""
    if kind is not None and kind not in KINDS:
        raise WorkflowError("bad_kind", f"an attachment's kind is one of {', '.join(KINDS)}")
    if len(note) > 1000:
        raise WorkflowError("note_too_long", "an attachment's note has at most 1000 characters")
    sha256, size, content_type = digest_file(file, max_bytes)
    store_file(conn, file, sha256, size, content_type, now)
    name = _safe_name(filename) or f"{sha256[:12]}"
    kind = kind or default_kind(content_type)
    note = note.strip()
    values: dict[str, Any] = {
        "case_id": case_id,
        "clue_id": clue_id,
        "sha256": sha256,
        "filename": name,
        "content_type": content_type,
        "size": size,
        "kind": kind,
        "note": note,
        "uploaded_by": actor.name,
        "role": actor.role,
        "at": now,
    }
    result = conn.execute(insert(attachments), values)
    attachment_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    if case_id is not None:
        case = store.get(conn, case_id)
        changed = store.cas(conn, case, now, {})
        what = KINDS[kind]
        store.audit(
            conn,
            changed,
            actor,
            "attach",
            case.state,
            now,
            f"上传{what}：{name}" + (f"（{note}）" if note else ""),
            {
                "attachment": attachment_id,
                "sha256": sha256,
                "size": size,
                "filename": name,
                **({"clue": clue_id} if clue_id is not None else {}),
            },
        )
    return attachment_of(values | {"id": attachment_id})


def _safe_name(filename: str) -> str:
    """The file's own name, without any directory part or control characters (it is shown
    and used in a bundle's paths)."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable() and ch not in '<>:"|?*')
    return cleaned.strip(" .")[:200]


def attachment_of(m: Any) -> Attachment:
    return Attachment(
        id=int(m["id"]),
        case_id=m["case_id"],
        clue_id=m["clue_id"],
        sha256=m["sha256"],
        filename=m["filename"],
        content_type=m["content_type"],
        size=int(m["size"]),
        kind=m["kind"],
        note=m["note"],
        uploaded_by=m["uploaded_by"],
        role=m["role"],
        at=stored_utc(m["at"]),
    )


def case_attachments(conn: Connection, case_id: int) -> list[Attachment]:
    """A case's attachments and those of the clues merged into it, oldest first."""
    rows = conn.execute(
        select(attachments).where(attachments.c.case_id == case_id).order_by(attachments.c.id)
    )
    return [attachment_of(r._mapping) for r in rows]


def clue_attachments(conn: Connection, clue_id: int) -> list[Attachment]:
    rows = conn.execute(
        select(attachments).where(attachments.c.clue_id == clue_id).order_by(attachments.c.id)
    )
    return [attachment_of(r._mapping) for r in rows]


def get_attachment(conn: Connection, attachment_id: int) -> Attachment:
    row = conn.execute(select(attachments).where(attachments.c.id == attachment_id)).first()
    if row is None:
        raise WorkflowError("not_found", f"no attachment {attachment_id}")
    return attachment_of(row._mapping)


def file_chunks(conn: Connection, sha256: str) -> Iterator[bytes]:
    """The stored file's bytes, chunk by chunk."""
    q = (
        select(evidence_chunks.c.data)
        .where(evidence_chunks.c.sha256 == sha256)
        .order_by(evidence_chunks.c.n)
    )
    for row in conn.execute(q):
        yield bytes(row.data)


def manifest_digest(manifest: dict[str, Any]) -> str:
    """The SHA-256 of a bundle's manifest as written (sorted keys, UTF-8): what the case's
    trail records of an export, so a bundle can be checked against the record."""
    return hashlib.sha256(manifest_bytes(manifest)).hexdigest()


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=2).encode()


__all__ = [
    "KINDS",
    "Attachment",
    "attach",
    "case_attachments",
    "clue_attachments",
    "default_kind",
    "digest_file",
    "file_chunks",
    "get_attachment",
    "manifest_bytes",
    "manifest_digest",
    "may_attach",
    "sniff",
]
