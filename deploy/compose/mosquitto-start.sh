#!/bin/sh
# Starts Mosquitto in the compose stack (deploy/docker-compose.yml) with the production files
# of deploy/mosquitto/ (mounted read-only at /nonsite/mosquitto), changed in two ways only:
#
#  - The plain listener binds the container's interfaces instead of 127.0.0.1: nonsite runs
#    in another container here, and the published port decides who reaches it from outside.
#  - Mosquitto 2 reads the password, ACL and certificate files after dropping root to the
#    "mosquitto" user, which cannot read host files kept private (mode 0600 or 0640, owned by
#    someone else): it gets copies it owns in /etc/mosquitto, made at every start. After
#    editing deploy/mosquitto/passwd or acl, `docker compose restart mosquitto`.
#
# Runs as root (the image's default) through the image's own entrypoint.
set -eu

src=/nonsite/mosquitto
etc=/etc/mosquitto
data=/var/lib/mosquitto

if [ ! -f "$src/passwd" ]; then
    echo "mosquitto-start: no deploy/mosquitto/passwd; create it first with mosquitto_passwd" \
        "(docs/operations.md, \"Run with Docker Compose\")" >&2
    exit 1
fi

mkdir -p "$etc" "$data"
cp -R "$src/." "$etc/"
sed -i 's/^listener 1883 127\.0\.0\.1$/listener 1883/' "$etc/mosquitto.conf"
if ! grep -q '^listener 1883$' "$etc/mosquitto.conf"; then
    echo "mosquitto-start: mosquitto.conf has no 'listener 1883 127.0.0.1' line to open" >&2
    exit 1
fi
chown -R mosquitto:mosquitto "$etc" "$data"
chmod -R go-rwx "$etc"

exec mosquitto -c "$etc/mosquitto.conf"
