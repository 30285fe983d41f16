#!/usr/bin/env bash
# The failure detector's trade-off on scenarios/partition-detection.toml: detection speed against
# false positives as the probe deadline (2 x latency_tolerance + 10 ms) varies, under the
# scenario's own latency model (2-5 ms + uniform jitter up to 500 ms one way).
#
# Usage: benches/detection-tradeoff.sh [SEEDS] [TOLERANCES...]
#   SEEDS       seeds 1..SEEDS per setting (default 5)
#   TOLERANCES  latency_tolerance values (default: 250ms 300ms 350ms 400ms 450ms 480ms 500ms 600ms)
#
# Prints one line per setting: the worst (max) figure over the seeds for times, the sum for counts.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-5}
shift || true
tolerances=("$@")
[ ${#tolerances[@]} -gt 0 ] || tolerances=(250ms 300ms 350ms 400ms 450ms 480ms 500ms 600ms)
cargo build --release -q
metric() { grep -o "\"$1\":[^,}]*" | head -1 | cut -d: -f2; }
printf '%-10s %-9s %-12s %-12s %-12s %-12s %-10s %-10s %-12s\n' \
  tolerance deadline det_p50_ms det_p99_ms obs_p99_ms susp_before false_susp false_deaths false_pairs%
for tol in "${tolerances[@]}"; do
  for seed in $(seq 1 "$seeds"); do
    line=$(./target/release/testbed run scenarios/partition-detection.toml --seed "$seed" --json \
      --set "workload.latency_tolerance=$tol" 2>/dev/null | tail -1 || true)
    m=$(printf '%s' "$line" | grep -o '"metrics":{[^}]*}')
    echo "$(metric detection_ms_p50 <<<"$m") $(metric detection_ms_p99 <<<"$m") \
$(metric observer_detection_ms_p99 <<<"$m") $(metric suspicions_before_first_fault <<<"$m") \
$(metric false_suspicions <<<"$m") $(metric false_deaths <<<"$m") $(metric false_suspicion_pairs_pct <<<"$m")"
  done | awk -v tol="$tol" '
    function mx(a, b) { return (b == "null" || a == "null") ? "null" : (a > b ? a : b) }
    { p50 = NR == 1 ? $1 : mx(p50, $1); p99 = NR == 1 ? $2 : mx(p99, $2); obs = NR == 1 ? $3 : mx(obs, $3);
      before += $4; fs += $5; fd += $6; pct += $7 }
    END {
      ms = tol; sub(/ms$/, "", ms)
      printf "%-10s %-9s %-12s %-12s %-12s %-12d %-10d %-10d %-12.2f\n", tol, (2 * ms + 10) "ms",
        (p50 == "null" ? "none" : sprintf("%.0f", p50)), (p99 == "null" ? "none" : sprintf("%.0f", p99)),
        (obs == "null" ? "none" : sprintf("%.0f", obs)), before, fs, fd, pct / NR }'
done
