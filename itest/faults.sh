#!/usr/bin/env bash
# The fault suite of issue 5 (item 10) against Trireme, Galera 4, or both, side by side.
#
#   bash itest/faults.sh [trireme|galera|both]      (default: both; as root)
#
# Each provider runs `itest/tests/fault_suite.rs` (three MariaDB nodes in network namespaces
# under a bank-transfer workload; kill -9, SIGSTOP, partitions, clean restart, whole-cluster
# crash) and prints one line per scenario:
#   scenario=<name> provider=<name> stall_s=<s> recovery_s=<s> transfer=<IST|SST|none>
# then this script prints them as one table. The full output of each run is kept in the
# directory it names. Exit status: 0 when every scenario of every provider passed its checks.
# Environment passed through: TRIREME_FAULTS_SCENARIOS (comma-separated subset),
# TRIREME_FAULTS_CLIENTS (clients per node, default 2), TRIREME_SEED, TRIREME_TESTBED_KEEP;
# TRIREME_FAULTS_BUILD=0 skips building libtrireme.so.
set -u
cd "$(dirname "$0")/.."

which=${1:-both}
case $which in
    trireme | galera) providers=$which ;;
    both) providers="galera trireme" ;;
    *)
        echo "usage: bash itest/faults.sh [trireme|galera|both]" >&2
        exit 2
        ;;
esac

case $providers in
    *trireme*)
        # Incremental: rebuilds only when the provider's sources changed. TRIREME_FAULTS_BUILD=0
        # tests target/release/libtrireme.so as it is (e.g. while the tree does not build).
        if [ "${TRIREME_FAULTS_BUILD:-1}" != 0 ]; then
            cargo build --release -p trireme-ffi || exit 1
        fi
        ls -l --time-style=+%Y-%m-%dT%H:%M target/release/libtrireme.so >&2 || exit 1
        ;;
esac
cargo test --release -p trireme-itest --test fault_suite --no-run || exit 1

out=$(mktemp -d /tmp/trireme-faults.XXXXXX)
status=0
for p in $providers; do
    echo "== $p: running the fault suite (output in $out/$p.log)" >&2
    start=$(date +%s)
    if TRIREME_FAULTS_PROVIDER=$p TRIREME_FAULTS_OUT=$out/$p.txt \
        cargo test --release -p trireme-itest --test fault_suite -- --nocapture --test-threads=1 \
        >"$out/$p.log" 2>&1; then
        verdict=passed
    else
        verdict=FAILED
        status=1
    fi
    echo "== $p: $verdict in $(($(date +%s) - start)) s" >&2
    grep -E '^(scenario=|  VIOLATION|  note)' "$out/$p.txt" >&2 2>/dev/null
done

echo
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $(nproc) vCPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: bash itest/faults.sh $which"
echo
echo "| scenario | provider | stall_s | recovery_s | transfer | checks |"
echo "|---|---|---|---|---|---|"
for p in $providers; do
    [ -f "$out/$p.txt" ] || { echo "| (none) | $p | - | - | - | did not run: see $out/$p.log |"; continue; }
    awk '
        function flush() { if (line != "") print line " " (bad ? "FAIL (" bad ")" : "pass") " |" }
        /^scenario=/ {
            flush(); bad = 0
            for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            line = "| " v["scenario"] " | " v["provider"] " | " v["stall_s"] " | " v["recovery_s"] " | " v["transfer"] " |"
        }
        /^  VIOLATION/ { bad++ }
        END { flush() }
    ' "$out/$p.txt"
done
exit $status
