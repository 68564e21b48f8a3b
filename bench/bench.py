#!/usr/bin/env python3
"""Whole-process benchmark of sembed against the Python baselines, interleaved, in one run.

For every round, each command runs once in turn (so drift in machine speed hits all alike); we report the
median wall time, the median peak RSS (from wait4, per process) and ratios to sembed.

Scenarios
  cold:  embed one sentence, whole process (files in page cache: a warm-up round is discarded)
  stsb:  embed the 2,758 STS-B sentences from a file, 2 threads
Baselines run only when importable: sentence-transformers (needs torch), and onnxruntime with an exported
model.onnx given by --onnx (see BENCHMARKS.md for setup). Nothing is skipped silently: each missing
baseline is named on stderr.

Usage: bench/bench.py [--rounds N] [--model DIR] [--onnx FILE] [--only cold|stsb]
"""
import argparse, os, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SENTENCE = "A man is playing a guitar."


def run(cmd, env=None):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{err}")
    return dt, ru.ru_maxrss / 1024.0  # MB


def python_ok(module):
    return subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode == 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--model", default=None, help="all-MiniLM-L6-v2 directory (default: fetch the test model)")
    ap.add_argument("--onnx", default=None, help="model.onnx exported from the same model")
    ap.add_argument("--only", choices=["cold", "stsb"], default=None)
    a = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    exe = os.path.join(ROOT, "target", "release", "sembed")
    model = a.model or subprocess.run([os.path.join(ROOT, "scripts", "fetch-test-model.sh")], check=True,
                                      capture_output=True, text=True).stdout.strip()
    tmp = tempfile.mkdtemp()
    stsb = os.path.join(tmp, "stsb.txt")
    rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(ROOT, "tests/data/stsb-test.tsv"), encoding="utf-8")]
    with open(stsb, "w", encoding="utf-8") as f:
        f.write("\n".join([r[5] for r in rows] + [r[6] for r in rows]) + "\n")
    n_sent = 2 * len(rows)

    py = sys.executable
    st_cold = f"from sentence_transformers import SentenceTransformer as S; S({model!r}, device='cpu').encode([{SENTENCE!r}])"
    st_file = (f"import torch; torch.set_num_threads(2); from sentence_transformers import SentenceTransformer as S; "
               f"S({model!r}, device='cpu').encode(open({stsb!r}).read().splitlines(), batch_size=32)")
    ort = os.path.join(ROOT, "bench", "ort_embed.py")

    scenarios = {
        "cold": [
            ("sembed (built-in f16)", [exe, "embed", SENTENCE]),
            ("sembed (model dir, f32)", [exe, "embed", "--model", model, SENTENCE]),
        ],
        "stsb": [
            ("sembed (built-in f16)", [exe, "embed", "--threads", "2", "--input", stsb, "-f", "f32"]),
            ("sembed (model dir, f32)", [exe, "embed", "--threads", "2", "--model", model, "--input", stsb, "-f", "f32"]),
        ],
    }
    if python_ok("sentence_transformers"):
        scenarios["cold"].append(("sentence-transformers", [py, "-c", st_cold]))
        scenarios["stsb"].append(("sentence-transformers", [py, "-c", st_file]))
    else:
        print("note: sentence-transformers not installed: baseline not run", file=sys.stderr)
    if a.onnx and python_ok("onnxruntime"):
        scenarios["cold"].append(("onnxruntime (Python)", [py, ort, a.onnx, model, "--text", SENTENCE]))
        scenarios["stsb"].append(("onnxruntime (Python)", [py, ort, a.onnx, model, "--input", stsb]))
    else:
        print("note: onnxruntime baseline not run (needs `pip install onnxruntime tokenizers numpy` and --onnx)",
              file=sys.stderr)

    for name, cmds in scenarios.items():
        if a.only and name != a.only:
            continue
        rounds = a.rounds if name == "cold" else max(3, a.rounds // 3)
        for _, c in cmds:  # warm-up: page cache, first-run effects
            run(c)
        times = {k: [] for k, _ in cmds}
        rss = {k: [] for k, _ in cmds}
        for _ in range(rounds):
            for k, c in cmds:
                dt, mb = run(c)
                times[k].append(dt)
                rss[k].append(mb)
        base = statistics.median(times[cmds[0][0]])
        print(f"\n## {name}: {'1 sentence, whole process' if name == 'cold' else f'{n_sent} STS-B sentences, 2 threads'}"
              f" (median of {rounds} interleaved rounds)")
        print("| system | median | sent/s | peak RSS | time / sembed built-in |")
        print("|---|---|---|---|---|")
        for k, _ in cmds:
            m = statistics.median(times[k])
            sps = f"{n_sent / m:.0f}" if name == "stsb" else "—"
            print(f"| {k} | {m * 1000:.1f} ms | {sps} | {statistics.median(rss[k]):.0f} MB | {m / base:.2f}× |")


if __name__ == "__main__":
    main()
