#!/usr/bin/env bash
# aether's YARA scanning against `yr scan` (YARA-X's CLI) and `yara` (libyara,
# Debian's 4.2) with the same real-world rules, corpus and thread count.
#
# Rules: the public Yara-Rules project (https://github.com/Yara-Rules/rules,
# GPL-2.0; not shipped here): clone it and pass its directory, or put it at
# bench/work/yara-rules-src. Every .yar file of its rule families (malware,
# packers, webshells, exploit kits, maldocs, CVEs, crypto, capabilities,
# anti-debug; not the deprecated, mobile or index files) that all three
# tools compile is kept; rules needing modules one of them lacks (cuckoo,
# androguard) drop out. The kept set is written to bench/work/yara-rules/.
#
# Corpus: the scan benchmark's (bench/build_corpus.sh, ~1.2 GB, ~21,000
# files). aether runs with its built-in ClamAV database (3 signatures) plus
# the rules, its compiled rules read from their cache (filled before the
# timed runs, in bench/work/cache-yara), as an installed aether runs; yr and
# yara compile the rules on every run. aether also runs the rules on what is
# inside archives, as ClamAV does, which the others do not: the corpus's
# ~1,600 .gz files alone hold ~200 MB of text (printed), so on the whole
# corpus aether does more work than the others. SUBSET=N compares like with
# like instead: N files of the corpus without containers (every 20th file
# that is not .gz/.zip/.pdf/.bz2, the test files or the archives), copied to
# bench/work/yara-subset.
#
# Each tool runs RUNS times (the second argument, else $RUNS, else 3) with
# THREADS threads (default 2); printed: median wall time, MB/s, CPU time
# (user+system), peak RSS, ratios to aether, and how many files each tool
# flagged (aether's list must equal yr's, archives aside). The flagged lists come from a first, untimed run of
# each tool, which also warms the page cache; with RUNS=1 that run is the
# timed one. TOOLS (default "aether yr yara") picks the tools.
#
# usage: bench/yara_bench.sh [RULES_DIR] [RUNS]
#        YR=/path/to/yr to use a given yr; otherwise it is built once with
#        `cargo install yara-x-cli` into bench/work/tools. AETHER=/path/to/aether
#        to use a given aether; otherwise target/release/aether is built.
set -euo pipefail
cd "$(dirname "$0")/.."
work=bench/work
src=${1:-$work/yara-rules-src}
runs=${2:-${RUNS:-3}}
threads=${THREADS:-2}
tools=${TOOLS:-aether yr yara}
corpus=$work/corpus
rules=$work/yara-rules
[ -d "$src/malware" ] || { echo "yara_bench: no Yara-Rules checkout at $src (git clone https://github.com/Yara-Rules/rules $src)" >&2; exit 2; }
command -v yara >/dev/null || { echo "yara_bench: yara is not installed (apt-get install yara)" >&2; exit 2; }
bench/build_corpus.sh "$corpus"
if [ -n "${SUBSET:-}" ]; then
    subset=$work/yara-subset
    rm -rf "$subset"
    mkdir -p "$subset"
    dest=$(realpath "$subset")
    (cd "$corpus/" && find . -type f ! -name '*.gz' ! -name '*.zip' ! -name '*.pdf' ! -name '*.bz2' \
        ! -path './clamav-testfiles/*' ! -path './archives/*' ! -name .complete -print |
        sort | awk 'NR % 20 == 0' | head -n "$SUBSET" | tr '\n' '\0' | xargs -0 -r cp --parents -t "$dest")
    corpus=$subset
fi
aether=${AETHER:-target/release/aether}
[ -n "${AETHER:-}" ] || cargo build --release -q -p aether
yr=${YR:-$work/tools/bin/yr}
if [ ! -x "$yr" ]; then
    echo "yara_bench: building yr (yara-x-cli 1.22.1) into $work/tools"
    cargo install -q --locked yara-x-cli --version 1.22.1 --root "$work/tools"
fi

