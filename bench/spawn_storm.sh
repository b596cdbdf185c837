#!/usr/bin/env bash
# spawn_storm: fork+exec storm from 2 workers while `aether monitor --json` runs.
#
# Prints: the fraction of spawned processes whose fork, exec and exit were all
# seen; the loss the sensor itself reported; the spawn-rate slowdown against runs
# without the monitor; the monitor's CPU per 1,000 events; and the exec-to-delivery
# latency (p50, p99) measured at the monitor's subscriber.
#
#   bench/spawn_storm.sh [TOTAL_SPAWNS] [ROUNDS]     (defaults: 20000, 2)
#
# Needs root (the monitor needs CAP_NET_ADMIN), gcc, python3 and cargo. Uses
# $AETHER_MONITOR if set (e.g. the `aether` binary plus `monitor`), else builds
# the sensor's `monitor` example, which compiles the same command file.
set -euo pipefail

TOTAL=${1:-20000}
ROUNDS=${2:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
WORK="$HERE/work/spawn_storm"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
mkdir -p "$WORK"

if [[ -z "${AETHER_MONITOR:-}" ]]; then
    (cd "$ROOT" && cargo build --quiet --release -p aether-sensor --example monitor)
    AETHER_MONITOR="$TARGET/release/examples/monitor"
fi
gcc -O2 -Wall -o "$WORK/worker" "$HERE/spawn_storm_worker.c"
# A copy of true under a unique name: its exec events are easy to pick out.
cp /bin/true "$WORK/storm-true.new" && mv -f "$WORK/storm-true.new" "$WORK/storm-true"
PER_WORKER=$((TOTAL / 2))

# Runs the two workers; prints the elapsed seconds.
storm() {
    local tag=$1
    local t0 t1
    t0=$(date +%s.%N)
    "$WORK/worker" "$PER_WORKER" "$WORK/storm-true" "$WORK/$tag.w1" &
    local w1=$!
    "$WORK/worker" "$PER_WORKER" "$WORK/storm-true" "$WORK/$tag.w2" &
    local w2=$!
    wait "$w1" "$w2"
    t1=$(date +%s.%N)
    python3 -c "print($t1 - $t0)"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# Runs one monitored storm; prints "elapsed_seconds cpu_ticks".
monitored() {
    local round=$1
    # Remove old output first: the shell truncates it only once the monitor runs.
    rm -f "$WORK/mon$round.jsonl" "$WORK/mon$round.err"
    "$AETHER_MONITOR" --json --latency >"$WORK/mon$round.jsonl" 2>"$WORK/mon$round.err" &
    local mon=$!
    for _ in $(seq 1 200); do
        grep -q listening "$WORK/mon$round.err" 2>/dev/null && break
        kill -0 "$mon" 2>/dev/null || { cat "$WORK/mon$round.err" >&2; exit 2; }
        sleep 0.05
    done
    local c0 c1 elapsed prev size
    c0=$(cpu_ticks "$mon")
    elapsed=$(storm "mon$round")
    # Let the monitor print what it has (bounded): until its output stops growing.
    prev=-1
    for _ in $(seq 1 100); do
        size=$(stat -c %s "$WORK/mon$round.jsonl")
        [[ "$size" == "$prev" ]] && break
        prev=$size
        sleep 0.2
    done
    c1=$(cpu_ticks "$mon")
    kill -TERM "$mon"
    wait "$mon" || true
    echo "$elapsed $((c1 - c0))"
}

results=()
for round in $(seq 1 "$ROUNDS"); do
    # Alternate which run goes first, so drift on a shared machine favours neither.
    if (( round % 2 == 1 )); then
        base=$(storm "base$round")
        read -r mon_t ticks < <(monitored "$round")
    else
        read -r mon_t ticks < <(monitored "$round")
        base=$(storm "base$round")
    fi
    echo "round $round: $TOTAL spawns in ${base}s without monitor, ${mon_t}s with" >&2
    results+=("$round $base $mon_t $ticks")
done

python3 "$HERE/spawn_storm_analyze.py" "$WORK" "$(getconf CLK_TCK)" "${results[@]}"
