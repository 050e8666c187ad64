#!/usr/bin/env bash
# Runs MariaDB's own MTR tests (suites galera, galera_3nodes, galera_sr, wsrep) against Trireme,
# or against Galera 4 for comparison.
#
#   bash mtr/run.sh                                  # the tests in mtr/tests.txt, on Trireme
#   bash mtr/run.sh galera.basic galera.galera_view  # named tests
#   bash mtr/run.sh --suite galera_sr --big-test     # a whole suite (MTR picks the tests)
#   bash mtr/run.sh -f my-list.txt --parallel 2      # a list file (`#` comments allowed)
#   PROVIDER=galera bash mtr/run.sh ...              # the same tests on /usr/lib/galera/libgalera_smm.so
#
# Options (all optional):
#   -f, --file FILE          test list, one suite.test per line (default: mtr/tests.txt)
#   --suite S[,S...]         run whole suites instead of a list (MTR's --suite)
#   --parallel N             MTR workers (default 1: the reference box has 2 vCPUs)
#   --big-test               also run tests marked big (most SST/IST tests)
#   --port-base N            MTR port base (default 15400 for Trireme, 15600 for Galera; MTR maps
#                            it to ports (N/10-1000)*30+10000 and up: 26200.. and 26800..)
#   --vardir DIR             (default /tmp/trireme-mtr-var, /tmp/trireme-mtr-var-galera)
#   --testcase-timeout MIN   per-test timeout in minutes (default 10)
#   --results FILE           where to write the per-test outcome table (default VARDIR.results.tsv)
#   --lib PATH               provider library (default: target/release/libtrireme.so, or under
#                            $CARGO_TARGET_DIR, built first by cargo build --release -p trireme-ffi)
#   -- ARGS...               passed to mariadb-test-run.pl unchanged
#
# Environment: PROVIDER=trireme|galera, TRIREME_LIB (same as --lib), MTR_DIR (default
# /usr/share/mysql/mysql-test).
#
# MTR runs as user `mysql` (rsync's SST daemon drops to `nobody`, which cannot write a root-owned
# datadir), with --force --retry=0 --max-test-fail=0. The provider library is copied next to the
# vardir first, so a rebuild of target/ during a long run does not change the library under test.
# Exit status: MTR's (non-zero when any test failed), or 2 for a usage or setup error.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROVIDER="${PROVIDER:-trireme}"
MTR_DIR="${MTR_DIR:-/usr/share/mysql/mysql-test}"
LIST=""
SUITES=""
PARALLEL=1
BIG=0
PORT_BASE=""
VARDIR=""
TC_TIMEOUT=10
RESULTS=""
LIB="${TRIREME_LIB:-}"
TESTS=()
EXTRA=()

die() { echo "mtr/run.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    -f|--file) LIST="$2"; shift 2 ;;
    --suite|--suites) SUITES="$2"; shift 2 ;;
    --parallel) PARALLEL="$2"; shift 2 ;;
    --parallel=*) PARALLEL="${1#*=}"; shift ;;
    --big-test) BIG=1; shift ;;
    --port-base) PORT_BASE="$2"; shift 2 ;;
    --port-base=*) PORT_BASE="${1#*=}"; shift ;;
    --vardir) VARDIR="$2"; shift 2 ;;
    --vardir=*) VARDIR="${1#*=}"; shift ;;
    --testcase-timeout) TC_TIMEOUT="$2"; shift 2 ;;
    --testcase-timeout=*) TC_TIMEOUT="${1#*=}"; shift ;;
    --results) RESULTS="$2"; shift 2 ;;
    --lib) LIB="$2"; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    --) shift; EXTRA+=("$@"); break ;;
    -*) die "unknown option $1 (pass MTR options after --)" ;;
    *) TESTS+=("$1"); shift ;;
  esac
done

case "$PROVIDER" in
  trireme)
    : "${PORT_BASE:=15400}"; : "${VARDIR:=/tmp/trireme-mtr-var}"
    if [ -z "$LIB" ]; then
      # Build (a no-op when target/ is current), so a fresh clone or a stale library is never
      # what gets tested. --lib/TRIREME_LIB skip this, e.g. while the tree is mid-edit.
      TARGET="${CARGO_TARGET_DIR:-target}"; case "$TARGET" in /*) ;; *) TARGET="$REPO/$TARGET" ;; esac
      LIB="$TARGET/release/libtrireme.so"
      command -v cargo >/dev/null || export PATH="$HOME/.cargo/bin:$PATH"
      command -v cargo >/dev/null || die "cargo not found (bash scripts/setup.sh), or pass --lib PATH"
      echo "mtr/run.sh: cargo build --release -p trireme-ffi"
      (cd "$REPO" && cargo build --release --quiet -p trireme-ffi) \
        || die "the build failed; pass --lib $LIB to test the library already built"
    fi ;;
  galera)
    : "${PORT_BASE:=15600}"; : "${VARDIR:=/tmp/trireme-mtr-var-galera}"
    : "${LIB:=/usr/lib/galera/libgalera_smm.so}" ;;
  *) die "PROVIDER must be trireme or galera, not '$PROVIDER'" ;;
esac
[ -f "$LIB" ] || die "provider library $LIB not found"
[ -f "$MTR_DIR/mariadb-test-run.pl" ] || die "$MTR_DIR/mariadb-test-run.pl not found (apt-get install mariadb-test)"
case "$VARDIR" in /*) ;; *) die "--vardir must be absolute" ;; esac
case "$VARDIR/" in "$REPO"/*|"$MTR_DIR"/*) die "--vardir must be outside the source and test trees" ;; esac
VARDIR="${VARDIR%/}"
: "${RESULTS:=$VARDIR.results.tsv}"

# The test list: named tests, else a list file, else mtr/tests.txt (unless whole suites).
if [ "${#TESTS[@]}" -eq 0 ] && [ -z "$SUITES" ]; then
  : "${LIST:=$REPO/mtr/tests.txt}"
fi
if [ -n "$LIST" ]; then
  [ -f "$LIST" ] || die "test list $LIST not found"
  while read -r t _; do TESTS+=("$t"); done < <(sed -e 's/\(^\|[[:space:]]\)#.*//' -e '/^[[:space:]]*$/d' "$LIST")
  [ "${#TESTS[@]}" -gt 0 ] || die "test list $LIST is empty"
