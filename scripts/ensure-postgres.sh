# Sourced by ./dev test. Makes NONSITE_TEST_PG_URL point at a PostgreSQL the tests can use:
# the one named by the variable, else the machine's server on 127.0.0.1:5432 (trust auth,
# database "test"), else a private throwaway cluster started here (installed with apt-get
# when the binaries are missing). The tests never skip PostgreSQL: they fail without it.
pg_reachable() {
    "$VENV/bin/python" - "$1" <<'PY' >/dev/null 2>&1
import sys, psycopg
url = sys.argv[1].replace("postgresql+psycopg://", "postgresql://")
psycopg.connect(url, connect_timeout=3).close()
PY
}

if [ -z "${NONSITE_TEST_PG_URL:-}" ]; then
    default_url="postgresql+psycopg://$(id -un)@127.0.0.1:5432/test"
    if pg_reachable "$default_url"; then
        export NONSITE_TEST_PG_URL="$default_url"
    else
        pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
        if [ -z "$pg_bin" ]; then apt_install postgresql; pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1); fi
        pg_dir="$ROOT/.venv/pg"
        pg_port=55432
        run_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
        if [ ! -f "$pg_dir/PG_VERSION" ]; then
            mkdir -p "$pg_dir"; [ "$(id -u)" = 0 ] && chown postgres "$pg_dir"
            run_pg "$pg_bin/initdb" -D "$pg_dir" -A trust -U postgres >/dev/null
        fi
        run_pg "$pg_bin/pg_ctl" -D "$pg_dir" -o "-p $pg_port -k /tmp -c listen_addresses=127.0.0.1" -l "$pg_dir/log" -w start >/dev/null 2>&1 || true
        run_pg "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres test 2>/dev/null || true
        export NONSITE_TEST_PG_URL="postgresql+psycopg://postgres@127.0.0.1:$pg_port/test"
        say "using a private PostgreSQL on port $pg_port (data in $pg_dir)"
    fi
fi
