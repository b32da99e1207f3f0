#!/usr/bin/env bash
# npm test: type-check, lint, then every jest project (unit, integration, e2e) on a real control plane.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
echo "== type-check" && tsc --noEmit -p .
echo "== lint" && eslint .
echo "== tests"
# --report-on-signal: the memory guard below asks a runaway jest process for a diagnostic report first.
reports=$(mktemp -d)
node --experimental-vm-modules --report-on-signal --report-signal=SIGUSR2 --report-directory="$reports" node_modules/jest/bin/jest.js "$@" &
jest=$!
trap 'kill -TERM "$jest" 2>/dev/null' INT TERM
# Every 2 s: the largest RSS among jest's processes (itself and its workers) and the machine's MemAvailable,
# printed at the end, so every run says how close memory came. A CI run's jest once grew to 23.6 GB and the
# kernel killed it (and a CoreDNS pod) with no word of why. Now a jest process past the guard is asked for a
# report (its JavaScript stack and open handles are printed), then killed alone: that test file fails
# and says where the memory went, and the machine keeps running the rest.
memory_log=$(mktemp)
guard_kb=$(( ${IOTEDGE_TEST_MEMORY_GUARD_MB:-6144} * 1024 ))
(
  while kill -0 "$jest" 2>/dev/null; do
    read -r rss pid < <(ps -o rss=,pid= -p "$jest" --ppid "$jest" | sort -n | tail -1)
    echo "${rss:-0} $(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)" >> "$memory_log"
    if [ "${rss:-0}" -gt "$guard_kb" ]; then
      echo "[test] memory guard: jest process $pid has $((rss / 1024)) MB RSS (guard: $((guard_kb / 1024)) MB); its report, then SIGKILL" >&2
      kill -USR2 "$pid" 2>/dev/null
      # The report waits for the process's JavaScript to take the interrupt: up to 20 s.
      for _ in $(seq 40); do compgen -G "$reports/*.json" >/dev/null && break; sleep 0.5; done
      sleep 1
      for report in "$reports"/*.json; do [ -f "$report" ] && node "$here/test/report-summary.mjs" "$report" >&2 && rm -f "$report"; done
      kill -KILL "$pid" 2>/dev/null
    fi
    sleep 2
  done
) &
sampler=$!
status=0
wait "$jest" || status=$?
wait "$sampler" || true
summary=$(awk 'NR == 1 || $1 > rss {rss = $1} NR == 1 || $2 < low {low = $2} END {printf "%d MB peak RSS of a jest process, %d MB lowest MemAvailable", rss / 1024, low / 1024}' "$memory_log")
echo "[test] memory: $summary" >&2
rm -rf "$memory_log" "$reports"
if [ "$status" -gt 128 ]; then
  # Killed by a signal: no teardown ran. Say what memory looked like, and stop the cluster it started.
  echo "[test] jest was killed by signal $((status - 128))" >&2
  grep -E '^(MemTotal|MemAvailable|Shmem):' /proc/meminfo >&2
  ps -eo rss=,pid=,comm= --sort=-rss | head -8 >&2
  dmesg 2>/dev/null | grep -iE 'out of memory|killed process' | tail -5 >&2 || true
  bash "$here/cluster/cluster.sh" prune >&2 || true
fi
exit "$status"
