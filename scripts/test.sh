#!/usr/bin/env bash
# Runs every test: unit tests and the deterministic simulation of the group protocol, the
# patched raft-rs's library tests, every bench once, the testbed's self-test against Galera 4, then the integration tests that start
# real mariadbd (Debian 10.11) on libtrireme.so: one node, a three-node cluster (io_uring
# transport, then the portable one), and faults; then a short list of MariaDB's own galera MTR
# tests (mtr/ci.txt; mtr/tests.txt is the full list that passes).
# Needs root (servers run as user mysql). CI=true raises the simulation to 2000 seeds.
# Every step runs even if an earlier one failed; the exit status says whether all passed.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
if [ -n "${CI:-}" ]; then export TRIREME_SIM_SEEDS=${TRIREME_SIM_SEEDS:-2000}; fi
export TRIREME_SIM_SEEDS=${TRIREME_SIM_SEEDS:-300}

failed=()
step() {
  local name=$1; shift
  echo; echo "=== $name ($(date +%T))"
  local start=$SECONDS
  if "$@"; then
    echo "=== $name: passed in $((SECONDS - start)) s"
  else
    echo "=== $name: FAILED after $((SECONDS - start)) s"
    failed+=("$name")
  fi
}

step "unit tests and simulation ($TRIREME_SIM_SEEDS seeds)" \
  cargo test --release --workspace --exclude trireme-itest --exclude trireme-testbed
step "raft-rs as patched for weighted quorums (third_party/raft): its library tests" \
  bash -c 'cd third_party/raft && CARGO_TARGET_DIR=../../target/raft cargo test --release --lib'
step "benches, once each" \
  cargo bench --workspace --benches --quiet -- --test
step "testbed self-test against Galera 4" \
  cargo test --release -p trireme-testbed -- --test-threads=2
step "integration: one node" \
  cargo test --release -p trireme-itest --test single_node -- --test-threads=2
step "integration: three nodes (io_uring transport)" \
  cargo test --release -p trireme-itest --test cluster -- --test-threads=1
step "integration: three nodes (portable transport)" \
  env TRIREME_ITEST_TRANSPORT=portable TRIREME_ITEST_CLUSTER_SECS=10 \
  cargo test --release -p trireme-itest --test cluster three_nodes -- --test-threads=1
step "integration: faults" \
  cargo test --release -p trireme-itest --test faults -- --test-threads=1
step "MariaDB's own galera MTR tests (mtr/ci.txt)" \
  bash mtr/run.sh -f mtr/ci.txt
step "fault suite: bank transfers under kill -9, SIGSTOP, partitions, restarts (network namespaces)" \
  env TRIREME_FAULTS_BUILD=0 bash itest/faults.sh trireme

echo
if [ "${#failed[@]}" -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all tests passed"
