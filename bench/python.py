#!/usr/bin/env python3
"""The Python package against Python sentence-transformers and against the sembed CLI, side by side in
one run (interleaved rounds, medians).

Parts:
  start   a fresh interpreter that imports the package, loads all-MiniLM-L6-v2 and encodes one sentence
          (`SentenceTransformer("all-MiniLM-L6-v2")`: the built-in copy, since the Hugging Face cache is
          pointed at an empty folder; and the f32 folder of scripts/fetch-test-model.sh), against the same
          three lines with sentence-transformers 6.2 + torch (f32 folder, HF_HUB_OFFLINE=1) and the CLI
          (`sembed embed TEXT`). Also `python -c pass`, `import numpy` and `import sembed` alone, since the
          interpreter and numpy are part of any Python user's start. Wall ms per process and peak RSS.
  stsb    all 2,758 STS-B sentences: `model.encode(sentences)` timed inside the process (sentences/s), and
          the whole process (start, load, encode); the CLI's whole process `sembed embed --input FILE
          --format npy -o /dev/null` on the same model; sentence-transformers' `encode` inside its process.
          The target: the package's throughput within 5% of the CLI's.
  parity  (not a timing) tests/interop/st_parity.py in the sentence-transformers venv, with the package
          installed from this checkout into a temporary folder on PYTHONPATH: return types, shapes and
          values of encode() over a matrix of options, errors, similarity, tokenize and sembed.util
          against the real sentence-transformers (the test suite's venv has no torch).

The package comes from the venv of python/tests/run.sh (${SEMBED_TEST_MODELS:-~/.cache/sembed/test-models}/
py-sembed, built from this checkout by `pip install ./python`; run that first); sentence-transformers from
${SEMBED_BENCH_VENV:-~/.cache/sembed/bench-venv} (bench/serve.py --setup-baseline makes it). Without that
venv the sentence-transformers rows are left out, and said so.

Usage: bench/python.py [--rounds 7] [--st-rounds 3] [--parts start,stsb,parity] [--json FILE]
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.environ.get("SEMBED_TEST_MODELS", os.path.expanduser("~/.cache/sembed/test-models"))
SEMBED_PY = os.path.join(MODELS, "py-sembed", "bin", "python")
ST_PY = os.path.join(os.environ.get("SEMBED_BENCH_VENV", os.path.expanduser("~/.cache/sembed/bench-venv")), "bin", "python")
CLI = os.path.join(ROOT, "target", "release", "sembed")
SENTENCE = "A man is playing a guitar."


def run(cmd, env=None):
    """(wall seconds, peak RSS MB, stdout) of one process."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        sys.exit(f"failed ({status}): {' '.join(cmd)}\n{err.decode(errors='replace')}")
    return wall, usage.ru_maxrss / 1024, out.decode()


def host():
    info = {}
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        k, _, v = line.partition(":")
        if k.strip() in ("Model name", "CPU(s)", "L2 cache", "L3 cache"):
            info[k.strip()] = v.strip()
    return info


