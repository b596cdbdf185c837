#!/usr/bin/env python3
"""Generates a large ClamAV database for benchmarks.

Default sizes follow the issue's benchmark: 1,000,000 MD5 (.hdb), 100,000 SHA256
(.hsb) and 50,000 body (.ndb) signatures. A few signatures are real: the digests
of some corpus files and byte strings taken from corpus files, so that both
scanners find something and the comparison covers the detection path, not only
the miss path. Deterministic for a given seed.

usage: gen_db.py OUT_DIR [--corpus DIR] [--md5 N] [--sha256 N] [--body N] [--seed S]
"""
import argparse
import hashlib
import os
import random


def body_signature(rng: random.Random) -> str:
    """A random hex signature using ClamAV's common forms."""
    def static(n):
        return "".join(f"{rng.randrange(256):02x}" for _ in range(n))

    parts = [static(rng.randint(6, 16))]
    for _ in range(rng.choice([0, 0, 0, 1, 1, 2])):
        parts.append(rng.choice(["??", "{4}", "{2-8}", "*", "(41|42|43)", "{-10}", "a?"]))
        parts.append(static(rng.randint(4, 12)))
    return "".join(parts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--corpus")
    ap.add_argument("--md5", type=int, default=1_000_000)
    ap.add_argument("--sha256", type=int, default=100_000)
    ap.add_argument("--body", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)

    real = []
    if a.corpus:
        for root, _, files in os.walk(a.corpus):
            for f in files:
                p = os.path.join(root, f)
                if os.path.isfile(p) and not os.path.islink(p):
                    real.append(p)
        real.sort()
        rng.shuffle(real)
    real_hash = real[:200]
    # Body signatures from binaries only, where a random 24-byte chunk is
    # specific to its file (documentation pages share boilerplate).
    real_body = [p for p in real[200:] if p.endswith((".so", ".rlib", ".a")) or ".so." in p][:60]

    with open(os.path.join(a.out, "bench.hdb"), "w") as f:
        for p in real_hash[:100]:
            data = open(p, "rb").read()
            f.write(f"{hashlib.md5(data).hexdigest()}:{len(data)}:Bench.Real.Md5-{len(data)}\n")
        for i in range(a.md5 - min(100, len(real_hash))):
            size = rng.randint(64, 8 << 20)
            f.write(f"{rng.getrandbits(128):032x}:{size}:Bench.Md5.Sig-{i}\n")
    with open(os.path.join(a.out, "bench.hsb"), "w") as f:
        for p in real_hash[100:200]:
            data = open(p, "rb").read()
            f.write(f"{hashlib.sha256(data).hexdigest()}:{len(data)}:Bench.Real.Sha256-{len(data)}\n")
        for i in range(a.sha256 - max(0, len(real_hash) - 100)):
            size = rng.randint(64, 8 << 20)
            f.write(f"{rng.getrandbits(256):064x}:{size}:Bench.Sha256.Sig-{i}\n")
    with open(os.path.join(a.out, "bench.ndb"), "w") as f:
        n_real = 0
        for p in real_body:
            data = open(p, "rb").read()
            if len(data) < 4096:
                continue
            at = rng.randrange(0, len(data) - 64)
            chunk = data[at:at + 24]
            if len(set(chunk)) < 16:
                continue
            f.write(f"Bench.Real.Body-{n_real}:0:*:{chunk.hex()}\n")
            n_real += 1
        for i in range(a.body - n_real):
            f.write(f"Bench.Body.Sig-{i}:0:*:{body_signature(rng)}\n")


if __name__ == "__main__":
    main()
