#!/usr/bin/env bash
# aetherd against Debian's clamd, both driven by Debian's clamdscan
# --multiscan, on the same large database and corpus as bench/scan_bench.sh.
#
# Measures, in the same run:
#   - time until each daemon answers PING (database load; aetherd from its
#     compiled cache, after one cold start that writes it);
#   - multiscan throughput over the corpus (MB/s), median of RUNS (default
#     3), page cache warm, each daemon's result cache off (clamd:
#     DisableCache yes; aetherd has none);
#   - each daemon's resident memory after the scans (VmRSS) and its peak
#     (VmHWM), and the peaks of its anonymous and its file-backed parts,
#     sampled every 50 ms during the timed scans;
#   - a RELOAD of aetherd in the middle of a multiscan: the scan's output
#     must equal the one without reload, and the peak memory during it;
#   - peak memory during a reload of a changed database (a full compile for
#     aetherd), for both daemons, idle, peaks reset first (clear_refs);
#   - the ratios aetherd/clamd, and whether both found the same files.
# Both get MaxThreads 3: clamd's MULTISCAN keeps one thread to walk, so both
# scan on 2 threads.
#
# usage: bench/clamd_bench.sh [RUNS]   (needs clamav-daemon and clamdscan)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
work=bench/work
corpus=$work/corpus
db=$work/db
run=$(mktemp -d /tmp/clamd-bench.XXXXXX)
command -v clamdscan >/dev/null || { echo "clamd_bench: clamdscan is not installed" >&2; exit 2; }
[ -x /usr/sbin/clamd ] || { echo "clamd_bench: clamd is not installed (clamav-daemon)" >&2; exit 2; }
bench/build_corpus.sh "$corpus"
if [ ! -e "$db/.complete" ]; then
    python3 bench/gen_db.py "$db" --corpus "$corpus"
    touch "$db/.complete"
fi
cargo build --release -q -p aetherd
aetherd=$PWD/target/release/aetherd
corpus_abs=$(readlink -f "$corpus")
db_abs=$(readlink -f "$db")

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$run"
}
trap cleanup EXIT

