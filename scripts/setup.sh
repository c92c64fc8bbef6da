#!/usr/bin/env bash
# One idempotent set-up for a fresh machine: Python venv and packages, node tools
# (anvil, solc-js, Safe artifacts) and a real bitcoind, all cached in git-ignored
# folders (.venv, node_modules, .cache). Every step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=$ROOT/.cache
mkdir -p "$CACHE"

log() { printf '[setup] %s\n' "$*" >&2; }

# --- C headers for the ledger's native core (reserve/ledger/_native.c) ---------
# It links OpenSSL's libcrypto for SHA-256; Debian's libssl-dev has the headers.
if [ ! -f /usr/include/openssl/sha.h ] && [ "$(id -u)" = 0 ]; then
  log "installing libssl-dev (OpenSSL headers for the ledger's native core)"
  apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get -qq install -y libssl-dev gcc >/dev/null
fi

# --- Python -----------------------------------------------------------------
PY=${PYTHON:-python3}
stamp=$(sha256sum pyproject.toml requirements.lock setup.py reserve/ledger/_native.c \
  | sha256sum | cut -c1-16)
if [ ! -f .venv/.stamp ] || [ "$(cat .venv/.stamp)" != "$stamp" ]; then
  log "creating .venv and installing Python packages"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check --upgrade pip 2>/dev/null || true
  .venv/bin/pip install -q --disable-pip-version-check -c requirements.lock -e '.[dev]' 2>&1 \
    | grep -v 'is ignored: it is neither a file nor a directory' || true
  .venv/bin/python -c 'import reserve, wallets'
  # The build of the native core is optional for pip (a machine without a compiler still
  # installs), not for this project: the benchmarks and tests must run the real thing.
  if ! .venv/bin/python -c 'import reserve.ledger._native' 2>/dev/null; then
    log "the ledger's native core did not build: need gcc and OpenSSL headers (libssl-dev)"
    .venv/bin/python setup.py -q build_ext --inplace >&2 || true
    exit 1
  fi
  echo "$stamp" > .venv/.stamp
fi

# --- Node tools (anvil, solc-js, Safe contracts) ------------------------------
# `npm ci` installs exactly the committed lock and never rewrites it, so the tree stays
# clean. The lock records every platform's optional anvil binary package (npm ci refuses
# a lock that lacks one); after changing package.json, regenerate it with
# `npm install --package-lock-only` (.npmrc keeps registry URLs out of it).
if [ -f package-lock.json ]; then
  lockstamp=$(sha256sum package.json package-lock.json | sha256sum | cut -c1-16)
  if [ ! -f node_modules/.stamp ] || [ "$(cat node_modules/.stamp)" != "$lockstamp" ]; then
    log "npm ci from package-lock.json (anvil, solc-js, Safe contracts, playwright-core)"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$lockstamp" > node_modules/.stamp
  fi
  # The API's /docs and /redoc pages serve Swagger UI and ReDoc from here, not a CDN
  # (reserve/api/docs_pages.py lists the files); the folder is git-ignored.
  vendor=reserve/api/static/vendor
  for pair in swagger-ui-dist/swagger-ui-bundle.js:swagger-ui/swagger-ui-bundle.js \
              swagger-ui-dist/swagger-ui.css:swagger-ui/swagger-ui.css \
              redoc/bundles/redoc.standalone.js:redoc/redoc.standalone.js; do
    source_file=node_modules/${pair%%:*} target=$vendor/${pair#*:}
    if ! cmp -s "$source_file" "$target"; then
      log "vendoring $source_file for the API docs pages"
      install -D -m 0644 "$source_file" "$target"
    fi
  done
fi

# --- bitcoind (Bitcoin Knots from Debian unstable, run through its own loader) --
bash scripts/fetch-bitcoind.sh

# --- PostgreSQL binaries, for a throwaway test cluster where no server answers ----
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  log "installing PostgreSQL from Debian (tests start a throwaway cluster with it)"
  apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get -qq install -y postgresql >/dev/null
fi

# --- wrk, the native HTTP load generator of the API benchmark (bench/api.py) ----
if ! command -v wrk >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  log "installing wrk from Debian (the API benchmark's load generator)"
  apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get -qq install -y wrk >/dev/null
fi

# --- Chromium for the dashboard's browser tests --------------------------------
if [ -f scripts/install-chromium.sh ]; then
  bash scripts/install-chromium.sh
fi

# --- Go and golang.org/x/mod, for the tile log's independent reader --------------
if [ -f scripts/install-go.sh ]; then
  bash scripts/install-go.sh
fi

log "ready"