fi

id mysql >/dev/null 2>&1 || die "user mysql not found (apt-get install mariadb-server, or bash scripts/setup.sh)"
# Run as mysql. A root caller drops privileges with runuser; another user needs sudo.
if [ "$(id -u)" = 0 ]; then AS_MYSQL=(runuser -u mysql --)
elif [ "$(id -un)" = mysql ]; then AS_MYSQL=()
else AS_MYSQL=(sudo -u mysql --); fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

# A snapshot of the library where mysql can read it; the vardir itself is wiped by MTR.
SNAP="$VARDIR.provider"
$SUDO mkdir -p "$SNAP" "$VARDIR"
$SUDO cp -f "$LIB" "$SNAP/$(basename "$LIB")"
LIB_SNAP="$SNAP/$(basename "$LIB")"
$SUDO chown -R mysql:mysql "$SNAP" "$VARDIR"
$SUDO chmod 755 "$SNAP"; $SUDO chmod 644 "$LIB_SNAP"
# A leftover vardir from a root-run MTR may hold root-owned files MTR cannot delete.
$SUDO find "$VARDIR" -xdev ! -user mysql -exec chown -h mysql:mysql {} + 2>/dev/null || true

ARGS=(--vardir="$VARDIR" --port-base="$PORT_BASE" --parallel="$PARALLEL" --force --retry=0
      --max-test-fail=0 --testcase-timeout="$TC_TIMEOUT" --suite-timeout=1440)
[ "$BIG" = 1 ] && ARGS+=(--big-test)
[ -n "$SUITES" ] && ARGS+=(--suite="$SUITES")

LOG="$VARDIR.stdout.log"
echo "mtr/run.sh: provider=$PROVIDER lib=$LIB (sha256 $(sha256sum "$LIB_SNAP" | cut -c1-16))"
echo "mtr/run.sh: vardir=$VARDIR port-base=$PORT_BASE parallel=$PARALLEL big-test=$BIG tests=${#TESTS[@]}${SUITES:+ suites=$SUITES}"
echo "mtr/run.sh: full output in $LOG, per-test outcomes in $RESULTS"
start=$(date +%s)
set +e
(cd "$MTR_DIR" && "${AS_MYSQL[@]}" env HOME=/tmp TMPDIR=/tmp WSREP_PROVIDER="$LIB_SNAP" \
    perl mariadb-test-run.pl "${ARGS[@]}" "${EXTRA[@]}" "${TESTS[@]}") 2>&1 \
  | tee "$LOG" | grep --line-buffered -E '\[ (pass|fail|skipped|disabled)|^(Completed|Failing|Failed|Spent|Timer)|mysql-test-run: \*\*\*|ERROR'
rc=${PIPESTATUS[0]}
set -e
elapsed=$(( $(date +%s) - start ))

# One line per test: test, combination, outcome, time_ms, symptom, server-log lines (outcomes.pl).
perl "$REPO/mtr/outcomes.pl" --vardir "$VARDIR" "$LOG" > "$RESULTS" || true
for o in pass fail skipped disabled; do
  printf '%s=%s ' "$o" "$(awk -F'\t' -v o="$o" '$3==o' "$RESULTS" | wc -l)"
done
echo "elapsed=${elapsed}s rc=$rc"

# MTR stops its servers; report any mariadbd still running from this vardir (kill by PID only).
left=$(pgrep -f -- "mariadbd.*$VARDIR/" || true)
if [ -n "$left" ]; then
  echo "mtr/run.sh: leftover mariadbd from $VARDIR, stopping PIDs: $left"
  for p in $left; do $SUDO kill -TERM "$p" 2>/dev/null || true; done
  sleep 5
  for p in $left; do $SUDO kill -KILL "$p" 2>/dev/null || true; done
fi

if [ "$rc" = 0 ] && awk -F'\t' '$3=="fail"' "$RESULTS" | grep -q .; then rc=1; fi
exit "$rc"
