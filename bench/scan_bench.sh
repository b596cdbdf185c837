#!/usr/bin/env bash
# aether against clamscan on the same large database and the same corpus.
#
# Builds (once, under bench/work/) a corpus of at least 1 GB and 20,000 real
# files and a database of 1,000,000 MD5, 100,000 SHA256 and 50,000 body
# signatures, then measures for both scanners, in the same run:
#   - database load time (scanning one empty file), median of 3;
#   - scan throughput over the corpus (MB/s, load time subtracted), median of
#     RUNS (default 3), page cache warm;
#   - peak resident memory (largest of the runs);
#   - the ratios aether/clamscan, and whether both found the same files.
# aether uses all cores (-j default); clamscan has one thread.
# aether's load is measured cold (--no-db-cache) and from its compiled cache;
# its scans use the cache, and subtract the cached load time.
#
# usage: bench/scan_bench.sh [RUNS]     (needs clamscan: apt-get install clamav)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
work=bench/work
corpus=$work/corpus
db=$work/db
mkdir -p "$work"
command -v clamscan >/dev/null || { echo "scan_bench: clamscan is not installed (apt-get install clamav)" >&2; exit 2; }
bench/build_corpus.sh "$corpus"
if [ ! -e "$db/.complete" ]; then
    python3 bench/gen_db.py "$db" --corpus "$corpus"
    touch "$db/.complete"
fi
cargo build --release -q -p aether
aether=target/release/aether
empty=$work/empty
: > "$empty"
cache=$work/cache
rm -rf "$cache"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# Runs a command N times; prints "median_seconds max_peak_kib".
repeat() {
    local n=$1; shift
    local times=() peak=0
    for _ in $(seq "$n"); do
        /usr/bin/time -o "$work/time.out" -f "%e %M" "$@" >/dev/null 2>&1 || true
        read -r s k < <(tail -1 "$work/time.out")
        times+=("$s")
        [ "$k" -gt "$peak" ] && peak=$k
    done
    echo "$(printf '%s\n' "${times[@]}" | median) $peak"
}

bytes=$(find "$corpus/" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
files=$(find "$corpus/" -type f | wc -l)
echo "corpus: $files files, $((bytes / 1000000)) MB; database: $(cat "$db"/*.hdb "$db"/*.hsb "$db"/*.ndb | wc -l) signatures"

read -r c_load c_load_kib < <(repeat 3 clamscan --no-summary -d "$db" "$empty")
read -r a_cold a_cold_kib < <(repeat 3 "$aether" scan --no-db-cache --no-summary -d "$db" "$empty")
"$aether" scan --db-cache "$cache" --no-summary -d "$db" "$empty" >/dev/null 2>&1 || true   # writes the cache
read -r a_cached a_cached_kib < <(repeat 3 "$aether" scan --db-cache "$cache" --no-summary -d "$db" "$empty")

# Warm the page cache, and keep each tool's list of infected files.
clamscan -r -i --no-summary -d "$db" "$corpus" 2>/dev/null | sort > "$work/clamscan.found" || true
"$aether" scan --db-cache "$cache" -r -i --no-summary -d "$db" "$corpus" 2>/dev/null | sort > "$work/aether.found" || true

read -r c_scan c_kib < <(repeat "$runs" clamscan -r -i --no-summary -d "$db" "$corpus")
read -r a_scan a_kib < <(repeat "$runs" "$aether" scan --db-cache "$cache" -r -i --no-summary -d "$db" "$corpus")

awk -v b="$bytes" -v cl="$c_load" -v ac="$a_cold" -v aw="$a_cached" -v cs="$c_scan" -v as="$a_scan" \
    -v ck="$c_kib" -v ak="$a_kib" -v clk="$c_load_kib" -v ack="$a_cold_kib" -v awk_="$a_cached_kib" 'BEGIN {
    cmb = b / 1e6 / (cs - cl); amb = b / 1e6 / (as - aw);
    printf "%-34s %12s %12s %10s\n", "", "clamscan", "aether", "ratio";
    printf "%-34s %11.3fs %11.3fs %9.2fx\n", "database load (cold)", cl, ac, ac / cl;
    printf "%-34s %11.3fs %11.3fs %9.2fx\n", "database load (aether cache)", cl, aw, aw / cl;
    printf "%-34s %9.0f MiB %8.0f MiB %9.2fx\n", "peak RSS at load (cold)", clk / 1024, ack / 1024, ack / clk;
    printf "%-34s %9.0f MiB %8.0f MiB %9.2fx\n", "peak RSS at load (cache)", clk / 1024, awk_ / 1024, awk_ / clk;
    printf "%-34s %11.2fs %11.2fs %9.2fx\n", "corpus scan, wall", cs, as, cs / as;
    printf "%-34s %8.1f MB/s %7.1f MB/s %9.2fx\n", "scan throughput (load excluded)", cmb, amb, amb / cmb;
    printf "%-34s %9.0f MiB %8.0f MiB %9.2fx\n", "peak RSS scanning", ck / 1024, ak / 1024, ak / ck;
}'
echo "infected files: clamscan $(wc -l < "$work/clamscan.found"), aether $(wc -l < "$work/aether.found"); in clamscan's list only:"
comm -23 <(sed 's/: .*//' "$work/clamscan.found") <(sed 's/: .*//' "$work/aether.found") | head -20 || true
echo "in aether's list only:"
comm -13 <(sed 's/: .*//' "$work/clamscan.found") <(sed 's/: .*//' "$work/aether.found") | head -20 || true
