#!/usr/bin/env python3
"""Whole-process benchmark of sembed against the Python baselines, interleaved, in one run.

For every round, each command runs once in turn (so drift in machine speed hits all alike); we report the
median wall time, the median peak RSS (from wait4, per process) and ratios to sembed.

Scenarios
  cold:         embed one sentence with all-MiniLM-L6-v2, whole process (files in page cache: a warm-up
                round is discarded)
  stsb:         embed the 2,758 STS-B sentences from a file, 2 threads
  static-cold:  one sentence with the Model2Vec model tests/data/m2v-minilm-256
  static-stsb:  the STS-B sentences repeated 100 times (275,800 texts) with that model, 2 threads
Baselines run only when available: sentence-transformers (needs torch), onnxruntime with an exported
model.onnx given by --onnx, Python model2vec (--python-m2v PYTHON, e.g. the venv scripts/test.sh makes),
model2vec-rs 0.4 (bench/model2vec-rs, built here when cargo can fetch it). See BENCHMARKS.md. Nothing
is skipped silently: each missing baseline is named on stderr.

Usage: bench/bench.py [--rounds N] [--model DIR] [--onnx FILE] [--python-m2v PYTHON] [--only SCENARIO]
"""
import argparse, os, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SENTENCE = "A man is playing a guitar."


def run(cmd):
    """Wall time of one whole-process run (seconds)."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{p.stderr.decode(errors='replace')}")
    return dt


def peak_rss_mb(cmd):
    """Peak RSS (MB) of one run, from GNU time's %M (VmHWM: anonymous + file-backed resident pages).
    Measured in a separate, untimed run: a child forked from this Python process would report
    Python's own pages in ru_maxrss."""
    if not os.path.exists("/usr/bin/time"):
        return None
    with tempfile.NamedTemporaryFile("r") as f:
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", f.name, *cmd], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
        return int(f.read().split()[-1]) / 1024.0


def python_ok(module):
    return subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode == 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--model", default=None, help="all-MiniLM-L6-v2 directory (default: fetch the test model)")
    ap.add_argument("--onnx", default=None, help="model.onnx exported from the same model")
    ap.add_argument("--python-m2v", default=None, help="a python with model2vec 0.10 installed")
    ap.add_argument("--only", choices=["cold", "stsb", "static-cold", "static-stsb"], default=None)
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
    stsb100 = os.path.join(tmp, "stsb100.txt")
    with open(stsb100, "w", encoding="utf-8") as f:
        f.write(open(stsb, encoding="utf-8").read() * 100)
    m2v = os.path.join(ROOT, "tests", "data", "m2v-minilm-256")

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
        "static-cold": [("sembed (Model2Vec)", [exe, "embed", "--model", m2v, SENTENCE])],
        "static-stsb": [("sembed (Model2Vec)", [exe, "embed", "--threads", "2", "--model", m2v, "--input", stsb100, "-f", "f32"])],
    }
    # What launching any process costs from here (Python's subprocess + exec): read cold-start rows
    # against it; hyperfine -N measures closer to the bare process.
    floor = ("process floor: /bin/true", ["/bin/true"])
    scenarios["cold"].append(floor)
    scenarios["static-cold"].append(floor)
    sizes = {"stsb": n_sent, "static-stsb": 100 * n_sent}
    m2vrs = os.path.join(ROOT, "bench", "model2vec-rs")
    m2vrs_target = os.environ.get("CARGO_TARGET_DIR", os.path.join(m2vrs, "target"))
    built = subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=m2vrs, env={**os.environ, "CARGO_TARGET_DIR": m2vrs_target}).returncode == 0
    m2vrs_exe = os.path.join(m2vrs_target, "release", "model2vec-rs-bench")
    if built:
        scenarios["static-cold"].append(("model2vec-rs 0.4", [m2vrs_exe, m2v, "--text", SENTENCE]))
        scenarios["static-stsb"].append(("model2vec-rs 0.4", [m2vrs_exe, m2v, "--input", stsb100]))
    else:
        print("note: model2vec-rs baseline not built (bench/model2vec-rs)", file=sys.stderr)
    if a.python_m2v:
        load = f"from model2vec import StaticModel as S; m = S.from_pretrained({m2v!r})"
        scenarios["static-cold"].append(("Python model2vec 0.10", [a.python_m2v, "-c", f"{load}; m.encode([{SENTENCE!r}])"]))
        scenarios["static-stsb"].append(("Python model2vec 0.10", [a.python_m2v, "-c", f"{load}; m.encode(open({stsb100!r}).read().splitlines())"]))
    else:
        print("note: Python model2vec baseline not run (pass --python-m2v PYTHON)", file=sys.stderr)
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
        rounds = a.rounds if "cold" in name else max(3, a.rounds // 3)
        for _, c in cmds:  # warm-up: page cache, first-run effects
            run(c)
        if "stsb" in name:
            print(f"running {name} ({rounds} rounds)...", file=sys.stderr)
        times = {k: [] for k, _ in cmds}
        for _ in range(rounds):
            for k, c in cmds:
                times[k].append(run(c))
        rss = {k: peak_rss_mb(c) for k, c in cmds}
        base = statistics.median(times[cmds[0][0]])
        what = "1 sentence, whole process" if "cold" in name else f"{sizes[name]} sentences, 2 threads, whole process"
        print(f"\n## {name}: {what} (median of {rounds} interleaved rounds)")
        print(f"| system | median | sent/s | peak RSS | time / {cmds[0][0]} |")
        print("|---|---|---|---|---|")
        for k, _ in cmds:
            m = statistics.median(times[k])
            sps = f"{sizes[name] / m:.0f}" if name in sizes else "—"
            mb = "n/a (no /usr/bin/time)" if rss[k] is None else f"{rss[k]:.0f} MB"
            print(f"| {k} | {m * 1000:.1f} ms | {sps} | {mb} | {m / base:.2f}× |")


if __name__ == "__main__":
    main()
