#!/usr/bin/env bash
# aetherd end to end: a fork+exec storm while `aether events --follow --json`
# follows the daemon. The path measured is the whole one: kernel -> sensor ->
# journal commit -> IPC batch -> Unix socket -> the CLI -> a reader.
#
# Prints: how many of the storm's execs and exits reached the follower, the loss
# the sensor and the journal reported (aether status), the exec-to-follower latency
# (kernel timestamp of the exec to the line's arrival, p50 and p99), and the
# daemon's CPU per 1,000 events. See bench/ipc_bench.md.
#
#   bash bench/daemon_events.sh [TOTAL_SPAWNS]     (default 10000; needs root, gcc)
set -euo pipefail
TOTAL=${1:-10000}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
# PROFILE=dev runs debug builds (to check the script, not for figures).
PROFILE=${PROFILE:-release}
BIN="$TARGET/$([[ $PROFILE == dev ]] && echo debug || echo "$PROFILE")"
WORK=$(mktemp -d /tmp/aether-daemon-events.XXXXXX)
trap 'kill "$DPID" 2>/dev/null || true; [[ -n "${KEEP:-}" ]] || rm -rf "$WORK"' EXIT
DPID=

(cd "$ROOT" && cargo build --quiet --profile "$PROFILE" -p aetherd -p aether)
gcc -O2 -Wall -o "$WORK/worker" "$HERE/spawn_storm_worker.c"
cp /bin/true "$WORK/evstorm-true"
mkdir -p "$WORK/db"
echo "Bench.Nothing:0:*:0011223344556677" >"$WORK/db/b.ndb"
cat >"$WORK/aetherd.toml" <<EOF
LocalSocket = "$WORK/clamd.sock"
IpcSocket = "$WORK/ipc.sock"
JournalPath = "$WORK/journal.db"
DatabaseDirectory = "$WORK/db"
BuiltinDatabase = false
DatabaseCache = false
LogFile = "$WORK/aetherd.log"
EOF
"$BIN/aetherd" --foreground --config "$WORK/aetherd.toml" &
DPID=$!
for _ in $(seq 1 200); do
    "$BIN/aether" status --socket "$WORK/ipc.sock" >/dev/null 2>&1 && break
    kill -0 "$DPID" || { cat "$WORK/aetherd.log"; exit 2; }
    sleep 0.05
done
"$BIN/aether" status --socket "$WORK/ipc.sock" | grep -E '^(sensor|journal)'

python3 - "$BIN/aether" "$WORK" "$TOTAL" "$DPID" <<'PY'
import json, os, subprocess, sys, threading, time
aether, work, total, dpid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sock = os.path.join(work, "ipc.sock")
prog = os.path.join(work, "evstorm-true")

def ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])

# From the next record on, named before the storm: nothing is missed however late
# the follower starts.
st0 = json.loads(subprocess.run([aether, "status", "--json", "--socket", sock],
                                capture_output=True, text=True, check=True).stdout)
since = (st0["journal"]["last_seq"] or 0) + 1
follower = subprocess.Popen([aether, "events", "--follow", "--json", "--since", str(since),
                             "--socket", sock], stdout=subprocess.PIPE, text=True, bufsize=1)
lines = []
def read():
    for line in follower.stdout:
        lines.append((time.monotonic_ns(), line))
threading.Thread(target=read, daemon=True).start()
time.sleep(0.5)
seq0 = len(lines)
t0, cpu0 = time.monotonic(), ticks(dpid)
half = total // 2
ws = [subprocess.Popen([os.path.join(work, "worker"), str(half), prog, os.path.join(work, f"w{i}")])
      for i in (1, 2)]
for w in ws:
    w.wait()
storm = time.monotonic() - t0
# The children, by pid, with the window in which each lived (PIDs wrap).
children = {}
for i in (1, 2):
    for line in open(os.path.join(work, f"w{i}")).read().split("\n")[1:]:
        if line:
            pid, t0_ns, t1_ns = map(int, line.split())
            children.setdefault(pid, []).append((t0_ns, t1_ns))
def child(pid, t, slack=0):
    # An exit event is sent just after the parent may reap the child (docs/events.md):
    # it may be stamped a little after the worker's reap time.
    for k, (a, b) in enumerate(children.get(pid, [])):
        if a <= t <= b + slack:
            return (pid, k)
execs, exits, named, lat = set(), set(), 0, []
deadline, last = time.monotonic() + 60, -1
while time.monotonic() < deadline:
    n = len(lines)
    for recv_ns, line in lines[last + 1:n]:
        r = json.loads(line)
        d = r["data"]
        if r["kind"] != "event" or r["name"] not in ("exec", "exit"):
            continue
        c = child(d.get("pid"), d.get("time_ns", -1), 5_000_000 if r["name"] == "exit" else 0)
        if c is None:
            continue
        if r["name"] == "exec":
            execs.add(c)
            named += d.get("exe") == prog
            lat.append(recv_ns - d["time_ns"])
        elif d.get("tid") == d.get("pid"):
            exits.add(c)
    last = n - 1
    if len(execs) >= half * 2 and len(exits) >= half * 2:
        break
    time.sleep(0.2)
cpu = ticks(dpid) - cpu0
events = len(lines) - seq0
follower.kill()
st = json.loads(subprocess.run([aether, "status", "--json", "--socket", sock],
                               capture_output=True, text=True).stdout)
lat.sort()
pct = lambda p: lat[min(int(len(lat) * p), len(lat) - 1)] / 1000 if lat else float("nan")
hz = os.sysconf("SC_CLK_TCK")
c = st["sensor"]["counters"] or {}
print(f"spawned {half * 2} in {storm:.2f} s ({half * 2 / storm:.0f}/s) while following")
print(f"reached the follower: {len(execs)} execs ({named} with the program read from /proc), "
      f"{len(exits)} exits, of {half * 2} children")
print(f"sensor loss: kernel {c.get('lost_kernel')}, overruns {c.get('overruns')}, queue {c.get('lost_queue')}; "
      f"journal dropped {st['journal']['dropped']}")
print(f"exec -> follower latency: p50 {pct(0.5):.0f} us, p99 {pct(0.99):.0f} us")
print(f"daemon CPU: {cpu / hz:.2f} s for {events} records, {cpu / hz * 1000 / max(events, 1) * 1000:.0f} ms per 1,000")
missing = sorted((p, k) for p, ws in children.items() for k in range(len(ws)) if (p, k) not in execs)
if os.environ.get("KEEP"):
    open(os.path.join(work, "lines"), "w").write("".join(l for _, l in lines))
if missing and os.environ.get("KEEP"):
    open(os.path.join(work, "missing"), "w").write("\n".join(f"{p} {children[p][k][0]} {children[p][k][1]}" for p, k in missing))
print(f"journal: {st['journal']['used_bytes'] / max(st['journal']['last_seq'] or 1, 1):.0f} bytes/record")
PY
