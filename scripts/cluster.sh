#!/usr/bin/env bash
# Sets up this machine (packages, release build) and runs a local MariaDB cluster on Trireme:
#   bash scripts/cluster.sh            # up: start NODES (default 3) nodes, print a status line each
#   bash scripts/cluster.sh status     # status lines of the running cluster
#   bash scripts/cluster.sh sql N "SELECT ..."
#   bash scripts/cluster.sh down       # stop the nodes (by PID)
# Environment: NODES (3), BASE (/tmp/trireme-cluster), PORT_BASE (17000; node i uses
# PORT_BASE+10*i for SQL, +1 replication, +2 IST, +3 SST), PROVIDER (libtrireme.so; set
# PROVIDER=galera to run Galera 4 instead, for comparison).
set -euo pipefail
cd "$(dirname "$0")/.."
NODES=${NODES:-3}
BASE=${BASE:-/tmp/trireme-cluster}
PORT_BASE=${PORT_BASE:-17000}
action=${1:-up}
if [ "$action" = up ]; then bash scripts/setup.sh; fi
tb=target/release/trireme-testbed
[ -x "$tb" ] || cargo build --release -p trireme-testbed --quiet
case "$action" in
  up)
    if [ "${PROVIDER:-}" = galera ]; then provider=(--galera); else
      provider=(--provider "${PROVIDER:-$PWD/target/release/libtrireme.so}"); fi
    exec "$tb" up "${provider[@]}" --nodes "$NODES" --base-dir "$BASE" --port-base "$PORT_BASE" ;;
  status|down) exec "$tb" "$action" --base-dir "$BASE" ;;
  sql) shift; exec "$tb" sql --base-dir "$BASE" --node "$1" "$2" ;;
  *) echo "usage: $0 [up|status|sql N QUERY|down]" >&2; exit 2 ;;
esac
