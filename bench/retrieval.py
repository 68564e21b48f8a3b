#!/usr/bin/env python3
"""Retrieval quality of `sembed search`'s three modes on a test collection of real text.

The collection: the Linux man-pages project's pages of the installed Debian package
`manpages-dev` (6.03-2 here; sections 2 and 3: system calls and C library functions; free
licences, see each page's header), rendered to text with `man`. Each page is a document with its
NAME section removed; its NAME line's description ("open and possibly create a file") is a query
whose relevant documents are the pages with that description. Known-item search: the kind of
question a user asks of documentation without knowing the name they are looking for.

Nothing is committed: the collection is rebuilt from the package (installed with apt-get if
missing) into --work. Metrics per mode, at the file level (a file's first chunk in the ranking
counts, later ones are skipped): nDCG@10 (binary relevance) and MRR@10.

    python3 bench/retrieval.py --sembed target/release/sembed [--model M] [--sections 2 3]

With --semtools BIN (the `search` binary of the semtools crate, `cargo install semtools@1.5.0
--no-default-features --features search,tokio`), semtools ranks the same files too: it embeds every line
of every file at each query (it keeps no index without its workspace feature) with the Model2Vec
model it loads by the name "minishlab/potion-multilingual-128M" — here a folder of that name made
in a scratch directory, linking to --model (which must then be a Model2Vec folder), so both tools
use the same static model and no hub. A file ranks by its best line. (1.5.0: its later versions'
`search` binary needs their workspace and agent features, i.e. a vector database and an LLM client.)
"""
import argparse
import gzip
import json
import math
import os
import re
import subprocess
import sys
import time

MAN = "/usr/share/man"


def ensure_package():
    if not os.path.exists(os.path.join(MAN, "man2", "open.2.gz")):
        subprocess.run(["apt-get", "install", "-y", "-q", "manpages-dev", "man-db"], check=True)


def render(path):
    env = dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0")
    out = subprocess.run(["man", "-l", "-P", "cat", path], capture_output=True, env=env).stdout
    return subprocess.run(["col", "-b"], input=out, capture_output=True).stdout.decode("utf-8", "replace")


def split_name(text):
    """(description, text without the NAME section) or None."""
    lines = text.split("\n")
    try:
        i = next(k for k, l in enumerate(lines) if l.strip() == "NAME")
    except StopIteration:
        return None
    j = i + 1
    while j < len(lines) and lines[j].strip():
        j += 1
    name = " ".join(l.strip() for l in lines[i + 1:j])
    m = re.match(r".*?\s[-\u2010\u2013\u2014]\s+(.*)", name)
    if not m:
        return None
    rest = "\n".join(lines[:i] + lines[j + 1:])
    return m.group(1).strip(), rest


def build(work, sections):
    docs = os.path.join(work, "docs")
    qfile = os.path.join(work, "queries.json")
    if os.path.exists(qfile):
        return docs, json.load(open(qfile))
    os.makedirs(docs, exist_ok=True)
    by_desc = {}
    for sec in sections:
        d = os.path.join(MAN, f"man{sec}")
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            with gzip.open(p, "rb") as f:
                head = f.read(200)
            if head.startswith(b".so "):
                continue  # an alias of another page
            parsed = split_name(render(p))
            if not parsed:
                continue
            desc, text = parsed
            out = name[:-3] + ".txt"
            with open(os.path.join(docs, out), "w") as f:
                f.write(text)
            by_desc.setdefault(desc, []).append(out)
    queries = [{"query": q, "relevant": r} for q, r in sorted(by_desc.items())]
    json.dump(queries, open(qfile, "w"), indent=0)
    return docs, queries


def metrics(ranked, relevant, k=10):
    rel = set(relevant)
    dcg = sum(1 / math.log2(i + 2) for i, f in enumerate(ranked[:k]) if f in rel)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(rel))))
    rr = next((1 / (i + 1) for i, f in enumerate(ranked[:k]) if f in rel), 0.0)
    return dcg / ideal, rr


