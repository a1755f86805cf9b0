#!/bin/sh
# nonsite backup: the service database and the raw archive, while the service runs.
#
#   deploy/backup.sh            (systemd: nonsite-backup.service, daily by its timer)
#
# Writes <NONSITE_BACKUP_DIR>/<UTC time>/ with
#   database.dump     pg_dump -Fc of the PostgreSQL database (when the database URL is one), or
#   nonsite.db        an SQLite online-backup copy of the default SQLite database,
#   archive.sqlite3   an SQLite online-backup copy of the raw archive,
#   MANIFEST          what was copied, the archive's last sequence number, nonsite's version,
# then deletes backups older than NONSITE_BACKUP_KEEP_DAYS days. A backup is written under a
# hidden name and renamed when complete, so a directory with a time name is a whole backup.
#
# The live SQLite files are never copied with cp: they are in WAL mode, and a file copy taken
# while the service writes can be torn. SQLite's backup API copies a consistent snapshot in
# one read transaction while the service goes on writing.
#
# Order matters: the database first, then the archive. The database holds the pipeline's
# checkpoint, a sequence number in the archive; an archive copy taken after the database copy
# holds every message the checkpoint refers to. (The other way round, a restored pipeline
# would wait for sequence numbers the restored archive never reaches, and skip new messages.)
#
# The configuration is read the way the service reads it (NONSITE_CONFIG, then the
# NONSITE_DB_URL and NONSITE_DATA_DIR overrides), through nonsite's own Python.
#
# Settings (environment; systemd reads them from /etc/nonsite/env):
#   NONSITE_CONFIG             the configuration file (default /etc/nonsite/nonsite.toml)
#   NONSITE_PYTHON             a Python with nonsite installed (default /opt/nonsite/.venv/bin/python)
#   NONSITE_BACKUP_DIR         where backups go (default /var/backups/nonsite)
#   NONSITE_BACKUP_KEEP_DAYS   delete backups older than this many days (default 7)
#   NONSITE_BACKUP_DATABASE    0: skip the database (e.g. backed up by the database's own means)
#   NONSITE_BACKUP_ARCHIVE     0: skip the archive (e.g. on a file system with snapshots)
# Exit status: 0 done, 1 failed (nothing of this run is left behind), 2 bad settings.
set -eu
umask 077  # backups hold personal data and password hashes

PY=${NONSITE_PYTHON:-/opt/nonsite/.venv/bin/python}
DEST=${NONSITE_BACKUP_DIR:-/var/backups/nonsite}
KEEP_DAYS=${NONSITE_BACKUP_KEEP_DAYS:-7}
DO_DATABASE=${NONSITE_BACKUP_DATABASE:-1}
DO_ARCHIVE=${NONSITE_BACKUP_ARCHIVE:-1}
export NONSITE_CONFIG="${NONSITE_CONFIG:-/etc/nonsite/nonsite.toml}"

say() { printf 'nonsite-backup: %s\n' "$*" >&2; }

case $KEEP_DAYS in
    '' | *[!0-9]* | 0) say "NONSITE_BACKUP_KEEP_DAYS must be a whole number of days >= 1"; exit 2 ;;
esac
if [ ! -x "$PY" ]; then
    say "no Python at $PY (set NONSITE_PYTHON to the venv nonsite is installed in)"; exit 2
fi

# What to back up, as the service sees it: shell assignments, quoted by Python.
settings=$("$PY" - <<'EOF'
import os, shlex, sys
from sqlalchemy.engine import URL, make_url
from nonsite.config import ConfigError, load_config

try:
    config = load_config(os.environ["NONSITE_CONFIG"])
except ConfigError as exc:
    print(exc.render(), file=sys.stderr)
    sys.exit(2)
url = make_url(config.database_url())
out = {"data_dir": str(config.service.data_dir.resolve()), "db_kind": url.get_backend_name()}
if out["db_kind"] == "sqlite":
    out["db_file"] = str(os.path.abspath(url.database or ""))
elif out["db_kind"] == "postgresql":
    # libpq's URI for pg_dump, without the password (it goes in PGPASSWORD, not in argv).
    libpq = URL.create("postgresql", url.username, None, url.host, url.port, url.database, url.query)
    out["pg_url"] = libpq.render_as_string(hide_password=False)
    out["pg_password"] = url.password or ""
for key, value in out.items():
    print(f"{key}={shlex.quote(value)}")
EOF
) || { rc=$?; say "cannot read the configuration $NONSITE_CONFIG"; exit "$rc"; }
data_dir='' db_kind='' db_file='' pg_url='' pg_password=''
eval "$settings"

