#!/usr/bin/env bash
# Compose's MongoDB with authentication (ADR 0011). A replica set that authenticates its clients
# must also authenticate its members, with a shared key file; this one member makes its own on
# the first start (mode 0400, owned by the mongodb user, as mongod requires), then runs the
# image's own entrypoint, which creates the administrator from MONGO_INITDB_ROOT_* once.
set -euo pipefail
keyfile=/data/configdb/keyfile
if [ ! -s "$keyfile" ]; then
  head -c 756 /dev/urandom | base64 -w 0 > "$keyfile"
  chmod 0400 "$keyfile"
  chown mongodb:mongodb "$keyfile"
fi
exec docker-entrypoint.sh mongod "$@"
