#!/usr/bin/env python3
"""`sembed embed --cache` against computing, in one run, as ratios.

100,000 distinct texts (two STS Benchmark sentences each, picked by a fixed pseudo-random
sequence), embedded without the cache, then with it twice: all misses (the run that fills it) and
all hits. With the built-in transformer, and with a static (Model2Vec) model, which bypasses the
cache: where the line is shows in the per-text figures printed — the all-hit run's time per text
(a lookup) against the static model's computing time per text.

    python3 bench/cache.py [--n 100000] [--runs 3]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def texts(n):
    rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(HERE, "..", "tests", "data", "stsb-test.tsv"))]
    s = [r[5] for r in rows] + [r[6] for r in rows]
    x = 0x9E3779B97F4A7C15
    out, seen = [], set()
    while len(out) < n:
        x ^= (x << 13) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 7
        x ^= (x << 17) & 0xFFFFFFFFFFFFFFFF
        a = x % len(s)
        x ^= (x << 13) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 7
        x ^= (x << 17) & 0xFFFFFFFFFFFFFFFF
        b = x % len(s)
        t = f"{s[a]} {s[b]}"
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def timed(cmd, env=None):
    t = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode:
        sys.exit(p.stderr)
    return time.time() - t, p.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sembed", default="target/release/sembed")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--static", default=os.path.join(HERE, "..", "tests", "data", "m2v-minilm-256"))
    a = ap.parse_args()
    sembed = os.path.abspath(a.sembed)
    with tempfile.TemporaryDirectory() as tmp:
        inp = os.path.join(tmp, "texts.txt")
        with open(inp, "w") as f:
            f.write("\n".join(texts(a.n)) + "\n")
        for name, model in [("built-in transformer", []), ("static (Model2Vec)", ["-m", a.static])]:
            cache = os.path.join(tmp, "cache-" + name.split()[0])
            base = [sembed, "embed", "-i", inp, "-f", "f32", "-o", os.devnull, *model]
            plain = min(timed(base)[0] for _ in range(1 if not model else a.runs))
            fill, _ = timed(base + ["--cache-dir", cache])
            hits = []
            for _ in range(a.runs):
                t, err = timed(base + ["--cache-dir", cache])
                hits.append(t)
            hit = min(hits)
            note = [l for l in err.splitlines() if "cache" in l]
            print(f"{name}: {a.n} texts; computed {plain:.2f} s ({plain / a.n * 1e6:.1f} us/text); "
                  f"--cache filling {fill:.2f} s ({fill / plain:.2f}x computed); --cache all hits {hit:.2f} s "
                  f"({hit / a.n * 1e6:.1f} us/text) = {plain / hit:.1f}x faster than computing  [{'; '.join(note)}]")


if __name__ == "__main__":
    main()
