#!/usr/bin/env bash
# Builds the benchmark corpus: at least 1 GB and 20,000 files of real content
# (the Rust toolchain, Python's standard library, shared libraries and
# documentation from /usr), a few zip and tar.gz archives made from it,
# Debian's clamav-testfiles and EICAR. Deterministic for a given machine.
#
# usage: bench/build_corpus.sh OUT_DIR
set -euo pipefail
out=${1:?usage: build_corpus.sh OUT_DIR}
[ -e "$out/.complete" ] && { echo "corpus: $out (exists)"; exit 0; }
rm -rf "$out"
mkdir -p "$out"

# Copies up to MAX files (sorted, each under 50 MB) of SRC into DEST.
copy_some() {
    local src=$1 dest=$2 max=$3
    [ -d "$src" ] || { echo "corpus: $src missing, skipped" >&2; return 0; }
    mkdir -p "$dest"
    (cd "$src" && find . -type f -size -50M -print0 | sort -z | head -z -n "$max" |
        xargs -0 -r cp --parents -t "$dest" 2>/dev/null) || true
}

rust=$(rustc --print sysroot 2>/dev/null || echo "$HOME/.rustup/toolchains/stable-x86_64-unknown-linux-gnu")
copy_some "$rust/lib" "$out/rust-lib" 100000
copy_some "$rust/share/doc" "$out/rust-doc" 14000
copy_some /usr/lib/python3.11 "$out/python3.11" 100000
copy_some /usr/lib/x86_64-linux-gnu "$out/usr-lib" 3000
copy_some /usr/share/doc "$out/usr-share-doc" 4000
if [ -d /usr/share/clamav-testfiles ]; then cp -r /usr/share/clamav-testfiles "$out/"; fi
printf 'X5O!P%%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' > "$out/eicar.com"

# Archives of real content, one nested.
mkdir -p "$out/archives"
(cd "$out/python3.11" && tar czf "$out/archives/python-email.tar.gz" ./email 2>/dev/null || true)
if command -v zip >/dev/null; then
    (cd "$out/python3.11" && zip -qr "$out/archives/python-json.zip" ./json && zip -qr "$out/archives/python-asyncio.zip" ./asyncio) || true
    (cd "$out/archives" && zip -q nested.zip python-json.zip eicar 2>/dev/null) || true
fi

files=$(find "$out" -type f | wc -l)
bytes=$(du -sb "$out" | cut -f1)
echo "corpus: $out: $files files, $((bytes / 1000000)) MB"
[ "$files" -ge 20000 ] || echo "corpus: warning: fewer than 20,000 files" >&2
[ "$bytes" -ge 1000000000 ] || echo "corpus: warning: under 1 GB" >&2
touch "$out/.complete"
