#!/usr/bin/env python3
"""Side by side: two builds of sembed (say the previous commit and this one), interleaved round by round
on the same machine, so drift in the host's speed hits both alike. Reports medians and new/old ratios.

  cold        one sentence, whole process (built-in model; f32 model directory; Model2Vec)
  stsb        the 2,758 STS-B sentences from a file, 2 threads, whole process (built-in; f32 directory)
  static      the STS-B sentences × 100 (275,800 texts) with the Model2Vec model, 2 threads, whole process
  latency     warm single-sentence latency in process: each build's `cargo bench --bench latency`
              executable (pass --old-bench / --new-bench), its own printed medians

Usage:
  bench/ab.py OLD_SEMBED NEW_SEMBED [--rounds N] [--model DIR] [--old-bench EXE --new-bench EXE]

Build an old commit beside the tree without touching it:
  git worktree add /tmp/sembed-old REV && (cd /tmp/sembed-old && CARGO_TARGET_DIR=/tmp/sembed-old-target \\
      cargo build --release && CARGO_TARGET_DIR=/tmp/sembed-old-target cargo bench --bench latency --no-run)
"""
import argparse, os, re, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SENTENCE = "A man is playing a guitar."


def wall(cmd, env=None):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{p.stderr.decode(errors='replace')}")
    return dt


def peak_rss_mb(cmd):
    with tempfile.NamedTemporaryFile("r") as f:
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", f.name, *cmd], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
        return int(f.read().split()[-1]) / 1024.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--model", default=None)
    ap.add_argument("--old-bench", default=None)
    ap.add_argument("--new-bench", default=None)
    ap.add_argument("--only", default=None, help="comma-separated: cold,stsb,static,latency")
    a = ap.parse_args()
    only = set(a.only.split(",")) if a.only else {"cold", "stsb", "static", "latency"}
    model = a.model or subprocess.run([os.path.join(ROOT, "scripts", "fetch-test-model.sh")], check=True,
                                      capture_output=True, text=True).stdout.strip()
    m2v = os.path.join(ROOT, "tests", "data", "m2v-minilm-256")
    tmp = tempfile.mkdtemp()
    rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(ROOT, "tests/data/stsb-test.tsv"), encoding="utf-8")]
    stsb = os.path.join(tmp, "stsb.txt")
    with open(stsb, "w", encoding="utf-8") as f:
        f.write("\n".join([r[5] for r in rows] + [r[6] for r in rows]) + "\n")
    stsb100 = os.path.join(tmp, "stsb100.txt")
    with open(stsb100, "w", encoding="utf-8") as f:
        f.write(open(stsb, encoding="utf-8").read() * 100)
    out = os.path.join(tmp, "out.f32")
    n = 2 * len(rows)
    builds = [("old", a.old), ("new", a.new)]
    cases = []
    if "cold" in only:
        cases += [("cold, built-in", lambda e: [e, "embed", SENTENCE], None, 5 * a.rounds),
                  ("cold, f32 dir", lambda e: [e, "embed", "--model", model, SENTENCE], None, 5 * a.rounds),
                  ("cold, Model2Vec", lambda e: [e, "embed", "--model", m2v, SENTENCE], None, 5 * a.rounds)]
    if "stsb" in only:
        cases += [("STS-B, built-in", lambda e: [e, "embed", "-t", "2", "-i", stsb, "-f", "f32", "-o", out], n, a.rounds),
                  ("STS-B, f32 dir", lambda e: [e, "embed", "-t", "2", "-m", model, "-i", stsb, "-f", "f32", "-o", out], n, a.rounds)]
    if "static" in only:
        cases += [("STS-B×100, Model2Vec", lambda e: [e, "embed", "-t", "2", "-m", m2v, "-i", stsb100, "-f", "f32", "-o", out], 100 * n, 3 * a.rounds)]
    print(f"old: {a.old}\nnew: {a.new}")
    print("| case | old median | new median | new / old | old peak RSS | new peak RSS |")
    print("|---|---|---|---|---|---|")
    for name, cmd, count, rounds in cases:
        for _, e in builds:
            wall(cmd(e))  # warm-up: page cache
        t = {k: [] for k, _ in builds}
        for r in range(rounds):
            order = builds if r % 2 == 0 else builds[::-1]
            for k, e in order:
                t[k].append(wall(cmd(e)))
        med = {k: statistics.median(v) for k, v in t.items()}
        rss = {k: peak_rss_mb(cmd(e)) for k, e in builds}
        unit = lambda s: f"{s * 1e3:.2f} ms" if count is None else f"{s:.3f} s ({count / s:.0f}/s)"
        print(f"| {name} | {unit(med['old'])} | {unit(med['new'])} | {med['new'] / med['old']:.3f} | "
              f"{rss['old']:.0f} MB | {rss['new']:.0f} MB |", flush=True)
    if "latency" in only and a.old_bench and a.new_bench:
        pat = re.compile(r"^(.*?): (warm latency, 1 sentence, \d thread\(s\)): median ([\d.]+) ms", re.M)
        lat = {k: {} for k, _ in builds}
        for r in range(3):
            for k, exe in (builds if r % 2 == 0 else builds[::-1]):
                exe = a.old_bench if k == "old" else a.new_bench
                p = subprocess.run([exe, "--bench"], capture_output=True, text=True,
                                   env={**os.environ, "SEMBED_TEST_MODEL": model})
                for m in pat.finditer(p.stdout):
                    lat[k].setdefault(f"{m.group(1)}: {m.group(2)}", []).append(float(m.group(3)))
        for key in lat["new"]:
            o, nw = statistics.median(lat["old"].get(key, [float("nan")])), statistics.median(lat["new"][key])
            print(f"| {key} (in process, median of 3 runs' medians) | {o:.3f} ms | {nw:.3f} ms | {nw / o:.3f} | | |")


if __name__ == "__main__":
    main()
