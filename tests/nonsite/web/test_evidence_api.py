"""The evidence API over real HTTP, on SQLite and PostgreSQL: a brigade's officer uploads a
photo and a recorder's video to a case, the file comes back as uploaded, what is not evidence
is refused by its bytes, uploads state their length and stay within their limit, and a case's
bundle verifies against the record of its export."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import httpx

from alerts.evidence_bundle import verify_bundle

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 40
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(3000)


def upload(client: httpx.Client, path: str, content: bytes, name: str, **form: str):
    return client.post(path, files={"file": (name, content, "image/jpeg")}, data=form)


def test_a_brigade_uploads_evidence_and_reads_it_back(site):
    case = site.cases["e1_alarm"]
    officer = site.login("enforcer1")
    r = upload(
        officer,
        f"/api/v1/cases/{case}/attachments",
        JPEG,
        "IMG_20261123_0142.jpg",
        note="排口冒黑烟",
    )
    assert r.status_code == 201, r.text
    photo = r.json()
    assert (photo["kind_name"], photo["type_name"], photo["size"]) == ("照片", "JPEG", len(JPEG))
    assert photo["sha256"] == hashlib.sha256(JPEG).hexdigest()
    video = upload(
        officer, f"/api/v1/cases/{case}/attachments", MP4, "REC0001.MP4", kind="recorder"
    )
    assert video.status_code == 201 and video.json()["kind_name"] == "执法记录仪"

    back = officer.get(photo["url"])
    assert back.status_code == 200 and back.content == JPEG
    assert back.headers["content-type"] == "image/jpeg"
    assert back.headers["etag"] == f'"{photo["sha256"]}"'
    assert "sandbox" in back.headers["content-security-policy"]
    listed = site.login("monitor").get(f"/api/v1/cases/{case}/attachments").json()
    assert [a["filename"] for a in listed] == ["IMG_20261123_0142.jpg", "REC0001.MP4"]
    # Its enterprise reads its case's evidence; another brigade and enterprise do not.
    assert site.login("ent1").get(photo["url"]).status_code == 200
    assert site.login("ent2").get(photo["url"]).status_code == 404
    assert site.login("enforcer2").get(f"/api/v1/cases/{case}/attachments").status_code == 404
    detail = site.login("enforcer1").get(f"/api/v1/cases/{case}").json()  # one client: log in again
    assert [e["action"] for e in detail["events"]].count("attach") == 2


def test_what_is_not_evidence_is_refused_whatever_it_is_called(site):
    case = site.cases["e1_alarm"]
    monitor = site.login("monitor")
    page = b"<html><script>alert(document.cookie)</script></html>"
    r = upload(monitor, f"/api/v1/cases/{case}/attachments", page, "photo.jpg")
    assert r.status_code == 415 and r.json()["code"] == "unsupported_type"
    empty = upload(monitor, f"/api/v1/cases/{case}/attachments", b"", "a.jpg")
    assert empty.status_code == 422 and empty.json()["code"] == "empty_file"
    # A chunked upload (no length stated) is refused before it is read.
    chunks = iter([b"--x\r\n", JPEG])
    r = monitor.post(
        f"/api/v1/cases/{case}/attachments",
        content=chunks,
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert r.status_code == 411 and r.json()["code"] == "length_required"


def test_an_upload_over_its_limit_is_refused(site_with):
    site = site_with(max_upload_bytes=4096, max_request_bytes=2048)
    monitor = site.login("monitor")
    path = f"/api/v1/cases/{site.cases['e1_alarm']}/attachments"
    r = upload(monitor, path, JPEG, "big.jpg")  # refused by its length, before it is read
    assert r.status_code == 413 and r.json()["code"] == "body_too_large"
    assert "max_upload_bytes" in r.json()["message"]
    assert upload(monitor, path, JPEG[:3000], "s.jpg").status_code == 201
    # Other requests keep the smaller body limit.
    note = monitor.post(
        f"/api/v1/cases/{site.cases['e1_alarm']}/actions/comment", json={"note": "长" * 1000}
    )
    assert note.status_code == 413 and "max_request_bytes" in note.json()["message"]


def test_a_township_adds_a_photo_to_its_clue(site):
    town = site.login("town1")
    clue = town.post(
        "/api/v1/clues",
        json={
            "source": "township",
            "occurred_at": "2026-11-23T17:40:00+00:00",
            "description": "河道发黑",
            "enterprise_id": "E1",
        },
    ).json()
    r = upload(town, f"/api/v1/clues/{clue['id']}/attachments", JPEG, "河道.jpg")
    assert r.status_code == 201, r.text
    assert town.get(r.json()["url"]).content == JPEG
    assert [a["id"] for a in town.get(f"/api/v1/clues/{clue['id']}/attachments").json()] == [
        r.json()["id"]
    ]
    hotline = site.login("hotline")
    assert (
        upload(hotline, f"/api/v1/clues/{clue['id']}/attachments", JPEG, "x.jpg").status_code == 404
    )
    assert hotline.get(r.json()["url"]).status_code == 404


def test_a_supervisor_exports_a_bundle_that_verifies_against_the_record(site):
    case = site.cases["e1_alarm"]
    upload(site.login("enforcer1"), f"/api/v1/cases/{case}/attachments", JPEG, "现场.jpg")
    supervisor = site.login("supervisor")
    r = supervisor.get(f"/api/v1/cases/{case}/bundle")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    digest, problems = verify_bundle(io.BytesIO(r.content))
    assert problems == [] and digest == r.headers["x-manifest-sha256"]
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        clues = json.loads(z.read("clues.json"))
        assert [c["external_ref"] for c in clues] == ["12345-0001"]
        assert z.read("attachments/0001-现场.jpg") == JPEG
    events = supervisor.get(f"/api/v1/cases/{case}").json()["events"]
    assert events[-1]["action"] == "export_bundle"
    assert events[-1]["refs"]["manifest_sha256"] == digest
    assert site.login("ent1").get(f"/api/v1/cases/{case}/bundle").status_code == 403
    assert site.login("enforcer2").get(f"/api/v1/cases/{case}/bundle").status_code == 404
