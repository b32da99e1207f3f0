#!/usr/bin/env bash
# npm test: type-check, lint, then every jest project (unit, integration, e2e) on a real control plane.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
echo "== type-check" && tsc --noEmit -p .
echo "== lint" && eslint .
echo "== tests"
node --experimental-vm-modules node_modules/jest/bin/jest.js "$@" &
jest=$!
trap 'kill -TERM "$jest" 2>/dev/null' INT TERM
# jest's own memory, every 5 s: its processes' largest RSS and the machine's lowest MemAvailable. A CI run's
# jest was once killed (SIGKILL, no message) after 710 s; this says, in every run, how close memory came.
memory_log=$(mktemp)
(
  while kill -0 "$jest" 2>/dev/null; do
    rss=$(ps -o rss= -p "$jest" --ppid "$jest" | sort -n | tail -1)
    available=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
    echo "${rss:-0} $available" >> "$memory_log"
    sleep 5
  done
) &
status=0
wait "$jest" || status=$?
summary=$(awk 'NR == 1 || $1 > rss {rss = $1} NR == 1 || $2 < low {low = $2} END {printf "%d MB peak RSS of a jest process, %d MB lowest MemAvailable", rss / 1024, low / 1024}' "$memory_log")
echo "[test] memory: $summary" >&2
rm -f "$memory_log"
if [ "$status" -gt 128 ]; then
  # Killed by a signal: no teardown ran. Say what memory looked like, and stop the cluster it started.
  echo "[test] jest was killed by signal $((status - 128))" >&2
  grep -E '^(MemTotal|MemAvailable|Shmem):' /proc/meminfo >&2
  ps -eo rss=,pid=,comm= --sort=-rss | head -8 >&2
  dmesg 2>/dev/null | grep -iE 'out of memory|killed process' | tail -5 >&2 || true
  bash "$here/cluster/cluster.sh" prune >&2 || true
fi
exit "$status"
