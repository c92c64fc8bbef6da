#!/usr/bin/env bash
# The whole test suite: lint, types, the layer contracts, then every test tier against real nodes.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PWD/.cache/bin:$PWD/node_modules/.bin:$PATH
echo "== ruff"
.venv/bin/ruff check reserve wallets tests bench
echo "== mypy"
.venv/bin/mypy reserve wallets
echo "== import-linter (the layer rule of docs/architecture.md)"
.venv/bin/lint-imports
echo "== pytest"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