def fmt(xs, scale=1000, digits=1):
    xs = sorted(xs)
    return f"{statistics.median(xs) * scale:.{digits}f} (min {xs[0] * scale:.{digits}f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--st-rounds", type=int, default=3)
    ap.add_argument("--parts", default="start,stsb,parity")
    ap.add_argument("--json")
    args = ap.parse_args()
    parts = args.parts.split(",")
    for path, what in [(SEMBED_PY, "the package's venv (run python/tests/run.sh)"), (CLI, "target/release/sembed (cargo build --release)")]:
        if not os.path.exists(path):
            sys.exit(f"missing {path}: {what}")
    have_st = os.path.exists(ST_PY)
    if not have_st:
        print(f"NOTE: no sentence-transformers venv at {ST_PY}: its rows are left out (bench/serve.py --setup-baseline)")
    f32 = subprocess.run([os.path.join(ROOT, "scripts", "fetch-test-model.sh")], capture_output=True, text=True, check=True).stdout.strip()
    empty_cache = tempfile.mkdtemp(prefix="sembed-bench-hf-")
    env = dict(os.environ, HF_HUB_CACHE=empty_cache, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    results = {"host": host(), "f32_dir": f32}
    print("host:", results["host"])

    if "start" in parts:
        one = "from sembed import SentenceTransformer; SentenceTransformer({!r}).encode({!r})"
        cases = {
            "python -c pass": [SEMBED_PY, "-c", "pass"],
            "python -c 'import numpy'": [SEMBED_PY, "-c", "import numpy"],
            "python -c 'import sembed'": [SEMBED_PY, "-c", "import sembed"],
            "sembed (Python), built-in": [SEMBED_PY, "-c", one.format("all-MiniLM-L6-v2", SENTENCE)],
            "sembed (Python), f32 folder": [SEMBED_PY, "-c", one.format(f32, SENTENCE)],
            "sembed CLI, built-in": [CLI, "embed", SENTENCE],
            "sembed CLI, f32 folder": [CLI, "embed", "--model", f32, SENTENCE],
        }
        st_case = [ST_PY, "-c", "from sentence_transformers import SentenceTransformer; "
                   f"SentenceTransformer({f32!r}, device='cpu').encode({SENTENCE!r})"]
        for cmd in cases.values():  # warm the page cache and the prepared-weights cache
            run(cmd, env)
        times = {k: [] for k in cases}
        rss = {k: [] for k in cases}
        if have_st:
            run(st_case, env)
            times["sentence-transformers 6.2 + torch, f32 folder"] = []
            rss["sentence-transformers 6.2 + torch, f32 folder"] = []
        for r in range(args.rounds):
            for k, cmd in cases.items():
                w, m, _ = run(cmd, env)
                times[k].append(w)
                rss[k].append(m)
            if have_st and r < args.st_rounds:
                w, m, _ = run(st_case, env)
                times["sentence-transformers 6.2 + torch, f32 folder"].append(w)
                rss["sentence-transformers 6.2 + torch, f32 folder"].append(m)
        # Where a cold Python start goes, from inside one process (median of the rounds).
        probe = ("import time; t0 = time.perf_counter(); import numpy; t1 = time.perf_counter(); "
                 "from sembed import SentenceTransformer; t2 = time.perf_counter(); "
                 "m = SentenceTransformer('all-MiniLM-L6-v2'); t3 = time.perf_counter(); m.encode({!r}); "
                 "t4 = time.perf_counter(); print(t1 - t0, t2 - t1, t3 - t2, t4 - t3)").format(SENTENCE)
        steps = [list(map(float, run([SEMBED_PY, "-c", probe], env)[2].split())) for _ in range(args.rounds)]
        split = {n: statistics.median(s[i] for s in steps) * 1000 for i, n in enumerate(["import numpy", "import sembed", "load", "encode"])}
        print("\n### Fresh process: import, load all-MiniLM-L6-v2, encode one sentence\n")
        print("| | wall ms, median (min) | peak RSS MB |")
        print("|---|---|---|")
        for k in times:
            print(f"| {k} | {fmt(times[k])} | {statistics.median(rss[k]):.0f} |")
        print("\nInside the built-in run (medians, ms): " + ", ".join(f"{k} {v:.1f}" for k, v in split.items()))
        base = statistics.median(times["sembed (Python), built-in"])
        if have_st:
            st = statistics.median(times["sentence-transformers 6.2 + torch, f32 folder"])
            print(f"sentence-transformers / sembed (Python, built-in): {st / base:.0f}x; "
                  f"/ f32 folder: {st / statistics.median(times['sembed (Python), f32 folder']):.0f}x")
        results["start"] = {"wall_s": times, "rss_mb": rss, "split_ms": split}

    if "stsb" in parts:
        text = open(os.path.join(ROOT, "tests", "data", "stsb-test.tsv"), encoding="utf-8").read()
        rows = [line.split("\t") for line in text.split("\n") if line]
        sentences = [r[5] for r in rows] + [r[6] for r in rows]
        tmp = tempfile.mkdtemp(prefix="sembed-bench-stsb-")
        path = os.path.join(tmp, "stsb.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(sentences) + "\n")
        enc = ("import time, sys; from {mod} import SentenceTransformer; "
               "s = open({path!r}, encoding='utf-8').read().split('\\n')[:-1]; m = SentenceTransformer({model!r}{dev}); "
               "m.encode(s[:64]); t = time.perf_counter(); e = m.encode(s); d = time.perf_counter() - t; "
               "assert e.shape[0] == len(s) == 2758; print(d)")
        cases = {}
        for label, model in [("built-in", "all-MiniLM-L6-v2"), ("f32 folder", f32)]:
            cases[f"sembed (Python), {label}"] = [SEMBED_PY, "-c", enc.format(mod="sembed", path=path, model=model, dev="")]
            cli_model = [] if label == "built-in" else ["--model", f32]
            cases[f"sembed CLI, {label}"] = [CLI, "embed", *cli_model, "--input", path, "--format", "npy", "-o", "/dev/null"]
        st_case = [ST_PY, "-c", enc.format(mod="sentence_transformers", path=path, model=f32, dev=", device='cpu'")]
        whole = {k: [] for k in cases}
        inner = {k: [] for k in cases if "Python" in k}
        rss = {k: [] for k in cases}
        for r in range(args.rounds):
            for k, cmd in cases.items():
                w, m, out = run(cmd, env)
                whole[k].append(w)
                rss[k].append(m)
                if k in inner:
                    inner[k].append(float(out.strip()))
        st_inner, st_rss = [], []
        if have_st:
            for _ in range(max(1, min(args.st_rounds, 2))):
                w, m, out = run(st_case, env)
                st_inner.append(float(out.strip()))
                st_rss.append(m)
        n = len(sentences)
        print(f"\n### STS-B, {n} sentences, 2 threads\n")
        print("| | encode() in-process, sentences/s | whole process, sentences/s | peak RSS MB |")
        print("|---|---|---|---|")
        for k in cases:
            i = f"{n / statistics.median(inner[k]):.0f} (best {n / min(inner[k]):.0f})" if k in inner else "—"
            print(f"| {k} | {i} | {n / statistics.median(whole[k]):.0f} (best {n / min(whole[k]):.0f}) | {statistics.median(rss[k]):.0f} |")
        if st_inner:
            print(f"| sentence-transformers 6.2 + torch, f32 folder | {n / statistics.median(st_inner):.0f} | — | {statistics.median(st_rss):.0f} |")
        for label in ("built-in", "f32 folder"):
            py_in = n / statistics.median(inner[f"sembed (Python), {label}"])
            py_whole = n / statistics.median(whole[f"sembed (Python), {label}"])
            cli = n / statistics.median(whole[f"sembed CLI, {label}"])
            print(f"{label}: Python encode() / CLI whole process = {py_in / cli:.3f}; Python whole / CLI whole = {py_whole / cli:.3f}"
                  + (f"; sembed Python / sentence-transformers encode() = {py_in / (n / statistics.median(st_inner)):.1f}x" if st_inner and label == "f32 folder" else ""))
        results["stsb"] = {"whole_s": whole, "inner_s": inner, "rss_mb": rss, "st_inner_s": st_inner, "st_rss_mb": st_rss}

    if "parity" in parts:
        if not have_st:
            sys.exit("parity needs the sentence-transformers venv")
        target = tempfile.mkdtemp(prefix="sembed-bench-pkg-")
        subprocess.run([SEMBED_PY, "-m", "pip", "install", "-q", "--no-deps", "--target", target, os.path.join(ROOT, "python")], check=True)
        out = subprocess.run([ST_PY, os.path.join(ROOT, "tests", "interop", "st_parity.py"), f32], env=dict(env, PYTHONPATH=target),
                             capture_output=True, text=True)
        print(out.stdout.strip().splitlines()[-1] if out.returncode == 0 else out.stdout + out.stderr)
        if out.returncode != 0:
            sys.exit("parity check failed")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
