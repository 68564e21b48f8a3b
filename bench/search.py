#!/usr/bin/env python3
"""`sembed search` side by side with ripgrep and with `sembed embed`, in one run, as ratios.

The tree: 10,000 text files of 1-12 KB (~40 MB), copied to --work in sorted order from the
Rust sources of the crates in this repository's Cargo.lock (~/.cargo/registry/src after `cargo
fetch`), then C headers (/usr/include), Python and Perl libraries and the Google Cloud SDK as
this machine image has them: real text nobody here wrote, and the kind of tree people search.

Measured (each with hyperfine, interleaved where it compares):
- first index: `sembed index` of the whole tree, against `sembed embed` of the same chunk texts
  (each distinct text once, as the index embeds them): the walk, chunking and storage share;
- warm search (nothing changed): `sembed search QUERY TREE` per mode, against `rg -c the TREE`;
- one file changed: the search that re-indexes it, against warm search + `sembed embed` of that
  file's new chunks.

    python3 bench/search.py [--model M] [--files 10000] [--runs 10]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

QUERIES = ["retry with exponential backoff", "parse a configuration file", "the"]


SOURCES = ["~/.cargo/registry/src", "/usr/include", "/usr/lib/python3", "/usr/share/perl", "/usr/lib/google-cloud-sdk"]
EXTS = (".rs", ".md", ".h", ".c", ".py", ".pm", ".pl", ".txt")


def source_files(n, lo=1024, hi=12 * 1024):
    """The first `n` text files of 1-12 KB under SOURCES, in sorted order."""
    out = []
    for base in SOURCES:
        base = os.path.expanduser(base)
        if not os.path.isdir(base):
            candidates = sorted(d for d in os.listdir(os.path.dirname(base))
                                if d.startswith(os.path.basename(base)))
            if not candidates:
                continue
            base = os.path.join(os.path.dirname(base), candidates[0])
        for dirpath, dirnames, files in os.walk(base):
            dirnames.sort()
            for f in sorted(files):
                p = os.path.join(dirpath, f)
                if f.endswith(EXTS) and not os.path.islink(p) and lo <= os.path.getsize(p) <= hi:
                    out.append((p, os.path.join(os.path.basename(base), os.path.relpath(p, base))))
                    if len(out) == n:
                        return out
    return out


def build_tree(work, n):
    tree = os.path.join(work, f"tree{n}")
    stamp = os.path.join(tree, ".complete")
    if os.path.exists(stamp):
        return tree
    shutil.rmtree(tree, ignore_errors=True)
    files = source_files(n)
    if len(files) < n:
        sys.exit(f"only {len(files)} text files under {SOURCES}")
    for src, rel in files:
        dst = os.path.join(tree, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(src, dst)
        # An hour old: a fresh modification time is not trusted by the index (it is re-read once).
        t = time.time() - 3600
        os.utime(dst, (t, t))
    open(stamp, "w").close()
    return tree


def hyperfine(cmds, runs, prepare=None, warmup=2):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        args = ["hyperfine", "-N", "--style", "none", "-w", str(warmup), "-r", str(runs),
                "--export-json", f.name]
        if prepare:
            args += ["--prepare", prepare]
        subprocess.run(args + cmds, check=True, stdout=subprocess.DEVNULL)
        res = json.load(open(f.name))["results"]
    return [r["median"] for r in res]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sembed", default="target/release/sembed")
    ap.add_argument("--model", default=None)
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--work", default=os.path.expanduser("~/.cache/sembed/bench/search"))
    ap.add_argument("--skip-first-index", action="store_true", help="reuse the index if it exists")
    a = ap.parse_args()
    sembed = os.path.abspath(a.sembed)
    os.makedirs(a.work, exist_ok=True)
    tree = build_tree(a.work, a.files)
    nbytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(tree) for f in fs)
    model = ["-m", a.model] if a.model else []
    tag = os.path.basename(a.model.rstrip("/")) if a.model else "builtin"
    index = os.path.join(a.work, f"index-{tag}-{a.files}.sqlite")
    print(f"tree: {a.files} files, {nbytes / 1e6:.1f} MB; model {tag}; {os.uname().nodename}")

    # First index, against embed of the same texts.
    if not (a.skip_first_index and os.path.exists(index)):
        for f in os.listdir(a.work):
            if f.startswith(os.path.basename(index)):
                os.remove(os.path.join(a.work, f))
        t = time.time()
        rep = json.loads(subprocess.run([sembed, "index", "--json", "--index", index, *model, tree],
                                        check=True, capture_output=True, text=True).stdout)
        t_index = time.time() - t
        # Every chunk's text, each distinct one once (what the index embedded).
        out = subprocess.run([sembed, "search", "--json", "--no-update", "--mode", "semantic",
                              "-k", "100000000", "--index", index, *model, "anything", tree],
                             capture_output=True, text=True).stdout
        texts = list(dict.fromkeys(json.loads(l)["text"] for l in out.splitlines()))
        jl = os.path.join(a.work, f"chunks-{tag}.jsonl")
        with open(jl, "w") as f:
            for t_ in texts:
                f.write(json.dumps(t_) + "\n")
        t = time.time()
        subprocess.run([sembed, "embed", "-q", "-i", jl, "-f", "f32", "-o", "/dev/null", *model],
                       check=True)
        t_embed = time.time() - t
        print(f"first index: {t_index:.1f} s ({rep['embedded']} chunks embedded, {rep['tokens']} tokens; "
              f"{len(texts)} distinct texts listed); embed of those texts: {t_embed:.1f} s; "
              f"index throughput = {t_embed / t_index:.1%} of embed's")
    subprocess.run([sembed, "index", "-q", "--index", index, *model, tree], check=True,
                   stdout=subprocess.DEVNULL)

    # Warm search against ripgrep.
    rg = f"rg -c the {tree}"
    cmds = [rg]
    for mode in ["semantic", "lexical", "hybrid"]:
        m = " ".join(f"'{x}'" for x in model)
        cmds.append(f"{sembed} search --mode {mode} --index {index} {m} '{QUERIES[0]}' {tree}")
    times = hyperfine(cmds, a.runs)
    print(f"warm search (median of {a.runs}): rg -c the {times[0] * 1000:.1f} ms")
    for mode, t in zip(["semantic", "lexical", "hybrid"], times[1:]):
        print(f"  sembed search --mode {mode:8s} {t * 1000:7.1f} ms = {t / times[0]:.2f}x rg")

    # One file changed: only its chunks are embedded.
    victim = None
    for d, _, fs in sorted(os.walk(tree)):
        for f in sorted(fs):
            if f.endswith(".rs"):
                victim = os.path.join(d, f)
                break
        if victim:
            break
    original = open(victim, "rb").read()
    try:
        with open(victim, "ab") as f:
            f.write(b"\n// edited for the benchmark: retry the request with exponential backoff\n")
        rep = json.loads(subprocess.run([sembed, "index", "--json", "--index", index, *model, tree],
                                        check=True, capture_output=True, text=True).stdout)
        print(f"one file changed: index reports {rep['changed']} changed, {rep['embedded']} embedded "
              f"of {rep['chunks']} chunks")
        # Each timed run edits the file again (a new mtime and new content), then searches.
        edit = (f"python3 -c \"import sys,time; open(sys.argv[1],'a').write('// ' + str(time.time()) + chr(10))\" "
                f"{victim}")
        m = " ".join(f"'{x}'" for x in model)
        changed = hyperfine([f"{sembed} search --mode semantic --index {index} {m} '{QUERIES[0]}' {tree}"],
                            a.runs, prepare=edit, warmup=1)[0]
        # The same search with nothing changed, after the same kind of preparation (a Python
        # start, which leaves the caches as the edit does).
        noop = f"python3 -c \"import sys,time; open(sys.argv[1]).read()\" {victim}"
        warm = hyperfine([f"{sembed} search --mode semantic --index {index} {m} '{QUERIES[0]}' {tree}"],
                         a.runs, prepare=noop)[0]
        # That file's chunks embedded alone, as `sembed embed` does it.
        out = subprocess.run([sembed, "search", "--json", "--no-update", "--mode", "semantic", "-k", "100000",
                              "--index", index, *model, "anything", victim],
                             capture_output=True, text=True).stdout
        texts = [json.loads(l)["text"] for l in out.splitlines()]
        jl = os.path.join(a.work, "victim.jsonl")
        with open(jl, "w") as f:
            for t_ in texts:
                f.write(json.dumps(t_) + "\n")
        emb = hyperfine([f"{sembed} embed -q -i {jl} -f f32 -o /dev/null {m}"], a.runs)[0]
        budget = warm + emb * 1.5
        print(f"  search after the edit {changed * 1000:.1f} ms; warm {warm * 1000:.1f} ms + embed of its "
              f"{len(texts)} chunks {emb * 1000:.1f} ms x 1.5 = {budget * 1000:.1f} ms "
              f"({changed / budget:.2f} of the budget)")
    finally:
        open(victim, "wb").write(original)
        t = time.time() - 3600
        os.utime(victim, (t, t))
        subprocess.run([sembed, "index", "-q", "--index", index, *model, tree], check=True,
                       stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
