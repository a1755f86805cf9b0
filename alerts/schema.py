"""The alert store's tables: cases, their audit trail, work orders, silences, suppressed
findings and the notification outbox.

One open case per (enterprise, source, rule) is enforced by the database, not only by the
code: ``cases.open_key`` holds that triple while the case is open and NULL once it is closed
or resolved, under a unique index (NULLs do not collide in SQLite or PostgreSQL). The audit
trail (``case_events``) is append-only: the code never updates or deletes its rows.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from ingest.sqltypes import UTCDateTime

metadata = MetaData()

# Integer keys that are 64-bit on PostgreSQL and still the rowid alias on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")

cases = Table(
    "cases",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("open_key", String(240), nullable=True, unique=True),
    Column("enterprise_id", String(64), nullable=False, index=True),
    Column("source_id", String(64), nullable=False),
    Column("rule", String(16), nullable=False, index=True),
    Column("factor", String(16), nullable=True),
    Column("tier", String(8), nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("condition", String(8), nullable=False),  # active | cleared
    Column("positive_list", Boolean, nullable=False),
    Column("opened_at", UTCDateTime(), nullable=False, index=True),
    Column("first_seen", UTCDateTime(), nullable=False),  # event time
    Column("last_seen", UTCDateTime(), nullable=False),
    Column("count", Integer, nullable=False),
    Column("value", Float, nullable=True),  # the latest finding's
    Column("peak_value", Float, nullable=True),
    Column("peak_multiple", Float, nullable=True),
    Column("limit_value", Float, nullable=True),
    Column("unit", String(16), nullable=False),
    Column("evidence", Text, nullable=False),  # JSON: the bounded trail of findings
    Column("recurrence", Integer, nullable=False),
    Column("flaps", Integer, nullable=False),
    Column("escalation", String(200), nullable=True),  # why the tier was raised
    Column("explain_due", UTCDateTime(), nullable=True),
    Column("feedback_due", UTCDateTime(), nullable=True),
    Column("overdue", String(16), nullable=True),  # explanation | feedback, once notified
    Column("brigade", String(64), nullable=True),
    Column("assignee", String(64), nullable=True),  # who took it (认领); cleared on dispatch
    Column("disposition", String(32), nullable=True),
    Column("case_number", String(64), nullable=True),
    Column("closed_at", UTCDateTime(), nullable=True),
    Column("recheck_until", UTCDateTime(), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("version", Integer, nullable=False),  # compare-and-set: concurrent actions conflict
)
# The latest case of a problem, open or not (recurrence and flap checks, per finding).
Index("ix_cases_problem", cases.c.enterprise_id, cases.c.source_id, cases.c.rule, cases.c.id)

case_events = Table(
    "case_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("case_id", Id, ForeignKey("cases.id"), nullable=False, index=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("action", String(32), nullable=False),
    Column("from_state", String(16), nullable=True),
    Column("to_state", String(16), nullable=True),
    Column("note", Text, nullable=False),
    Column("refs", Text, nullable=False),  # JSON: finding ids, work order, marking, case number
)

# A person's action taken once per request: the key its client (or the API, for its own
# retries) gave it, written in the action's transaction. A request retried after its reply was
# lost (the database failed over during the commit) finds its action done, not done twice.
action_requests = Table(
    "action_requests",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("case_id", Id, ForeignKey("cases.id"), nullable=False),
    Column("action", String(32), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
)

work_orders = Table(
    "work_orders",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("case_id", Id, ForeignKey("cases.id"), nullable=False, index=True),
    Column("brigade", String(64), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # on_site | non_site_check
    Column("state", String(16), nullable=False),  # open | on_site | reported | closed
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("due_at", UTCDateTime(), nullable=False),
    Column("outcome", String(32), nullable=True),
    Column("case_number", String(64), nullable=True),
    Column("reported_at", UTCDateTime(), nullable=True),
)

silences = Table(
    "silences",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("enterprise_id", String(64), nullable=True),
    Column("source_id", String(64), nullable=True),
    Column("rule", String(16), nullable=True),
    Column("reason", Text, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("starts_at", UTCDateTime(), nullable=False),
    Column("ends_at", UTCDateTime(), nullable=False, index=True),
    Column("created_at", UTCDateTime(), nullable=False),
)

# What people changed in a silence after adding it (edited, ended early): append-only, like
# the cases' trail. The addition itself is the silence's own created_by / created_at.
silence_events = Table(
    "silence_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("silence_id", Id, ForeignKey("silences.id"), nullable=False, index=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("action", String(8), nullable=False),  # edit | end
    Column("changes", Text, nullable=False),  # JSON: field → [before, after]
)

suppressed = Table(
    "suppressed_findings",
    metadata,
    Column("finding_id", String(200), primary_key=True),
    Column("enterprise_id", String(64), nullable=False, index=True),
    Column("source_id", String(64), nullable=False),
    Column("rule", String(16), nullable=False),
    Column("reason", String(16), nullable=False),  # silence | inhibited
    Column("ref", String(64), nullable=False),  # the silence's or the inhibiting case's id
    Column("at", UTCDateTime(), nullable=False),
)

# Clues from outside the monitoring data (alerts.clues): each merged into a case or opening
# one. ``match`` says how it was located and matched; ``surroundings`` holds the monitoring
# data around its time as they were when it came in. A sending system's own reference is
# unique per source (NULLs do not collide): a clue sent twice is one clue.
clues = Table(
    "clues",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source", String(16), nullable=False),
    Column("external_ref", String(100), nullable=True),
    Column("received_at", UTCDateTime(), nullable=False, index=True),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("enterprise_id", String(64), nullable=True, index=True),
    Column("located", String(12), nullable=False),  # given | coordinates | none
    Column("longitude", Float, nullable=True),
    Column("latitude", Float, nullable=True),
    Column("address", Text, nullable=False),
    Column("area", String(64), nullable=True, index=True),  # the township (镇街)
    Column("factor", String(16), nullable=True),
    Column("description", Text, nullable=False),
    Column("submitted_by", String(64), nullable=False),
    Column("submitter_role", String(16), nullable=False),
    Column("case_id", Id, ForeignKey("cases.id"), nullable=True, index=True),
    Column("outcome", String(8), nullable=False),  # merged | opened
    Column("match", Text, nullable=False),  # JSON
    Column("surroundings", Text, nullable=False),  # JSON
)
Index("ux_clues_source_ref", clues.c.source, clues.c.external_ref, unique=True)

# Evidence (alerts.evidence): each file once by its SHA-256, its bytes in chunks; each
# attachment of a file to a case or a clue. Append-only: nothing is updated or deleted.
evidence_blobs = Table(
    "evidence_blobs",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("content_type", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)
evidence_chunks = Table(
    "evidence_chunks",
    metadata,
    Column("sha256", String(64), ForeignKey("evidence_blobs.sha256"), primary_key=True),
    Column("n", Integer, primary_key=True, autoincrement=False),
    Column("data", LargeBinary, nullable=False),
)
attachments = Table(
    "attachments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("case_id", Id, ForeignKey("cases.id"), nullable=True, index=True),
    Column("clue_id", Id, ForeignKey("clues.id"), nullable=True, index=True),
    Column("sha256", String(64), ForeignKey("evidence_blobs.sha256"), nullable=False),
    Column("filename", String(200), nullable=False),
    Column("content_type", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),  # photo | video | recorder | document | audio
    Column("note", Text, nullable=False),
    Column("uploaded_by", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
)

# Rectification (整改) to 销号 (alerts.rectification): one row per round ordered on a case.
rectifications = Table(
    "rectifications",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("case_id", Id, ForeignKey("cases.id"), nullable=False, index=True),
    Column("round", Integer, nullable=False),
    Column(
        "state", String(12), nullable=False, index=True
    ),  # ordered reported verified failed closed
    Column("requirement", Text, nullable=False),
    Column("ordered_by", String(64), nullable=False),
    Column("ordered_at", UTCDateTime(), nullable=False),
    Column("due_at", UTCDateTime(), nullable=False, index=True),
    Column("overdue_at", UTCDateTime(), nullable=True),
    Column("reported_at", UTCDateTime(), nullable=True),
    Column("report", Text, nullable=False),
    Column("verified_at", UTCDateTime(), nullable=True),
    Column("verified_by", String(64), nullable=True),
    Column("method", String(8), nullable=True),  # on_site | off_site
    Column("outcome", String(8), nullable=True),  # passed | failed
    Column("verify_note", Text, nullable=False),
    Column("closed_at", UTCDateTime(), nullable=True),
    Column("closed_by", String(64), nullable=True),
)

# Active 回头看 (alerts.rechecks): a re-check scheduled after closing or 销号.
rechecks = Table(
    "rechecks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("case_id", Id, ForeignKey("cases.id"), nullable=False, index=True),
    Column("reason", String(24), nullable=False),  # closed | rectification_closed
    Column("method", String(8), nullable=False),  # off_site | on_site
    Column("brigade", String(64), nullable=True),
    Column("scheduled_at", UTCDateTime(), nullable=False),
    Column("due_at", UTCDateTime(), nullable=False, index=True),
    Column("state", String(12), nullable=False, index=True),  # scheduled | passed | failed
    Column("decided_at", UTCDateTime(), nullable=True),
    Column("decided_by", String(64), nullable=True),
    Column("note", Text, nullable=False),
)

# Decisions (处理决定) and their legal review (alerts.decisions).
decisions = Table(
    "decisions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("case_id", Id, ForeignKey("cases.id"), nullable=False, index=True),
    Column("type", String(20), nullable=False),
    Column("legal_ground", Text, nullable=False),
    Column("amount_yuan", Float, nullable=True),
    Column("department", String(100), nullable=False),
    Column("document_number", String(100), nullable=False),
    Column("decided_on", Date, nullable=True),
    Column("note", Text, nullable=False),
    Column("major", Boolean, nullable=False),
    Column("state", String(16), nullable=False, index=True),  # pending_review effective rejected
    Column("proposed_by", String(64), nullable=False),
    Column("proposed_at", UTCDateTime(), nullable=False),
    Column("reviewed_by", String(64), nullable=True),
    Column("reviewed_at", UTCDateTime(), nullable=True),
    Column("review_note", Text, nullable=False),
)

# Risk ratings (alerts.risk): one per enterprise and China day, the latest of that day (a
# recomputation on demand replaces the day's); each keeps its inputs and weights as JSON, so
# that it can be made again from them.
risk_ratings = Table(
    "risk_ratings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("enterprise_id", String(64), nullable=False),
    Column("day", Date, nullable=False, index=True),
    Column("score", Float, nullable=False),
    Column("color", String(8), nullable=False),
    Column("computed_at", UTCDateTime(), nullable=False),
    Column("trigger", String(12), nullable=False),  # daily | on_demand
    Column("rating", Text, nullable=False),  # JSON: alerts.risk.rating_json
)
Index("ux_risk_ratings_day", risk_ratings.c.enterprise_id, risk_ratings.c.day, unique=True)

# The positive list's changes (alerts.positive_list): proposed (by the system or a supervisor)
# and decided once; membership is the last approved change, else the configuration's.
positive_list_changes = Table(
    "positive_list_changes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("enterprise_id", String(64), nullable=False, index=True),
    Column("change", String(8), nullable=False),  # enter | exit
    Column("reason", Text, nullable=False),
    Column("criteria", Text, nullable=False),  # JSON: what the check found
    Column("proposed_by", String(64), nullable=False),
    Column("proposed_at", UTCDateTime(), nullable=False),
    Column("state", String(12), nullable=False, index=True),  # proposed | approved | rejected
    Column("decided_by", String(64), nullable=True),
    Column("decided_at", UTCDateTime(), nullable=True),
    Column("note", Text, nullable=False),
)

# 双随机 draws (alerts.draws): one per period, with its published seed and everything it was
# drawn from (JSON: alerts.draws.draw_json), so that anyone can draw it again.
inspection_draws = Table(
    "inspection_draws",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("period", String(16), nullable=False, unique=True),
    Column("seed", String(200), nullable=False),
    Column("draw", Text, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False, unique=True),  # idempotency key
    Column("case_id", Id, ForeignKey("cases.id"), nullable=True, index=True),
    Column("channel", String(64), nullable=False),
    Column("event", String(32), nullable=False),
    Column("enterprise_id", String(64), nullable=False),
    Column("title", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("payload", Text, nullable=False),  # JSON
    Column("state", String(12), nullable=False, index=True),  # pending | delivered | dead
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=False, index=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime(), nullable=True),
)
