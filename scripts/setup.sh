#!/usr/bin/env bash
# Makes a fresh machine ready for `npm start` / `npm test`: npm dependencies, nats-server, and for the
# tests PostgreSQL, MariaDB and Chromium (the SQL outbox and console suites start the real things).
set -euo pipefail
cd "$(dirname "$0")/.."

# npm dependencies: installed when missing or older than the lock file. `npm install` (it keeps
# the locked versions), not `npm ci`: registries that serve only some platforms' optional packages
# leave those out of the lock, and `npm ci` then refuses the lock as out of sync.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies" >&2
  npm install --no-audit --no-fund --loglevel=error >&2
fi

# PostgreSQL, MariaDB and Chromium: only the tests need them, so only root installs them, from Debian's
# packages, when one is missing; the tests that need one that is absent say so and fail.
have_postgres() { compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; }
have_mariadb() { command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || [ -x /usr/sbin/mysqld ]; }
have_chromium() { [ -x /usr/bin/chromium ]; }
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null && { ! have_postgres || ! have_mariadb || ! have_chromium; }; then
  echo "setup: installing postgresql, mariadb-server and chromium from Debian's packages" >&2
  apt-get update -qq >&2 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql mariadb-server chromium >&2
  apt_updated=1
fi

# nats-server: NATS_SERVER_BIN, PATH, or Debian's /usr/sbin
if [ -n "${NATS_URL:-}" ]; then exit 0; fi
find_nats() {
  for candidate in "${NATS_SERVER_BIN:-}" "$(command -v nats-server 2>/dev/null || true)" /usr/sbin/nats-server /usr/local/sbin/nats-server; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then echo "$candidate"; return 0; fi
  done
  return 1
}
if ! find_nats >/dev/null; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "setup: installing nats-server from Debian's packages" >&2
    [ -n "${apt_updated:-}" ] || apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >&2
    # CI also validates docker-compose.yml with Debian's docker-compose (no engine needed)
    if [ "${CI:-}" = "true" ]; then
      echo "setup: installing docker-compose from Debian's packages" >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >&2
    fi
  else
    cat >&2 <<'MSG'
setup: nats-server is not installed.
  Debian/Ubuntu:  sudo apt-get install -y nats-server
  elsewhere:      https://docs.nats.io/running-a-nats-service/introduction/installation
  or set NATS_SERVER_BIN=/path/to/nats-server, or NATS_URL to use a running server.
MSG
    exit 1
  fi
fi
find_nats >/dev/null || { echo "setup: nats-server still not found after install" >&2; exit 1; }
