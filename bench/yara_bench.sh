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
# the rules; it also scans inside the corpus's few archives, which the others
# do not. Each tool runs RUNS times (default 3) with THREADS threads (default
# 2); printed: median wall time, MB/s, peak RSS, ratios to aether, and how many
# files each tool flagged (aether's list must equal yr's, archives aside).
#
# usage: bench/yara_bench.sh [RULES_DIR] [RUNS]
#        YR=/path/to/yr to use a given yr; otherwise it is built once with
#        `cargo install yara-x-cli` into bench/work/tools.
set -euo pipefail
cd "$(dirname "$0")/.."
work=bench/work
src=${1:-$work/yara-rules-src}
runs=${2:-3}
threads=${THREADS:-2}
corpus=$work/corpus
rules=$work/yara-rules
[ -d "$src/malware" ] || { echo "yara_bench: no Yara-Rules checkout at $src (git clone https://github.com/Yara-Rules/rules $src)" >&2; exit 2; }
command -v yara >/dev/null || { echo "yara_bench: yara is not installed (apt-get install yara)" >&2; exit 2; }
bench/build_corpus.sh "$corpus"
cargo build --release -q -p aether
aether=target/release/aether
yr=${YR:-$work/tools/bin/yr}
if [ ! -x "$yr" ]; then
    echo "yara_bench: building yr (yara-x-cli 1.22.1) into $work/tools"
    cargo install -q --locked yara-x-cli --version 1.22.1 --root "$work/tools"
fi

# Keep the rule files all three compile, one file at a time.
rm -rf "$rules"
mkdir -p "$rules"
empty=$work/empty
: > "$empty"
kept=0 dropped=0
for f in "$src"/{malware,packers,webshells,exploit_kits,maldocs,cve_rules,crypto,capabilities,antidebug_antivm}/*.yar; do
    if yara -w "$f" "$empty" >/dev/null 2>&1 &&
        "$yr" compile -o /dev/null "$f" >/dev/null 2>&1 &&
        "$aether" scan --no-summary --yara-rules "$f" "$empty" >/dev/null 2>&1; then
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
    [ -n "$bad" ] || bad=$( { "$aether" scan --no-summary --yara-rules "$rules" "$empty" 2>&1 >/dev/null || true; } | first_error_file)
    [ -n "$bad" ] || break
    rm -f "$bad"
    kept=$((kept - 1)) dropped=$((dropped + 1))
done
nrules=$(cat "$rules"/*.yar | grep -cE '^[[:space:]]*((private|global)[[:space:]]+)*rule[[:space:]]')
# yara takes the rule files as arguments (one namespace), yr the directory.
mapfile -t all < <(ls "$rules"/*.yar)

bytes=$(find "$corpus/" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
files=$(find "$corpus/" -type f | wc -l)
echo "rules: $nrules rules in $kept files ($dropped files dropped: not compiled by all three); corpus: $files files, $((bytes / 1000000)) MB; $threads threads"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
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

# Warm the page cache and keep each tool's flagged files.
"$aether" scan --no-summary -r -i -j "$threads" --yara-rules "$rules" "$corpus/" 2>/dev/null |
    sed -n 's/: .* FOUND$//p' | sort -u > "$work/yara.aether" || true
"$yr" scan -r --disable-console-logs -p "$threads" "$rules" "$corpus/" 2>/dev/null |
    awk '{print $2}' | sort -u > "$work/yara.yr" || true
yara -w -r -p "$threads" "${all[@]}" "$corpus/" 2>/dev/null | awk '{print $2}' | sort -u > "$work/yara.yara" || true

read -r a_s a_k < <(repeat "$runs" "$aether" scan --no-summary -r -i -j "$threads" --yara-rules "$rules" "$corpus/")
read -r r_s r_k < <(repeat "$runs" "$yr" scan -r --disable-console-logs -p "$threads" "$rules" "$corpus/")
read -r y_s y_k < <(repeat "$runs" yara -w -r -p "$threads" "${all[@]}" "$corpus/")

awk -v b="$bytes" -v as="$a_s" -v rs="$r_s" -v ys="$y_s" -v ak="$a_k" -v rk="$r_k" -v yk="$y_k" \
    -v af="$(wc -l < "$work/yara.aether")" -v rf="$(wc -l < "$work/yara.yr")" -v yf="$(wc -l < "$work/yara.yara")" 'BEGIN {
    printf "%-10s %10s %12s %10s %14s %14s\n", "", "wall", "throughput", "peak RSS", "files flagged", "aether speedup";
    printf "%-10s %9.2fs %7.1f MB/s %6.0f MiB %14d %14s\n", "aether", as, b / 1e6 / as, ak / 1024, af, "";
    printf "%-10s %9.2fs %7.1f MB/s %6.0f MiB %14d %13.2fx\n", "yr scan", rs, b / 1e6 / rs, rk / 1024, rf, rs / as;
    printf "%-10s %9.2fs %7.1f MB/s %6.0f MiB %14d %13.2fx\n", "yara", ys, b / 1e6 / ys, yk / 1024, yf, ys / as;
}'
echo "flagged by yr but not aether:"; comm -13 "$work/yara.aether" "$work/yara.yr" | head -10 || true
echo "flagged by aether but not yr (members of archives count for aether):"; comm -23 "$work/yara.aether" "$work/yara.yr" | head -10 || true