def run_semtools(a, docs, queries):
    if not a.model:
        sys.exit("--semtools needs --model: the Model2Vec folder both tools use")
    scratch = os.path.join(a.work, "semtools-cwd")
    link = os.path.join(scratch, "minishlab", "potion-multilingual-128M")
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if os.path.islink(link):
        os.remove(link)
    os.symlink(os.path.abspath(a.model), link)
    # semtools' `search` built without its workspace feature searches standard input only (its file
    # branch is compiled out), so the files go in as one stream and each line is mapped back to its
    # file: the same per-line embeddings and cosine distances as its file mode.
    owner, lines = [], []
    for f in sorted(os.listdir(docs)):
        for line in open(os.path.join(docs, f), encoding="utf-8", errors="replace").read().splitlines():
            owner.append(f)
            lines.append(line)
    stream = "\n".join(lines) + "\n"
    head = re.compile(r"^<stdin>:(\d+)::(\d+) \(([^)]*)\)$")
    nd, mrr, lat = [], [], []
    for q in queries:
        t = time.time()
        out = subprocess.run([os.path.abspath(a.semtools), "-n", "0", "--top-k", "2000", q["query"]],
                             input=stream, capture_output=True, text=True, cwd=scratch)
        lat.append(time.time() - t)
        if out.returncode != 0:
            sys.exit(f"semtools failed: {out.stderr}")
        ranked = []
        for line in out.stdout.splitlines():  # best (smallest distance) first
            m = head.match(line)
            if m:
                f = owner[int(m.group(1))]
                if f not in ranked:
                    ranked.append(f)
        if not ranked:
            sys.exit(f"semtools returned nothing for {q['query']!r}: {out.stderr}")
        d, r = metrics(ranked, q["relevant"])
        nd.append(d)
        mrr.append(r)
    lat.sort()
    res = {"ndcg@10": sum(nd) / len(nd), "mrr@10": sum(mrr) / len(mrr), "median_ms": 1000 * lat[len(lat) // 2],
           "lines": len(lines)}
    print(f"semtools  nDCG@10 {res['ndcg@10']:.4f}  MRR@10 {res['mrr@10']:.4f}  "
          f"median query {res['median_ms']:.0f} ms (whole process, {len(lines)} lines embedded per query)")
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sembed", default="target/release/sembed")
    ap.add_argument("--model", default=None)
    ap.add_argument("--sections", nargs="+", default=["2"])
    ap.add_argument("--work", default=os.path.expanduser("~/.cache/sembed/bench/manpages"))
    ap.add_argument("--limit", type=int, default=0, help="only the first N queries")
    ap.add_argument("--modes", nargs="+", default=["semantic", "lexical", "hybrid"])
    ap.add_argument("--semtools", default=None, help="semtools' `search` binary, run side by side")
    a = ap.parse_args()
    ensure_package()
    work = os.path.join(a.work, "-".join(a.sections))
    docs, queries = build(work, a.sections)
    if a.limit:
        queries = queries[: a.limit]
    sembed = os.path.abspath(a.sembed)
    model = ["-m", a.model] if a.model else []
    tag = re.sub(r"[^A-Za-z0-9]+", "_", a.model or "builtin")
    index = os.path.join(work, f"index-{tag}.sqlite")
    n_docs = len(os.listdir(docs))
    size = sum(os.path.getsize(os.path.join(docs, f)) for f in os.listdir(docs))
    print(f"collection: {n_docs} man pages ({size / 1e6:.1f} MB) of sections {' '.join(a.sections)}, "
          f"{len(queries)} queries", file=sys.stderr)
    t = time.time()
    rep = subprocess.run([sembed, "index", "--json", "--index", index, *model, docs],
                         check=True, capture_output=True, text=True).stdout
    rep = json.loads(rep)
    print(f"index: {rep['chunks']} chunks, {rep['embedded']} embedded, {time.time() - t:.1f} s",
          file=sys.stderr)
    results = {}
    for mode in a.modes:
        nd, mrr, lat = [], [], []
        for q in queries:
            t = time.time()
            out = subprocess.run(
                [sembed, "search", "--json", "--no-update", "--mode", mode, "-k", "50",
                 "--index", index, *model, q["query"], docs],
                capture_output=True, text=True)
            lat.append(time.time() - t)
            if out.returncode not in (0, 1):
                sys.exit(out.stderr)
            ranked = []
            for line in out.stdout.splitlines():
                f = os.path.basename(json.loads(line)["path"])
                if f not in ranked:
                    ranked.append(f)
            d, r = metrics(ranked, q["relevant"])
            nd.append(d)
            mrr.append(r)
        lat.sort()
        results[mode] = {
            "ndcg@10": sum(nd) / len(nd),
            "mrr@10": sum(mrr) / len(mrr),
            "median_ms": 1000 * lat[len(lat) // 2],
        }
        print(f"{mode:9s} nDCG@10 {results[mode]['ndcg@10']:.4f}  MRR@10 {results[mode]['mrr@10']:.4f}  "
              f"median query {results[mode]['median_ms']:.0f} ms (whole process)")
    if a.semtools:
        results["semtools"] = run_semtools(a, docs, queries)
    json.dump({"collection": {"docs": n_docs, "bytes": size, "queries": len(queries),
                              "sections": a.sections}, "model": a.model or "builtin",
               "index": rep, "results": results}, open(os.path.join(work, f"results-{tag}.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
