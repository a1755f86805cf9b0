"""A case's evidence bundle (证据包): everything a court or the police need to see what was found
and done, in one ZIP file they can check without nonsite.

Inside: ``case.json`` (the case's whole record: the case, its audit trail, work orders,
notifications and commands to its logger, in China time), ``findings.json`` (the rules'
findings of its problem, from the findings table), ``data.json`` (the monitoring data of its
enterprise around its time, as the rules kept them), ``clues.json`` (the clues merged into it
or opening it), the attached files under ``attachments/`` as uploaded, ``说明.txt`` (how to
check it), and ``manifest.json``: each file's path, size and SHA-256. The export is written on
the case's trail with the manifest's own SHA-256, so a bundle handed over can be checked
against the record: every file against the manifest, the manifest against the trail.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import UTC, datetime, timedelta
from typing import IO, Any, Final

from sqlalchemy import Connection, select

from alerts.audit import case_record, china_time
from alerts.case_store import CaseStore
from alerts.cases import CaseBook
from alerts.clue_data import surroundings
from alerts.clues import case_clues
from alerts.evidence import case_attachments, file_chunks, manifest_bytes, manifest_digest
from alerts.workflow import HIDDEN_FROM_ENTERPRISE, Actor
from rules.store import findings

FORMAT: Final = "nonsite-evidence-bundle/1"
DATA_BEFORE = timedelta(hours=6)
DATA_AFTER = timedelta(hours=2)
DATA_LONGEST = timedelta(days=31)  # of a long case, the data of its last month
README: Final = """证据包说明

本文件由非现场监管预警平台（nonsite）导出，内含案件的执法全过程记录（case.json）、规则判定结果
（findings.json）、案件时段前后的在线监测与用电数据（data.json）、并入或引发本案的线索
（clues.json）以及上传的照片、视频、文书等附件（attachments/）。

核验方法：
1. manifest.json 列出每个文件的路径、大小和 SHA-256 摘要。用任意工具（如 sha256sum、
   certutil -hashfile 文件 SHA256）计算各文件的 SHA-256，应与 manifest.json 一致。
2. manifest.json 本身的 SHA-256 已记录在案件的执法全过程记录中（操作“导出证据包”），
   可向平台核对，以证明本证据包导出后未被改动。
"""


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=2, default=str).encode()


def write_bundle(
    conn: Connection,
    book: CaseBook,
    store: CaseStore,
    case_id: int,
    actor: Actor,
    now: datetime,
    out: IO[bytes],
) -> dict[str, Any]:
    """Write the case's bundle to ``out`` and record the export on its trail; the manifest."""
    case = book.get(conn, case_id)
    record = case_record(conn, book, case_id, commands=True)
    problem: list[dict[str, Any]] = []
    if case.rule not in HIDDEN_FROM_ENTERPRISE:  # a rule's case: the findings of its problem
        f = findings.c
        rows = conn.execute(
            select(findings)
            .where(
                f.enterprise_id == case.enterprise_id,
                f.source_id == case.source_id,
                f.rule == case.rule,
                f.window_end > case.first_seen,
                f.window_start <= case.last_seen,
            )
            .order_by(f.window_start, f.id)
        )
        problem = [china_time(dict(r._mapping)) for r in rows]
    data: dict[str, Any] = {}
    if case.enterprise_id:
        since = max(case.first_seen - DATA_BEFORE, case.last_seen - DATA_LONGEST)
        data = surroundings(conn, case.enterprise_id, since, case.last_seen + DATA_AFTER)
    clues = [c.to_json() for c in case_clues(conn, case_id)]
    files: list[dict[str, Any]] = []
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as bundle:

        def add(path: str, content: bytes, what: str) -> None:
            bundle.writestr(path, content)
            files.append(
                {
                    "path": path,
                    "size": len(content),
                    "sha256": hashlib.sha256(content).hexdigest(),
                    "what": what,
                }
            )

        add("case.json", _json(record), "执法全过程记录")
        add("findings.json", _json(problem), "规则判定结果")
        add("data.json", _json(data), "案件时段前后的监测数据")
        add("clues.json", _json(clues), "线索")
        add("说明.txt", README.encode(), "核验说明")
        for a in case_attachments(conn, case_id):
            path = f"attachments/{a.id:04d}-{a.filename}"
            sha = hashlib.sha256()
            size = 0
            # Photos and videos are compressed already: stored as they are, streamed.
            with bundle.open(zipfile.ZipInfo(path, _zip_time(a.at)), "w") as member:
                for chunk in file_chunks(conn, a.sha256):
                    member.write(chunk)
                    sha.update(chunk)
                    size += len(chunk)
            if sha.hexdigest() != a.sha256 or size != a.size:
                raise RuntimeError(f"attachment {a.id}: stored bytes do not match their digest")
            files.append(
                {
                    "path": path,
                    "size": size,
                    "sha256": a.sha256,
                    "what": f"附件：{a.kind}，{a.uploaded_by}（{a.role}）上传于 {a.at.isoformat()}",
                }
            )
        manifest = {
            "format": FORMAT,
            "case_id": case_id,
            "exported_at": now.astimezone(UTC).isoformat(),
            "exported_by": actor.name,
            "files": files,
        }
        bundle.writestr("manifest.json", manifest_bytes(manifest))
    digest = manifest_digest(manifest)
    changed = store.cas(conn, case, now, {})
    store.audit(
        conn,
        changed,
        actor,
        "export_bundle",
        case.state,
        now,
        f"导出证据包，清单摘要 SHA-256 {digest}",
        {"manifest_sha256": digest, "files": len(files)},
    )
    return manifest


def _zip_time(at: datetime) -> tuple[int, int, int, int, int, int]:
    t = at.astimezone(UTC)
    return (max(t.year, 1980), t.month, t.day, t.hour, t.minute, t.second)


def verify_bundle(file: IO[bytes]) -> tuple[str, list[str]]:
    """Check a bundle: every file of its manifest present, of its size and SHA-256, and no
    file beside them. The manifest's SHA-256 (to compare with the case's trail) and the
    problems found (none: it verifies)."""
    problems: list[str] = []
    with zipfile.ZipFile(file) as bundle:
        try:
            raw = bundle.read("manifest.json")
        except KeyError:
            return "", ["no manifest.json"]
        manifest = json.loads(raw)
        if manifest.get("format") != FORMAT:
            problems.append(f"unknown format {manifest.get('format')!r}")
        listed = {f["path"]: f for f in manifest.get("files", [])}
        for path, entry in listed.items():
            try:
                content = bundle.read(path)
            except KeyError:
                problems.append(f"{path}: missing")
                continue
            if len(content) != entry["size"]:
                problems.append(f"{path}: {len(content)} bytes, the manifest says {entry['size']}")
            if hashlib.sha256(content).hexdigest() != entry["sha256"]:
                problems.append(f"{path}: its SHA-256 differs from the manifest's")
        extra = set(bundle.namelist()) - set(listed) - {"manifest.json"}
        problems += [f"{path}: not in the manifest" for path in sorted(extra)]
    return hashlib.sha256(raw).hexdigest(), problems


__all__ = ["FORMAT", "verify_bundle", "write_bundle"]