# One SQLite file → a consistent copy, checked; prints "<seq> <checkpoint>" of the copy.
sqlite_copy() {
    "$PY" - "$1" "$2" <<'EOF'
import shutil, sqlite3, sys
from pathlib import Path

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
if not src.is_file():
    sys.exit(f"nonsite-backup: {src} does not exist")
free = shutil.disk_usage(dst.parent).free
need = src.stat().st_size + (Path(f"{src}-wal").stat().st_size if Path(f"{src}-wal").exists() else 0)
if free < need * 1.05:
    sys.exit(f"nonsite-backup: {dst.parent} has {free >> 20} MiB free, {src.name} needs {need >> 20} MiB")
source = sqlite3.connect(f"{src.resolve().as_uri()}?mode=rw", uri=True, timeout=60)
target = sqlite3.connect(dst)
source.backup(target)  # all pages in one step: one snapshot, however busy the writer is
source.close()
if target.execute("PRAGMA quick_check").fetchone()[0] != "ok":
    sys.exit(f"nonsite-backup: the copy of {src.name} fails PRAGMA quick_check")
tables = {r[0] for r in target.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
seq = target.execute("SELECT COALESCE(MAX(seq), 0) FROM messages").fetchone()[0] if "messages" in tables else "-"
checkpoint = "-"
if "ingest_checkpoints" in tables:
    row = target.execute("SELECT seq FROM ingest_checkpoints WHERE consumer = 'ingest'").fetchone()
    checkpoint = row[0] if row else 0
target.close()
print(seq, checkpoint)
EOF
}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$DEST"
work="$DEST/.$stamp.partial"
final="$DEST/$stamp"
trap 'rm -rf "$work"' EXIT
mkdir "$work"
manifest="$work/MANIFEST"
version=$("$PY" -c 'import importlib.metadata as m; print(m.version("nonsite"))' 2>/dev/null || echo unknown)
{
    echo "nonsite backup $stamp"
    echo "host: $(hostname)"
    echo "nonsite version: $version"
    echo "configuration: $NONSITE_CONFIG"
    echo "data directory: $data_dir"
} > "$manifest"

# 1. The database (first: see the note on order above).
if [ "$DO_DATABASE" != 0 ]; then
    case $db_kind in
        postgresql)
            command -v pg_dump > /dev/null \
                || { say "pg_dump is missing (Debian: apt-get install postgresql-client)"; exit 1; }
            PGPASSWORD=$pg_password pg_dump --format=custom --no-owner \
                --file="$work/database.dump" "$pg_url"
            echo "database: PostgreSQL, database.dump (pg_dump -Fc; restore with pg_restore)" >> "$manifest"
            ;;
        sqlite)
            copied=$(sqlite_copy "$db_file" "$work/nonsite.db")
            echo "database: SQLite $db_file, nonsite.db; ingest checkpoint ${copied#* }" >> "$manifest"
            ;;
        *)
            say "database kind $db_kind: back it up with its own tools (NONSITE_BACKUP_DATABASE=0)"
            exit 1
            ;;
    esac
fi

# 2. The raw archive.
if [ "$DO_ARCHIVE" != 0 ]; then
    copied=$(sqlite_copy "$data_dir/archive.sqlite3" "$work/archive.sqlite3")
    echo "archive: archive.sqlite3, last sequence number ${copied% *}" >> "$manifest"
fi

mv "$work" "$final"
trap - EXIT
say "backup written to $final"

# 3. Retention: whole backups (directories named by their time) older than KEEP_DAYS days,
# and leftovers of runs that died (a day old).
find "$DEST" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*T[0-9]*Z' \
    -mtime +$((KEEP_DAYS - 1)) -exec rm -rf {} + -exec printf 'nonsite-backup: removed %s\n' {} + >&2
find "$DEST" -mindepth 1 -maxdepth 1 -type d -name '.*.partial' -mtime +0 -exec rm -rf {} +
