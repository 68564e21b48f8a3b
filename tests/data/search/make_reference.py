"""Makes tests/data/search: a small corpus of real text and sentence-transformers' semantic_search
scores for every chunk sembed cuts it into.

The corpus (corpus/*.txt) is STS Benchmark test sentences (tests/data/stsb-test.tsv, the same
copy the fidelity tests use), four to a paragraph, plus one file of long lines and mixed scripts
from mpnet/texts.json (to exercise the cutting of lines longer than the model's limit).

Run with Python sentence-transformers (6.2 was used) and a built sembed:
    python make_reference.py --sembed target/release/sembed --model <all-MiniLM-L6-v2 dir>
The chunk texts come from sembed (its chunker is what is under test elsewhere); their scores come
from sentence-transformers alone: model.encode + util.semantic_search over all of them.
"""
import argparse, csv, json, os, subprocess, tempfile

from sentence_transformers import SentenceTransformer, util

HERE = os.path.dirname(os.path.abspath(__file__))
QUERIES = [
    "a man is playing a musical instrument",
    "someone is preparing food in a kitchen",
    "animals running outside",
    "a plane is taking off",
    "the stock market and the economy",
    "people talking about a war",
    "a woman is dancing",
    "children playing a sport",
]


def corpus():
    out = os.path.join(HERE, "corpus")
    os.makedirs(out, exist_ok=True)
    rows = list(csv.reader(open(os.path.join(HERE, "..", "stsb-test.tsv")), delimiter="\t", quoting=csv.QUOTE_NONE))
    sentences = [r[5] for r in rows] + [r[6] for r in rows]
    per = 40
    for f in range(8):
        part = sentences[f * per:(f + 1) * per]
        paras = ["\n".join(part[i:i + 4]) for i in range(0, len(part), 4)]
        with open(os.path.join(out, f"stsb-{f}.txt"), "w") as fh:
            fh.write("\n\n".join(paras) + "\n")
    texts = json.load(open(os.path.join(HERE, "..", "mpnet", "texts.json")))
    long = [t for t in texts if len(t) > 300]
    with open(os.path.join(out, "long-lines.txt"), "w") as fh:
        fh.write("\n".join(t.replace("\n", " ") for t in long) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sembed", required=True)
    ap.add_argument("--model", required=True)
    a = ap.parse_args()
    corpus()
    cwd = os.path.join(HERE, "corpus")
    with tempfile.TemporaryDirectory() as tmp:
        idx = os.path.join(tmp, "i.sqlite")
        out = subprocess.run(
            [a.sembed, "search", "--json", "--mode", "semantic", "-k", "1000000", "-m", a.model,
             "--index", idx, "anything"],
            cwd=cwd, check=True, capture_output=True, text=True).stdout
    chunks = [json.loads(l) for l in out.splitlines()]
    model = SentenceTransformer(a.model, device="cpu")
    emb = model.encode([c["text"] for c in chunks], convert_to_tensor=True)
    result = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "chunks": [{k: c[k] for k in ("path", "start_line", "end_line", "start_byte", "text")} for c in chunks],
        "queries": [],
    }
    for q in QUERIES:
        qe = model.encode([q], convert_to_tensor=True)
        hits = util.semantic_search(qe, emb, top_k=len(chunks))[0]
        scores = [0.0] * len(chunks)
        for h in hits:
            scores[h["corpus_id"]] = float(h["score"])
        # scores[i]: chunk i's score in semantic_search's results.
        result["queries"].append({"query": q, "scores": scores})
    with open(os.path.join(HERE, "reference.json"), "w") as fh:
        json.dump(result, fh, indent=1, ensure_ascii=False)
    print(f"{len(chunks)} chunks, {len(QUERIES)} queries")


if __name__ == "__main__":
    main()
