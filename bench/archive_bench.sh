#!/usr/bin/env bash
# aether against clamscan on large archives, same database, same limits.
#
# Builds (once, under bench/work/archives/) from the scan benchmark's corpus
# (bench/build_corpus.sh: ~1.2 GB, ~21,000 real files):
#   - corpus-stored.zip   every corpus file stored (>= 1 GB, thousands of members);
#   - corpus-deflate.zip  every corpus file deflated (level 6);
#   - corpus.tar.gz       one gzip stream over a tar of the corpus;
# each with EICAR added as one member deep inside, so both scanners must find
# it (and agree). Then it scans each archive with both, median of RUNS
# (default 3), page cache warm, and prints MB/s (archive bytes per second of
# scan, the database load excluded) and the ratio. Both run with --allmatch
# (the benchmark database matches some corpus files; without it a scanner
# stops at the first match) and with limits large enough to scan everything
# (clamscan's defaults would stop at 400 MB; it refuses file sizes >= 2 GiB):
#   --allmatch --max-filesize=2000M --max-scansize=4000M --max-files=100000
# and must report the same detection names.
# aether uses all cores (members of one archive are scanned in parallel);
# clamscan has one thread. The database is the scan benchmark's (1.15M
# signatures, bench/gen_db.py), or the one given with DB=dir.
#
# usage: bench/archive_bench.sh [RUNS]    (needs clamscan and python3)
#        ARCHIVES="corpus.tar.gz" to run some of the archives only
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
work=bench/work
corpus=$work/corpus
arch=$work/archives-big
db=${DB:-$work/db}
command -v clamscan >/dev/null || { echo "archive_bench: clamscan is not installed (apt-get install clamav)" >&2; exit 2; }
bench/build_corpus.sh "$corpus"
if [ -z "${DB:-}" ] && [ ! -e "$db/.complete" ]; then
    python3 bench/gen_db.py "$db" --corpus "$corpus"
    touch "$db/.complete"
fi
cargo build --release -q -p aether
aether=target/release/aether

if [ ! -e "$arch/.complete" ]; then
    mkdir -p "$arch"
    python3 - "$corpus" "$arch" <<'EOF'
import os, sys, tarfile, zipfile
corpus, out = sys.argv[1], sys.argv[2]
eicar = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(corpus) for f in fs)
files = [p for p in files if os.path.isfile(p) and not os.path.islink(p)]
mid = len(files) // 2
for name, method in (("corpus-stored.zip", zipfile.ZIP_STORED), ("corpus-deflate.zip", zipfile.ZIP_DEFLATED)):
    with zipfile.ZipFile(os.path.join(out, name), "w", method, allowZip64=True) as z:
        for i, p in enumerate(files):
            z.write(p, os.path.relpath(p, corpus))
            if i == mid:
                z.writestr("deep/inside/eicar.com", eicar)
with tarfile.open(os.path.join(out, "corpus.tar.gz"), "w:gz") as t:
    for i, p in enumerate(files):
        t.add(p, os.path.relpath(p, corpus), recursive=False)
        if i == mid:
            import io
            info = tarfile.TarInfo("deep/inside/eicar.com")
            info.size = len(eicar)
            t.addfile(info, io.BytesIO(eicar))
print(f"archives: {len(files) + 1} members each")
EOF
    touch "$arch/.complete"
fi

# No scan-time limit: clamscan's default 120 s cut it short on the big zips
# (members after that point were never scanned, so it reported fewer names).
limits=(--allmatch --max-filesize=2000M --max-scansize=4000M --max-files=100000 --max-scantime=0)
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

empty=$work/empty
: > "$empty"
cache=$work/cache-archive
rm -rf "$cache"
"$aether" scan --db-cache "$cache" --no-summary -d "$db" "$empty" >/dev/null 2>&1 || true   # writes the cache
read -r c_load _ < <(repeat 3 clamscan --no-summary -d "$db" "$empty")
read -r a_load _ < <(repeat 3 "$aether" scan --db-cache "$cache" --no-summary -d "$db" "$empty")
echo "database: $(cat "$db"/*.hdb "$db"/*.hsb "$db"/*.ndb 2>/dev/null | wc -l) signatures; load clamscan ${c_load}s, aether (cache) ${a_load}s (subtracted below)"
printf "%-20s %9s %9s %12s %12s %8s %10s %10s  %s\n" archive MB members "clamscan" "aether" ratio "RSS clam" "RSS aether" "verdicts"
for a in ${ARCHIVES:-corpus-stored.zip corpus-deflate.zip corpus.tar.gz}; do
    f=$arch/$a
    bytes=$(stat -c %s "$f")
    members=$(python3 -c "import sys,zipfile,tarfile; p=sys.argv[1]; print(len(zipfile.ZipFile(p).namelist()) if p.endswith('.zip') else sum(1 for _ in tarfile.open(p)))" "$f")
    # Detection names, once each (clamscan prints a name again for each member
    # it matches in; aether once per file).
    clamscan --no-summary "${limits[@]}" -d "$db" "$f" 2>/dev/null | grep ' FOUND$' | sort -u > "$work/archive.$a.clamscan" || true
    "$aether" scan --db-cache "$cache" --no-summary "${limits[@]}" -d "$db" "$f" 2>/dev/null | grep ' FOUND$' | sort -u > "$work/archive.$a.aether" || true
    c_only=$(comm -23 "$work/archive.$a.clamscan" "$work/archive.$a.aether" | wc -l)
    a_only=$(comm -13 "$work/archive.$a.clamscan" "$work/archive.$a.aether" | wc -l)
    same="same $(wc -l < "$work/archive.$a.aether") names"
    [ "$c_only$a_only" = "00" ] || same="DIFFER: $c_only names only from clamscan, $a_only only from aether ($work/archive.$a.*)"
    read -r cs ck < <(repeat "$runs" clamscan --no-summary "${limits[@]}" -d "$db" "$f")
    read -r as ak < <(repeat "$runs" "$aether" scan --db-cache "$cache" --no-summary "${limits[@]}" -d "$db" "$f")
    awk -v n="$a" -v b="$bytes" -v m="$members" -v cs="$cs" -v as="$as" -v cl="$c_load" -v al="$a_load" \
        -v ck="$ck" -v ak="$ak" -v same="$same" 'BEGIN {
        cmb = b / 1e6 / (cs - cl); amb = b / 1e6 / (as - al);
        printf "%-20s %9.0f %9d %7.1f MB/s %7.1f MB/s %7.2fx %6.0f MiB %6.0f MiB  %s\n",
            n, b / 1e6, m, cmb, amb, amb / cmb, ck / 1024, ak / 1024, same }'
done
