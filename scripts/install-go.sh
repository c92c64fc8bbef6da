#!/usr/bin/env bash
# Debian's Go and golang.org/x/mod sources, for the independent reader of the tile log
# (tests/go/tlogread, built offline by tests/support/tlog.py with GO111MODULE=off
# GOPATH=/usr/share/gocode GOPROXY=off). Idempotent: does nothing when both are there.
set -euo pipefail
if command -v go >/dev/null 2>&1 && [ -d /usr/share/gocode/src/golang.org/x/mod/sumdb/tlog ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
printf '[setup] %s\n' "installing Debian's golang-go and golang-golang-x-mod-dev (the tile log's Go reader)" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q golang-go golang-golang-x-mod-dev
go version >&2