# Keep the rule files all three compile, one file at a time (REUSE_RULES=1:
# keep the set a previous run selected).
kept=$(ls "$rules"/*.yar 2>/dev/null | wc -l) dropped="?"
if [ -z "${REUSE_RULES:-}" ] || [ "$kept" -eq 0 ]; then
    rm -rf "$rules"
    mkdir -p "$rules"
    empty=$work/empty
    : > "$empty"
    kept=0 dropped=0
    for f in "$src"/{malware,packers,webshells,exploit_kits,maldocs,cve_rules,crypto,capabilities,antidebug_antivm}/*.yar; do
        if yara -w "$f" "$empty" >/dev/null 2>&1 &&
            "$yr" compile -o /dev/null "$f" >/dev/null 2>&1 &&
            "$aether" scan --no-summary --no-db-cache --yara-rules "$f" "$empty" >/dev/null 2>&1; then
            cp "$f" "$rules/$(basename "$(dirname "$f")")__$(basename "$f")"
            kept=$((kept + 1))
        else
            dropped=$((dropped + 1))
        fi
    done
    # The file named under the first error (not warning) of a YARA-X report.
    first_error_file() { awk '/error\[/ {e = 1} e && / --> / {sub(/:[0-9]+:[0-9]+$/, "", $2); print $2; exit}'; }
    # Rule names must also be unique across the kept files: drop a file that
    # one of the tools refuses in combination (it names the file), until all agree.
    for _ in $(seq 100); do
        bad=$( { yara -w "$rules"/*.yar "$empty" 2>&1 >/dev/null || true; } | grep -o "^$rules/[^ (:]*\.yar" | head -1 || true)
        [ -n "$bad" ] || bad=$( { "$yr" compile -o /dev/null "$rules" 2>&1 >/dev/null || true; } | first_error_file)
        [ -n "$bad" ] || bad=$( { "$aether" scan --no-summary --no-db-cache --yara-rules "$rules" "$empty" 2>&1 >/dev/null || true; } | first_error_file)
        [ -n "$bad" ] || break
        rm -f "$bad"
        kept=$((kept - 1)) dropped=$((dropped + 1))
    done
fi
nrules=$(cat "$rules"/*.yar | grep -cE '^[[:space:]]*((private|global)[[:space:]]+)*rule[[:space:]]')
# yara takes the rule files as arguments (one namespace), yr the directory.
mapfile -t all < <(ls "$rules"/*.yar)

bytes=$(find "$corpus/" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
files=$(find "$corpus/" -type f | wc -l)
echo "rules: $nrules rules in $kept files ($dropped files dropped: not compiled by all three); corpus: $files files, $((bytes / 1000000)) MB; $threads threads"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# repeat N OUT CMD...: runs CMD once untimed (its output to OUT) unless N is
# 1, then N timed runs (the first one's output to OUT when N is 1); prints
# the median wall time, median CPU time and the peak RSS.
repeat() {
    local n=$1 out=$2; shift 2
    local walls=() cpus=() peak=0
    if [ "$n" -ne 1 ]; then "$@" > "$out" 2>/dev/null || true; fi
    for i in $(seq "$n"); do
        local dest=/dev/null
        [ "$n" -eq 1 ] && [ "$i" -eq 1 ] && dest=$out
        /usr/bin/time -o "$work/time.out" -f "%e %U %S %M" "$@" > "$dest" 2>/dev/null || true
        read -r s u y k < <(tail -1 "$work/time.out")
        walls+=("$s")
        cpus+=("$(awk -v u="$u" -v y="$y" 'BEGIN {print u + y}')")
        [ "$k" -gt "$peak" ] && peak=$k
    done
    echo "$(printf '%s\n' "${walls[@]}" | median) $(printf '%s\n' "${cpus[@]}" | median) $peak"
}
wants() { [[ " $tools " == *" $1 "* ]]; }

ycache=$work/cache-yara
acmd=("$aether" scan --no-summary -r -i -j "$threads" --db-cache "$ycache" --yara-rules "$rules" "$corpus/")
if wants aether; then
    # Fill the compiled-rules cache, as a first run after installing would.
    "$aether" db info --db-cache "$ycache" --yara-rules "$rules" | tail -1
fi
if [ -z "${SUBSET:-}" ]; then
    members=$(find "$corpus/" -name '*.gz' -print0 | xargs -0 -r gzip -dc 2>/dev/null | wc -c)
    echo "inside the corpus's .gz files (scanned by aether only): $((members / 1000000)) MB"
fi

declare -A wall cpu rss flagged
for t in aether yr yara; do
    wants "$t" || continue
    case $t in
    aether) read -r wall[$t] cpu[$t] rss[$t] < <(repeat "$runs" "$work/yara.aether.out" "${acmd[@]}")
        sed -n 's/: .* FOUND$//p' "$work/yara.aether.out" | sort -u > "$work/yara.aether" ;;
    yr) read -r wall[$t] cpu[$t] rss[$t] < <(repeat "$runs" "$work/yara.yr.out" "$yr" scan -r --disable-console-logs -p "$threads" "$rules" "$corpus/")
        awk '{print $2}' "$work/yara.yr.out" | sort -u > "$work/yara.yr" ;;
    yara) read -r wall[$t] cpu[$t] rss[$t] < <(repeat "$runs" "$work/yara.yara.out" yara -w -r -p "$threads" "${all[@]}" "$corpus/")
        awk '{print $2}' "$work/yara.yara.out" | sort -u > "$work/yara.yara" ;;
    esac
    flagged[$t]=$(wc -l < "$work/yara.$t")
done

printf "%-10s %10s %12s %10s %10s %14s %14s\n" "" "wall" "throughput" "CPU" "peak RSS" "files flagged" "aether speedup"
for t in aether yr yara; do
    wants "$t" || continue
    awk -v name="$t" -v b="$bytes" -v s="${wall[$t]}" -v c="${cpu[$t]}" -v k="${rss[$t]}" -v f="${flagged[$t]}" \
        -v as="${wall[aether]:-}" 'BEGIN {
        r = (name == "aether" || as == "") ? "" : sprintf("%.2fx", s / as);
        printf "%-10s %9.2fs %7.1f MB/s %9.2fs %6.0f MiB %14d %14s\n", (name == "yr" ? "yr scan" : name), s, b / 1e6 / s, c, k / 1024, f, r;
    }'
done
if wants aether && wants yr; then
    echo "flagged by yr but not aether:"; comm -13 "$work/yara.aether" "$work/yara.yr" | head -10 || true
    echo "flagged by aether but not yr (members of archives count for aether):"; comm -23 "$work/yara.aether" "$work/yara.yr" | head -10 || true
fi
