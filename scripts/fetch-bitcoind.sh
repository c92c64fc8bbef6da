#!/usr/bin/env bash
# Fetch a real bitcoind into .cache/bitcoind without installing anything system-wide.
# Debian 12 ships no bitcoind; Debian unstable ships Bitcoin Knots (Bitcoin Core's RPC),
# whose binaries need unstable's glibc, so they run through unstable's own loader kept
# in a private folder. Wrapper scripts in .cache/bin make them look ordinary.
# A bitcoind already on PATH (a user's own Bitcoin Core) is preferred.
set -euo pipefail
cd "$(dirname "$0")/.."
D=$PWD/.cache/bitcoind
BIN=$PWD/.cache/bin
mkdir -p "$BIN"

if [ -x "$BIN/bitcoind" ] && "$BIN/bitcoind" -version >/dev/null 2>&1; then
  exit 0
fi
if command -v bitcoind >/dev/null 2>&1 && command -v bitcoin-cli >/dev/null 2>&1; then
  ln -sf "$(command -v bitcoind)" "$BIN/bitcoind"
  ln -sf "$(command -v bitcoin-cli)" "$BIN/bitcoin-cli"
  exit 0
fi

echo "[setup] fetching bitcoind (Bitcoin Knots, Debian unstable) into .cache" >&2
mkdir -p "$D/apt/lists/partial" "$D/debs" "$D/root"
printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: sid\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > "$D/apt/sid.sources"
o=(-o "Dir::Etc::sourcelist=$D/apt/sid.sources" -o "Dir::Etc::sourceparts=-" -o "Dir::State::Lists=$D/apt/lists" -o "Dir::Cache::archives=$D/debs" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
for attempt in 1 2 3; do
  apt-get "${o[@]}" -qq update && break
  sleep $((attempt * 5))
done
pkgs="bitcoin-knots libc6 libstdc++6 libgcc-s1 libzmq5 libsodium26 libevent-core-2.1-7t64
libevent-extra-2.1-7t64 libevent-pthreads-2.1-7t64 libbsd0 libpgm-5.3-0t64 libnorm1t64
libgnutls30t64 libkrb5-3 libgssapi-krb5-2"
cd "$D/debs"
for p in $pkgs; do
  ls "${p}"_*.deb >/dev/null 2>&1 || {
    for attempt in 1 2 3; do apt-get "${o[@]}" -qq download "$p" && break; sleep $((attempt * 5)); done
  }
done
for f in *.deb; do dpkg -x "$f" "$D/root"; done
L=$D/root/usr/lib/x86_64-linux-gnu
for tool in bitcoind bitcoin-cli; do
  cat > "$BIN/$tool" <<WRAP
#!/bin/sh
exec "$L/ld-linux-x86-64.so.2" --library-path "$L:/lib/x86_64-linux-gnu" "$D/root/usr/bin/$tool" "\$@"
WRAP
  chmod +x "$BIN/$tool"
done
"$BIN/bitcoind" -version | head -1 >&2
