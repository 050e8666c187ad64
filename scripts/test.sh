#!/usr/bin/env bash
# Runs every test: unit tests and the deterministic simulation of the group protocol, then the
# integration tests that start real mariadbd (Debian 10.11) on libtrireme.so.
# Needs root (servers run as user mysql). CI=true raises the simulation to 2000 seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -n "${CI:-}" ]; then export TRIREME_SIM_SEEDS=${TRIREME_SIM_SEEDS:-2000}; fi
export TRIREME_SIM_SEEDS=${TRIREME_SIM_SEEDS:-300}

step() { echo; echo "=== $* ($(date +%T))"; }

step "unit tests, simulation ($TRIREME_SIM_SEEDS seeds), benches compiled and run once"
cargo test --release --workspace --exclude trireme-itest --exclude trireme-testbed
cargo bench --workspace --benches --quiet -- --test >/dev/null

step "testbed self-test against Galera 4 (proves the harness)"
cargo test --release -p trireme-testbed -- --test-threads=2

step "integration tests: real mariadbd on target/release/libtrireme.so"
cargo test --release -p trireme-itest -- --test-threads=2

step "all tests passed"
