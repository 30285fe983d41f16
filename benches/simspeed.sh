#!/usr/bin/env bash
# Simulator speed, side by side: this testbed's simulator, turmoil and madsim on one workload.
#
#   benches/simspeed.sh N D
#
# Workload: N hosts; every 100 ms of simulated time each sends one 64-byte datagram to every
# other host, for D simulated seconds, over 1 ms links with no loss. Each simulator checks that it
# delivered exactly N·(N−1)·10·D datagrams (a shortfall exits non-zero). Prints one JSON line per
# simulator (sim, nodes, sim_seconds, wall_seconds, delivered, expected,
# delivered_per_wall_second), then one line with this simulator's speed divided by each other's.
#
# turmoil and madsim are built from benches/simspeed/{turmoil,madsim}, crates outside the main
# workspace (madsim needs RUSTFLAGS="--cfg madsim", so it gets its own target directory).
# SIMSPEED_TIMEOUT (seconds, default 900) bounds each simulator's run; one that runs out prints
# {"sim":…,"timed_out_after_s":T} and its ratio is null. SIMSPEED_ONLY=testbed,madsim runs a subset.
# SIMSPEED_TESTBED_BIN runs that testbed binary instead of building target/release/testbed (the
# smoke test in tests/simspeed.rs uses it).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -ne 2 ] || ! [[ $1 =~ ^[0-9]+$ ]] || ! [[ $2 =~ ^[0-9]+$ ]] || [ "$1" -lt 2 ] || [ "$2" -lt 1 ]; then
    echo "usage: $0 NODES SECONDS   (NODES >= 2, SECONDS >= 1)" >&2
    exit 2
fi
nodes=$1
seconds=$2
timeout_s=${SIMSPEED_TIMEOUT:-900}
only=${SIMSPEED_ONLY:-testbed,turmoil,madsim}
root=$(pwd)

wants() { [[ ",$only," == *",$1,"* ]]; }

echo "building (quietly)..." >&2
testbed_bin=${SIMSPEED_TESTBED_BIN:-}
if wants testbed && [ -z "$testbed_bin" ]; then
    cargo build --release --quiet
    testbed_bin=target/release/testbed
fi
wants turmoil && (cd benches/simspeed/turmoil \
    && CARGO_TARGET_DIR="$root/target/simspeed" cargo build --release --quiet)
wants madsim && (cd benches/simspeed/madsim \
    && RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR="$root/target/simspeed-madsim" cargo build --release --quiet)

# delivered_per_wall_second of one result line: jq where installed; else sed, which suffices for
# the flat one-line objects these binaries print.
rate_of() {
    if command -v jq >/dev/null; then
        jq -r '.delivered_per_wall_second // empty' <<<"$1"
    else
        sed -n 's/.*"delivered_per_wall_second":\([0-9.eE+-]*\).*/\1/p' <<<"$1"
    fi
}

declare -A rate
run() {
    local sim=$1
    shift
    local line status=0
    line=$(timeout "$timeout_s" "$@") || status=$?
    if [ "$status" -eq 124 ]; then
        line="{\"sim\":\"$sim\",\"nodes\":$nodes,\"sim_seconds\":$seconds,\"timed_out_after_s\":$timeout_s}"
    elif [ "$status" -ne 0 ]; then
        echo "error: $sim failed (exit $status)" >&2
        exit 1
    else
        rate[$sim]=$(rate_of "$line")
    fi
    echo "$line"
}

wants testbed && run testbed "$testbed_bin" bench simspeed --nodes "$nodes" --seconds "$seconds" --json
wants turmoil && run turmoil target/simspeed/release/simspeed-turmoil "$nodes" "$seconds"
wants madsim && run madsim target/simspeed-madsim/release/simspeed-madsim "$nodes" "$seconds"

ratio() {
    local a=${rate[testbed]:-} b=${rate[$1]:-}
    if [ -n "$a" ] && [ -n "$b" ]; then awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }'; else echo null; fi
}
echo "{\"nodes\":$nodes,\"sim_seconds\":$seconds,\"ratio_vs_turmoil\":$(ratio turmoil),\"ratio_vs_madsim\":$(ratio madsim)}"
