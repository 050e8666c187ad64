#!/usr/bin/env bash
# Runs a long list of MTR tests through mtr/run.sh in chunks, one vardir per chunk, so a hang or a
# crash costs one chunk and every failure keeps its logs. Resumable: a chunk with a results file is
# not run again. Used for the TRIAGE.md sweep:
#
#   bash mtr/sweep.sh LIST OUTDIR [CHUNK] [-- run.sh options]
#   PROVIDER=galera bash mtr/sweep.sh LIST OUTDIR 40 -- --big-test --testcase-timeout 6
#
# OUTDIR/cNN is chunk NN's vardir (datadirs are deleted after the chunk, the logs are kept),
# OUTDIR/cNN.results.tsv its outcomes (outcomes.pl), OUTDIR/all.tsv all of them, OUTDIR/times.txt
# the wall time of each chunk.
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LIST="$1"; OUTDIR="$2"; shift 2; CHUNK=40
if [ $# -gt 0 ] && [ "$1" != "--" ]; then CHUNK="$1"; shift; fi
[ "${1:-}" = "--" ] && shift
mkdir -p "$OUTDIR"
sed -e 's/\(^\|[[:space:]]\)#.*//' -e '/^[[:space:]]*$/d' "$LIST" | awk '{print $1}' > "$OUTDIR/list.txt"
split -d -a 2 -l "$CHUNK" "$OUTDIR/list.txt" "$OUTDIR/chunk."
for f in "$OUTDIR"/chunk.[0-9][0-9]; do
  n="${f##*.}"; vd="$OUTDIR/c$n"
  [ -s "$vd.results.tsv" ] && { echo "sweep: chunk $n done already"; continue; }
  echo "sweep: chunk $n ($(wc -l < "$f") tests) start $(date -u +%FT%TZ)"
  t0=$(date +%s)
  bash "$REPO/mtr/run.sh" --vardir "$vd" --results "$vd.results.tsv" -f "$f" "$@" > "$vd.run.log" 2>&1
  rc=$?
  t1=$(date +%s)
  echo "chunk $n tests=$(wc -l < "$f") rc=$rc seconds=$((t1 - t0)) start=$(date -u -d @"$t0" +%FT%TZ)" >> "$OUTDIR/times.txt"
  tail -n 1 "$vd.run.log"
  # Keep logs, drop datadirs and caches (a failed test's saved datadir is ~100 MB).
  rm -rf "$vd"/mysqld.*/data "$vd"/*/mysqld.*/data "$vd"/log/*/mysqld.*/data "$vd"/*/log/*/mysqld.*/data \
         "$vd"/install.db "$vd"/*/install.db "$vd"/mysqld.*/*.cache "$vd"/log/*/mysqld.*/*binlog* 2>/dev/null
done
cat "$OUTDIR"/c[0-9][0-9].results.tsv > "$OUTDIR/all.tsv"
for o in pass fail skipped disabled; do printf '%s=%s ' "$o" "$(awk -F'\t' -v o="$o" '$3==o' "$OUTDIR/all.tsv" | wc -l)"; done
echo