# Both daemons load a hard-linked copy, so that a file can be added to force
# a real reload without touching bench/work/db.
mkdir -p "$run/db"
cp -l "$db_abs"/*.hdb "$db_abs"/*.hsb "$db_abs"/*.ndb "$run/db/"
db_abs=$run/db

cat > "$run/clamd.conf" <<C
LocalSocket $run/clamd.sock
DatabaseDirectory $db_abs
Foreground yes
MaxThreads 3
DisableCache yes
User root
LogFile $run/clamd.log
C
cat > "$run/aetherd.toml" <<C
LocalSocket = "$run/aetherd.sock"
DatabaseDirectory = "$db_abs"
BuiltinDatabase = false
DatabaseCacheDirectory = "$run/cache"
MaxThreads = 3
LogFile = "$run/aetherd.log"
C
printf 'LocalSocket %s\n' "$run/clamd.sock" > "$run/clamdscan-clamd.conf"
printf 'LocalSocket %s\n' "$run/aetherd.sock" > "$run/clamdscan-aetherd.conf"

now() { date +%s.%N; }
# Waits until SOCKET answers PING; prints the seconds it took.
wait_ping() {
    local sock=$1 pid=$2 t0=$3
    until [ "$(printf 'zPING\0' | timeout 5 python3 -c '
import socket,sys
s=socket.socket(socket.AF_UNIX); s.settimeout(5)
try:
    s.connect(sys.argv[1]); s.sendall(b"zPING\0"); print(s.recv(16).decode().strip("\0"))
except OSError: print("")' "$sock")" = PONG ]; do
        kill -0 "$pid" 2>/dev/null || { echo "clamd_bench: daemon $pid died while loading" >&2; exit 1; }
        sleep 0.1
    done
    echo "$(now) - $t0" | bc
}
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
stop() { kill "$1"; wait "$1" 2>/dev/null || true; }

bytes=$(find "$corpus/" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
files=$(find "$corpus/" -type f | wc -l)
echo "corpus: $files files, $((bytes / 1000000)) MB; database: $(cat "$db"/*.hdb "$db"/*.hsb "$db"/*.ndb | wc -l) signatures"

# aetherd once cold, to write its compiled cache; then from the cache.
t0=$(now); "$aetherd" --foreground --config "$run/aetherd.toml" 2>/dev/null & apid=$!; pids+=("$apid")
a_cold=$(wait_ping "$run/aetherd.sock" "$apid" "$t0")
stop "$apid"
t0=$(now); "$aetherd" --foreground --config "$run/aetherd.toml" 2>/dev/null & apid=$!; pids+=("$apid")
a_load=$(wait_ping "$run/aetherd.sock" "$apid" "$t0")
t0=$(now); clamd -c "$run/clamd.conf" >/dev/null 2>&1 & cpid=$!; pids+=("$cpid")
c_load=$(wait_ping "$run/clamd.sock" "$cpid" "$t0")
a_rss_idle=$(rss "$apid"); c_rss_idle=$(rss "$cpid")

scan() { clamdscan --config-file "$run/clamdscan-$1.conf" --multiscan -i --no-summary "$corpus_abs" 2>/dev/null || true; }
# Warm the page cache and keep each daemon's list of infected files.
scan clamd | sort > "$run/clamd.found"
scan aetherd | sort > "$run/aetherd.found"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
timed() {
    local who=$1 times=()
    for _ in $(seq "$runs"); do
        local t0; t0=$(now)
        scan "$who" >/dev/null
        times+=("$(echo "$(now) - $t0" | bc)")
    done
    printf '%s\n' "${times[@]}" | median
}
# Samples PID's anonymous and file-backed resident memory every 50 ms until
# $run/stop-sampling exists; prints the peak of each in KiB. VmHWM has only
# their sum: the split shows what is heap and what is mapped files (pages of
# a file mapping are shared with the page cache, and reclaimable).
sample_peaks() {
    local pid=$1 a=0 f=0 ra rf
    while [ ! -e "$run/stop-sampling" ] && kill -0 "$pid" 2>/dev/null; do
        read -r ra rf < <(awk '/^RssAnon/ {a=$2} /^RssFile/ {f=$2} END {print a+0, f+0}' "/proc/$pid/status" 2>/dev/null || echo "0 0")
        [ "$ra" -gt "$a" ] && a=$ra
        [ "$rf" -gt "$f" ] && f=$rf
        sleep 0.05
    done
    echo "$a $f"
}
sample_peaks "$cpid" > "$run/clamd.peaks" & c_sampler=$!
c_scan=$(timed clamd)
touch "$run/stop-sampling"; wait "$c_sampler"; rm -f "$run/stop-sampling"
sample_peaks "$apid" > "$run/aetherd.peaks" & a_sampler=$!
a_scan=$(timed aetherd)
touch "$run/stop-sampling"; wait "$a_sampler"; rm -f "$run/stop-sampling"
read -r c_anon c_file < "$run/clamd.peaks"
read -r a_anon a_file < "$run/aetherd.peaks"
c_rss=$(rss "$cpid"); c_hwm=$(hwm "$cpid")
a_rss=$(rss "$apid"); a_hwm=$(hwm "$apid")

# A reload in the middle of a multiscan: nothing may fail or change.
scan aetherd | sort > "$run/reload.found" &
spid=$!
sleep 1
printf 'zRELOAD\0' | python3 -c '
import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"zRELOAD\0"); print(s.recv(64).decode().strip("\0"))' "$run/aetherd.sock" >/dev/null
wait "$spid"
until grep -q "database reloaded\|reload failed" "$run/aetherd.log"; do sleep 0.2; done
a_hwm_reload=$(hwm "$apid")
reload_same=no
cmp -s "$run/reload.found" "$run/aetherd.found" && reload_same=yes
grep -q "reload failed" "$run/aetherd.log" && reload_same="no (reload failed)"

# A reload of a changed database, idle: aetherd recompiles (its cache is
# stale), clamd reloads. Peak memory from a reset peak.
printf '%s:5:Bench.Extra.Sig\n' "$(printf 'extra' | md5sum | cut -c1-32)" > "$run/db/extra.hdb"
send() { python3 -c '
import socket,sys
s=socket.socket(socket.AF_UNIX); s.settimeout(600); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode()+b"\0")
out=b""
while True:
    d=s.recv(4096)
    if not d: break
    out+=d
print(out.decode().strip("\0"))' "$1" "$2"; }
echo 5 > "/proc/$apid/clear_refs"; a_before=$(rss "$apid")
n=$(grep -c "database reloaded" "$run/aetherd.log" || true)
send "$run/aetherd.sock" zRELOAD >/dev/null
until [ "$(grep -c "database reloaded\|reload failed" "$run/aetherd.log")" -gt "$n" ]; do sleep 0.2; done
a_hwm_cold=$(hwm "$apid")
echo 5 > "/proc/$cpid/clear_refs"; c_before=$(rss "$cpid")
send "$run/clamd.sock" zRELOAD >/dev/null
# clamd reloads when the RELOAD connection closes; PING answers after.
send "$run/clamd.sock" zPING >/dev/null
until grep -q "Database correctly reloaded" "$run/clamd.log"; do sleep 0.2; done
c_hwm_reload=$(hwm "$cpid")

awk -v b="$bytes" -v cl="$c_load" -v al="$a_load" -v ac="$a_cold" -v cs="$c_scan" -v as="$a_scan" \
    -v cr="$c_rss" -v ar="$a_rss" -v ch="$c_hwm" -v ah="$a_hwm" -v can="$c_anon" -v cfi="$c_file" -v aan="$a_anon" -v afi="$a_file" -v ci="$c_rss_idle" -v ai="$a_rss_idle" -v arh="$a_hwm_reload" -v ab="$a_before" -v acr="$a_hwm_cold" -v cb="$c_before" -v crl="$c_hwm_reload" 'BEGIN {
    cmb = b / 1e6 / cs; amb = b / 1e6 / as;
    printf "%-40s %12s %12s %10s\n", "", "clamd", "aetherd", "ratio";
    printf "%-40s %11.2fs %11.2fs %9.2fx\n", "start until PING (aetherd: cache)", cl, al, al / cl;
    printf "%-40s %11.2fs %11.2fs %9.2fx\n", "start until PING (aetherd: cold)", cl, ac, ac / cl;
    printf "%-40s %11.2fs %11.2fs %9.2fx\n", "clamdscan --multiscan, wall", cs, as, cs / as;
    printf "%-40s %8.1f MB/s %7.1f MB/s %9.2fx\n", "multiscan throughput", cmb, amb, amb / cmb;
    printf "%-40s %8.0f MiB %8.0f MiB %9.2fx\n", "resident memory, idle after load", ci / 1024, ai / 1024, ai / ci;
    printf "%-40s %8.0f MiB %8.0f MiB %9.2fx\n", "resident memory after the scans", cr / 1024, ar / 1024, ar / cr;
    printf "%-40s %8.0f MiB %8.0f MiB %9.2fx\n", "peak resident memory (VmHWM)", ch / 1024, ah / 1024, ah / ch;
    printf "%-40s %8.0f MiB %8.0f MiB %9.2fx\n", "  of which anonymous (sampled peak)", can / 1024, aan / 1024, aan / can;
    printf "%-40s %8.0f MiB %8.0f MiB %9.2fx\n", "  of which mapped files (sampled peak)", cfi / 1024, afi / 1024, afi / cfi;
    printf "%-40s %12s %8.0f MiB\n", "aetherd peak with a reload mid-scan", "", arh / 1024;
    printf "%-40s %8.0f MiB %8.0f MiB %9.2fx\n", "resident before a changed-db reload", cb / 1024, ab / 1024, ab / cb;
    printf "%-40s %8.0f MiB %8.0f MiB %9.2fx\n", "peak during a changed-db reload", crl / 1024, acr / 1024, acr / crl;
    printf "%-40s %11.2fx %11.2fx\n", "  peak / resident before", crl / cb, acr / ab;
}'
echo "reload during a multiscan: same results as without: $reload_same"
echo "infected files: clamd $(wc -l < "$run/clamd.found"), aetherd $(wc -l < "$run/aetherd.found"); in clamd's list only:"
comm -23 <(sed 's/: .*//' "$run/clamd.found") <(sed 's/: .*//' "$run/aetherd.found") | head -10
