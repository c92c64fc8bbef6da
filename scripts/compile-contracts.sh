#!/usr/bin/env bash
# Recompile the project's Solidity contracts into contracts/build/ with the pinned solc-js.
# The build is committed; tests/unit/test_evm_build.py checks it still matches the sources.
set -euo pipefail
cd "$(dirname "$0")/.."
exec node contracts/compile.js "$@"
