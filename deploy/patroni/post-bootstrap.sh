#!/bin/sh
# Patroni's post_bootstrap (deploy/patroni/patroni.yml): run once, as postgres, on the host
# that creates the cluster, with a connection string to its new server as $1. Creates
# nonsite's role and database; nonsite creates and migrates its tables itself.
# Install: install -m 0755 deploy/patroni/post-bootstrap.sh /etc/patroni/post-bootstrap.sh
# The password comes from NONSITE_DB_PASSWORD in /etc/patroni_env.conf; it is needed only
# for this first start and can be removed from there afterwards.
set -eu
: "${NONSITE_DB_PASSWORD:?NONSITE_DB_PASSWORD is not set (/etc/patroni_env.conf)}"
# One statement per line, each committed on its own (CREATE DATABASE cannot run in a
# transaction block); psql's :'pw' quotes the password as a literal.
# Each only if missing: Patroni runs this after a bootstrap from a backup too (pgBackRest's
# restore brings the role and database along).
psql --no-psqlrc -v ON_ERROR_STOP=1 -v pw="$NONSITE_DB_PASSWORD" "$1" <<'SQL'
SELECT 'CREATE ROLE nonsite LOGIN PASSWORD ' || quote_literal(:'pw')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'nonsite') \gexec
SELECT 'CREATE DATABASE nonsite OWNER nonsite'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'nonsite') \gexec
SQL
