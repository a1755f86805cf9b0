"""Evidence on SQLite and PostgreSQL: files attached to cases and clues, stored once by their
SHA-256, typed by their bytes, on the case's trail; a case's bundle that verifies, and fails to
once anything in it is changed."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile

import pytest
import sqlalchemy as sa

from alerts.cases import CaseBook
from alerts.evidence import CHUNK, file_chunks, sniff
from alerts.evidence_bundle import verify_bundle
from alerts.notify import Notifier
from alerts.schema import attachments, evidence_blobs, evidence_chunks
from alerts.workflow import Actor, WorkflowError
from rules.store import record_findings
from tests.alerts.conftest import ROUTES, finding
from tests.alerts.test_clues import POLICY, TOWNSHIP, complaint, keep_night, take
from tests.alerts.test_workflow import ENFORCER_B1, ENFORCER_B2, MONITOR, SUPERVISOR, act, apply

E1_USER = Actor("企业环保员", "enterprise", enterprise_id="E1")
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8
PDF = b"%PDF-1.7\n" + b"1 0 obj << >> endobj\n" * 50
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + os.urandom(CHUNK + 12345)


@pytest.fixture
def book(clock):
    """The case book of enterprises with locations and regions (tests/alerts/test_clues.py)."""
    return CaseBook(POLICY, Notifier(ROUTES, POLICY), clock=clock)


def attach(store, book, actor, content, name, **kw):
    with store.begin() as conn:
        return book.attach(conn, actor, io.BytesIO(content), name, max_bytes=10 * CHUNK, **kw)


def refused_with(store, book, actor, content, name, code, **kw):
    with pytest.raises(WorkflowError) as err:
        attach(store, book, actor, content, name, **kw)
    assert err.value.code == code, str(err.value)


def test_files_are_typed_by_their_bytes():
    assert sniff(JPEG) == "image/jpeg"
    assert sniff(PDF) == "application/pdf"
    assert sniff(MP4) == "video/mp4"
    assert sniff(b"\x00\x00\x00\x18ftypqt  \x00\x00") == "video/quicktime"
    assert sniff(b"\x00\x00\x00\x18ftypheic\x00\x00") == "image/heic"
    assert sniff(b"RIFF\x00\x00\x00\x00AVI LIST") == "video/x-msvideo"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff(b"ID3\x04\x00\x00\x00\x00\x00\x00") == "audio/mpeg"
    assert sniff(b"<html><script>alert(1)</script>") is None
    assert sniff(b"MZ\x90\x00\x03\x00\x00\x00") is None  # a program named photo.jpg


def test_evidence_is_kept_once_by_its_digest_and_written_on_the_trail(store, book, clock):
    [cid] = apply(store, book, finding()).opened
    act(store, book, cid, "dispatch", SUPERVISOR)
    photo = attach(store, book, ENFORCER_B1, JPEG, "IMG_0042.jpg", case_id=cid, note="排口黑烟")
    assert (photo.kind, photo.content_type, photo.size) == ("photo", "image/jpeg", len(JPEG))
    assert photo.sha256 == hashlib.sha256(JPEG).hexdigest()
    video = attach(
        store, book, ENFORCER_B1, MP4, "../../REC_0001.MP4", case_id=cid, kind="recorder"
    )
    assert video.filename == "REC_0001.MP4" and video.kind == "recorder"
    again = attach(store, book, MONITOR, JPEG, "同一张.jpg", case_id=cid)
    assert again.sha256 == photo.sha256 and again.id != photo.id
    with store.connect() as conn:
        blobs = conn.execute(sa.select(sa.func.count()).select_from(evidence_blobs)).scalar_one()
        chunks = conn.execute(
            sa.select(sa.func.count())
            .select_from(evidence_chunks)
            .where(evidence_chunks.c.sha256 == video.sha256)
        ).scalar_one()
        assert blobs == 2 and chunks == 2  # the photo once; the video in two chunks
        assert b"".join(file_chunks(conn, video.sha256)) == MP4
        events = book.events(conn, cid)
    attached = [e for e in events if e["action"] == "attach"]
    assert [e["refs"]["sha256"] for e in attached] == [photo.sha256, video.sha256, photo.sha256]
    assert attached[0]["note"] == "上传照片：IMG_0042.jpg（排口黑烟）"
    assert attached[1]["actor"] == "张执法"


def test_what_is_refused(store, book, clock):
    [cid] = apply(store, book, finding()).opened
    refused_with(store, book, MONITOR, b"", "a.jpg", "empty_file", case_id=cid)
    refused_with(
        store, book, MONITOR, b"MZ\x90\x00" * 10, "photo.jpg", "unsupported_type", case_id=cid
    )
    with store.begin() as conn, pytest.raises(WorkflowError) as err:
        book.attach(conn, MONITOR, io.BytesIO(MP4), "v.mp4", case_id=cid, max_bytes=CHUNK)
    assert err.value.code == "too_large"
    refused_with(store, book, MONITOR, JPEG, "a.jpg", "bad_kind", case_id=cid, kind="selfie")
    # Not dispatched to B2; E1 to a case a clue opened; a township to a case.
    refused_with(store, book, ENFORCER_B2, JPEG, "a.jpg", "role_not_allowed", case_id=cid)
    refused_with(store, book, TOWNSHIP, JPEG, "a.jpg", "role_not_allowed", case_id=cid)
    clock.advance(hours=3)
    clue = take(store, book, complaint(factor="w01018"))
    assert clue.outcome == "opened"
    refused_with(store, book, E1_USER, PDF, "说明.pdf", "role_not_allowed", case_id=clue.case_id)
    assert attach(store, book, E1_USER, PDF, "说明.pdf", case_id=cid).kind == "document"
    with store.connect() as conn:
        kept = conn.execute(sa.select(sa.func.count()).select_from(attachments)).scalar_one()
    assert kept == 1  # nothing refused left a row


def test_a_township_attaches_a_photo_to_its_clue_and_the_case_records_it(store, book, clock):
    clock.advance(hours=3)
    clue = take(store, book, complaint(source="township", factor="w01018"), TOWNSHIP)
    photo = attach(store, book, TOWNSHIP, JPEG, "河道.jpg", clue_id=clue.id)
    assert (photo.clue_id, photo.case_id) == (clue.id, clue.case_id)
    other = Actor("新河镇环保办", "township", area="新河镇")
    refused_with(store, book, other, JPEG, "x.jpg", "not_found", clue_id=clue.id)
    with store.connect() as conn:
        [event] = [e for e in book.events(conn, clue.case_id) if e["action"] == "attach"]
    assert event["refs"]["clue"] == clue.id and event["role"] == "township"


def test_a_cases_bundle_verifies_and_any_change_to_it_is_found(store, book, clock):
    keep_night(store)
    with store.begin() as conn:
        record_findings(conn, [finding(hour=0), finding(hour=1)])
    [cid] = apply(store, book, finding(hour=0)).opened
    apply(store, book, finding(hour=1))
    clock.advance(hours=3)
    take(store, book, complaint(external_ref="12345-1"))
    act(store, book, cid, "dispatch", SUPERVISOR)
    attach(store, book, ENFORCER_B1, JPEG, "现场.jpg", case_id=cid)
    attach(store, book, ENFORCER_B1, MP4, "REC_0001.MP4", case_id=cid, kind="recorder")
    out = io.BytesIO()
    with store.begin() as conn:
        digest = book.export_bundle(conn, cid, SUPERVISOR, out)
    found, problems = verify_bundle(io.BytesIO(out.getvalue()))
    assert (found, problems) == (digest, [])
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as z:
        names = set(z.namelist())
        record = json.loads(z.read("case.json"))
        data = json.loads(z.read("data.json"))
        problem = json.loads(z.read("findings.json"))
        assert z.read("attachments/0002-REC_0001.MP4") == MP4
    assert {"case.json", "findings.json", "data.json", "clues.json", "说明.txt"} <= names
    assert record["case"]["id"] == cid and record["case"]["opened_at"].endswith("+08:00")
    assert [f["rule"] for f in problem] == ["A3", "A3"]
    assert data["outlets"]["DA001"]["a21026"]
    with store.connect() as conn:
        last = book.events(conn, cid)[-1]
    assert (last["action"], last["refs"]["manifest_sha256"]) == ("export_bundle", digest)

    # A photo swapped in the bundle, a file added: both found.
    tampered = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as z, zipfile.ZipFile(tampered, "w") as w:
        for name in z.namelist():
            content = z.read(name)
            w.writestr(
                name, content.replace(b"JFIF", b"JFIX") if name.endswith(".jpg") else content
            )
        w.writestr("extra.txt", b"added")
    _, problems = verify_bundle(io.BytesIO(tampered.getvalue()))
    assert problems == [
        "attachments/0001-现场.jpg: its SHA-256 differs from the manifest's",
        "extra.txt: not in the manifest",
    ]
