#!/usr/bin/env bash
# Installs what Trireme needs on Debian 12 and builds the release library.
# Idempotent: packages already present are not reinstalled, the build is incremental.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

PACKAGES=(mariadb-server mariadb-backup mariadb-test galera-4 galera-arbitrator-4 sysbench
          rsync socat iproute2 iptables procps psmisc lsof gcc make pkg-config)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  # The package's own service must not start: our nodes run on their own ports as user mysql.
  echo exit 101 | $SUDO tee /usr/sbin/policy-rc.d >/dev/null; $SUDO chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# A packaged mariadb.service may have started anyway on a machine without policy-rc.d.
if command -v systemctl >/dev/null && systemctl is-active --quiet mariadb 2>/dev/null; then
  echo "setup: note: the system's own mariadb service is running; Trireme's nodes use other ports"
fi

if ! command -v cargo >/dev/null; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "setup: installing the Rust toolchain with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi

echo "setup: building the release library"
cargo build --release --workspace --quiet
ls -l target/release/libtrireme.so
