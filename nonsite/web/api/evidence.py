"""Evidence (证据, alerts.evidence): files attached to a case or a clue (a phone's photo, the
enforcement recorder's video, a document), each file read back as uploaded, and a case's
evidence bundle (证据包, alerts.evidence_bundle) that a court or the police can verify.

Who attaches: the monitoring centre and the supervisors to any case, a brigade's officer to a
case its brigade takes, an enterprise to its own; to a clue, who may submit clues, in their
scope. Who reads a file: who may see its case (an enterprise not the files of clues merged
into its case), or its clue. A file that is not a photo, a video, a PDF or a recording is
refused (415) whatever its name says.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Path, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import Field
from sqlalchemy import Connection, select

from alerts.clues import get_clue, may_read_clue
from alerts.evidence import (
    KINDS,
    TYPE_NAMES,
    Attachment,
    case_attachments,
    clue_attachments,
    file_chunks,
    get_attachment,
)
from alerts.schema import cases
from alerts.workflow import WorkflowError
from nonsite.auth import User
from nonsite.db_health import through_outage
from nonsite.web.context import WebContext
from nonsite.web.models import ApiModel, ErrorOut
from nonsite.web.refusals import refusal_responses, refused
from nonsite.web.security import (
    ERRORS,
    Context,
    CurrentUser,
    grant,
    not_found,
    require_visible_case,
    visible_cases,
)

router = APIRouter(prefix="/api/v1", tags=["evidence"], responses=ERRORS)

Id = Annotated[int, Path(ge=1, le=2**62)]
Kind = Literal["photo", "video", "recorder", "document", "audio"]
REFUSED = refusal_responses(403, 404, 413, 415)
SPOOL = 8 * 1024 * 1024  # an upload in memory up to this, then in a temporary file


class AttachmentOut(ApiModel):
    id: int
    case_id: int | None
    clue_id: int | None
    sha256: str = Field(description="the file's SHA-256, hex: how it is stored and checked")
    filename: str
    content_type: str = Field(description="read from the file's first bytes")
    type_name: str
    size: int
    kind: str = Field(description=", ".join(f"{k} {v}" for k, v in KINDS.items()))
    kind_name: str
    note: str
    uploaded_by: str
    role: str
    at: datetime
    url: str = Field(description="where the file is read back")


def attachment_out(a: Attachment) -> AttachmentOut:
    return AttachmentOut(
        id=a.id,
        case_id=a.case_id,
        clue_id=a.clue_id,
        sha256=a.sha256,
        filename=a.filename,
        content_type=a.content_type,
        type_name=TYPE_NAMES.get(a.content_type, a.content_type),
        size=a.size,
        kind=a.kind,
        kind_name=KINDS.get(a.kind, a.kind),
        note=a.note,
        uploaded_by=a.uploaded_by,
        role=a.role,
        at=a.at,
        url=f"/api/v1/attachments/{a.id}/file",
    )


def _upload(
    ctx: WebContext,
    user: User,
    file: UploadFile,
    kind: Kind | None,
    note: str,
    *,
    case_id: int | None = None,
    clue_id: int | None = None,
) -> AttachmentOut:
    limit = ctx.config.service.max_upload_bytes
    # Spooled: a phone's photo stays in memory, a recorder's video goes to a temporary file.
    with tempfile.SpooledTemporaryFile(max_size=SPOOL) as spool:
        while chunk := file.file.read(1 << 20):
            spool.write(chunk)

        def work() -> Attachment:
            with ctx.db.begin() as conn:
                if case_id is not None:
                    require_visible_case(conn, user, case_id)
                return ctx.book.attach(
                    conn,
                    user.actor(),
                    spool,
                    file.filename or "",
                    case_id=case_id,
                    clue_id=clue_id,
                    kind=kind,
                    note=note,
                    max_bytes=limit,
                )

        try:
            attached = through_outage(work, ctx.config.database.retry_s)
        except WorkflowError as err:
            raise refused(err) from None
    return attachment_out(attached)


@router.post(
    "/cases/{case_id}/attachments",
    response_model=AttachmentOut,
    status_code=201,
    responses=REFUSED,
    summary="Attach evidence to a case (a photo, a video, a recorder's file, a document)",
)
def attach_to_case(
    case_id: Id,
    ctx: Context,
    user: Annotated[User, Depends(grant("evidence.attach"))],
    file: Annotated[UploadFile, File(description="the file, as taken")],
    kind: Annotated[Kind | None, Form(description="what it is; from its type if not given")] = None,
    note: Annotated[str, Form(max_length=1000)] = "",
) -> AttachmentOut:
    return _upload(ctx, user, file, kind, note, case_id=case_id)


@router.post(
    "/clues/{clue_id}/attachments",
    response_model=AttachmentOut,
    status_code=201,
    responses=REFUSED,
    summary="Attach evidence to a clue (and so to the case it went to)",
)
def attach_to_clue(
    clue_id: Id,
    ctx: Context,
    user: Annotated[User, Depends(grant("clues.submit"))],
    file: Annotated[UploadFile, File(description="the file, as taken")],
    kind: Annotated[Kind | None, Form()] = None,
    note: Annotated[str, Form(max_length=1000)] = "",
) -> AttachmentOut:
    return _upload(ctx, user, file, kind, note, clue_id=clue_id)


def _hidden_from(user: User, a: Attachment) -> bool:
    """An enterprise does not see the files of clues merged into its case."""
    return user.role == "enterprise" and a.clue_id is not None


@router.get(
    "/cases/{case_id}/attachments",
    response_model=list[AttachmentOut],
    responses={404: {"model": ErrorOut}},
    summary="A case's evidence, oldest first (with its clues')",
)
def read_case_attachments(case_id: Id, ctx: Context, user: CurrentUser) -> list[AttachmentOut]:
    with ctx.db.connect() as conn:
        require_visible_case(conn, user, case_id)
        found = case_attachments(conn, case_id)
    return [attachment_out(a) for a in found if not _hidden_from(user, a)]


@router.get(
    "/clues/{clue_id}/attachments",
    response_model=list[AttachmentOut],
    responses={404: {"model": ErrorOut}},
    summary="A clue's evidence, oldest first",
)
def read_clue_attachments(
    clue_id: Id, ctx: Context, user: Annotated[User, Depends(grant("clues"))]
) -> list[AttachmentOut]:
    with ctx.db.connect() as conn:
        try:
            clue = get_clue(conn, clue_id)
        except WorkflowError:
            raise not_found(f"clue {clue_id}") from None
        if not may_read_clue(user.actor(), clue):
            raise not_found(f"clue {clue_id}")
        return [attachment_out(a) for a in clue_attachments(conn, clue_id)]


def _may_read(conn: Connection, user: User, a: Attachment) -> bool:
    if _hidden_from(user, a):
        return False
    if a.case_id is not None and user.role not in ("township", "intake"):
        visible = conn.execute(
            select(cases.c.id).where(cases.c.id == a.case_id, visible_cases(user))
        ).first()
        if visible is not None:
            return True
    if a.clue_id is not None:
        return may_read_clue(user.actor(), get_clue(conn, a.clue_id))
    return False


@router.get(
    "/attachments/{attachment_id}/file",
    responses={404: {"model": ErrorOut}},
    summary="An attached file, as uploaded (its SHA-256 in the ETag)",
    response_class=StreamingResponse,
)
def read_file(attachment_id: Id, ctx: Context, user: CurrentUser) -> StreamingResponse:
    with ctx.db.connect() as conn:
        try:
            a = get_attachment(conn, attachment_id)
        except WorkflowError:
            raise not_found(f"attachment {attachment_id}") from None
        if not _may_read(conn, user, a):
            raise not_found(f"attachment {attachment_id}")

    def body() -> Iterator[bytes]:
        with ctx.db.connect() as conn:
            yield from file_chunks(conn, a.sha256)

    inline = a.content_type.startswith(("image/", "video/", "audio/"))
    disposition = "inline" if inline else "attachment"
    return StreamingResponse(
        body(),
        media_type=a.content_type,
        headers={
            "Content-Length": str(a.size),
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(a.filename)}",
            "ETag": f'"{a.sha256}"',
            "Cache-Control": "private, max-age=31536000, immutable",  # content-addressed
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


@router.get(
    "/cases/{case_id}/bundle",
    responses={404: {"model": ErrorOut}},
    summary="The case's evidence bundle (证据包): a ZIP with its record, findings, data, clues "
    "and files, and a manifest of their SHA-256; the export is written on the case's trail",
    response_class=StreamingResponse,
)
def export_bundle(
    case_id: Id, ctx: Context, user: Annotated[User, Depends(grant("cases.bundle"))]
) -> StreamingResponse:
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL)  # noqa: SIM115 - handed to the response

    def work() -> str:
        spool.seek(0)
        spool.truncate()
        with ctx.db.begin() as conn:
            require_visible_case(conn, user, case_id)
            return ctx.book.export_bundle(conn, case_id, user.actor(), spool)

    try:
        digest = through_outage(work, ctx.config.database.retry_s)
    except WorkflowError as err:
        spool.close()
        raise refused(err) from None
    except BaseException:
        spool.close()
        raise
    size = spool.tell()
    spool.seek(0)

    def body() -> Iterator[bytes]:
        try:
            while chunk := spool.read(1 << 20):
                yield chunk
        finally:
            spool.close()

    name = f"证据包-案件{case_id}.zip"
    return StreamingResponse(
        body(),
        media_type="application/zip",
        headers={
            "Content-Length": str(size),
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
            "X-Manifest-SHA256": digest,
        },
    )
