#!/usr/bin/env python3
"""The table of bench/peers.sh's run: medians per system and sembed's ratios to each peer.

  bench/peers_ratios.py PEERS_OUT      (reads bench_one.json and bench_stsb.json there, and the
                                       hyperfine_cold_*.json of peers.sh's per-system cold-start blocks)

Cold start: whole process, one sentence (peer time / sembed time: how many times faster sembed is).
STS-B: whole-process time of the 2,758-sentence run (peer / sembed), and peak RSS.
"""
import json
import os
import sys

out = sys.argv[1]
one = json.load(open(os.path.join(out, "bench_one.json")))
stsb = json.load(open(os.path.join(out, "bench_stsb.json")))
ours = {"built-in": "sembed-bi", "f32 dir": "sembed-dir", "static": "sembed-static"}
peers = ["candle", "ort-rs", "fastembed", "ort-py", "st", "m2v-rs", "m2v-py"]

print("| system | cold start, 1 sentence (ms) | STS-B whole process (s) | STS-B sent/s (whole process) | peak RSS STS-B (MB) |")
print("|---|---|---|---|---|")
for s in list(ours.values()) + ["sembed-bi-avx512", "sembed-dir-avx512"] + peers:
    c = one.get(s, {}).get("wall_ms_median")
    t = stsb.get(s, {}).get("wall_ms_median")
    r = stsb.get(s, {}).get("rss_mb_median")
    print(f"| {s} | {c:.1f} |" if c else f"| {s} | – |", end="")
    print(f" {t / 1000:.3f} | {2758 / (t / 1000):.0f} | {r:.0f} |" if t else " – | – | – |")

print()
def ratio_table(title, pair):
    """Peer time / sembed time for the two sembed systems `pair`, cold start and STS-B."""
    print(f"| {title} | cold start: built-in / f32 dir (× faster) | STS-B: built-in / f32 dir (× faster) |")
    print("|---|---|---|")
    for p in ["candle", "ort-rs", "fastembed", "ort-py", "st"]:
        cells = []
        for table in (one, stsb):
            ratios = [table[p]["wall_ms_median"] / table[o]["wall_ms_median"]
                      for o in pair if o in table and p in table]
            cells.append(" / ".join(f"{x:.2f}" for x in ratios) or "–")
        print(f"| {p} | {cells[0]} | {cells[1]} |")


ratio_table("sembed vs", ("sembed-bi", "sembed-dir"))
if "sembed-bi-avx512" in stsb:
    print()
    ratio_table("sembed capped at AVX-512 (no AMX) vs", ("sembed-bi-avx512", "sembed-dir-avx512"))
    print()
for p in ["m2v-rs", "m2v-py"]:
    cells = []
    for table in (one, stsb):
        if p in table and "sembed-static" in table:
            cells.append(f"{table[p]['wall_ms_median'] / table['sembed-static']['wall_ms_median']:.2f}")
        else:
            cells.append("–")
    print(f"| {p} (static: sembed's Model2Vec) | {cells[0]} | {cells[1]} |")
if "true" in one:
    print(f"\n/bin/true: {one['true']['wall_ms_median']:.2f} ms (process start floor)")

# Cold start per system in its own hyperfine block (files cached): medians and ratios.
hf = {}
for name in ("hyperfine_cold_native.json", "hyperfine_cold_python.json"):
    path = os.path.join(out, name)
    if os.path.exists(path):
        for r in json.load(open(path))["results"]:
            hf[r["command"]] = r
if hf:
    print()
    print("Cold start, 1 sentence, each system in its own hyperfine block after warm-up (median ms, mean ± sd):")
    print()
    print("| system | median | mean ± sd | runs |")
    print("|---|---|---|---|")
    for s, r in hf.items():
        print(f"| {s} | {r['median'] * 1000:.1f} | {r['mean'] * 1000:.1f} ± {r['stddev'] * 1000:.1f} | {len(r['times'])} |")
    print()
    print("| sembed vs (median / median) | built-in | f32 dir | static |")
    print("|---|---|---|---|")
    for p in ["candle", "ort-rs", "fastembed", "ort-py", "st", "m2v-rs", "m2v-py"]:
        if p not in hf:
            continue
        cells = []
        for o in ("sembed-bi", "sembed-dir", "sembed-static"):
            static_peer = p.startswith("m2v")
            if o in hf and (o == "sembed-static") == static_peer:
                cells.append(f"{hf[p]['median'] / hf[o]['median']:.1f}×")
            else:
                cells.append("–")
        print(f"| {p} | " + " | ".join(cells) + " |")
