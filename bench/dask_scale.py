"""sembed.dask against one process (issue #15): does a 2-worker LocalCluster on 2 cores keep the
single process's throughput (no per-task model load, no serialization blow-up)?

    python bench/dask_scale.py [--texts N] [--model DIR_OR_NAME] [--rounds R]

Run with the Python package's test venv (python/tests/run.sh makes it: sembed, dask, distributed,
pandas, pyarrow), e.g. ~/.cache/sembed/test-models/py-sembed/bin/python bench/dask_scale.py.
Texts: the STS-B sentences repeated to N (default 20,000). One process: SentenceTransformer with 2
threads, encode(all). Cluster: LocalCluster(n_workers=2, threads_per_worker=1), embed_dataframe
with its defaults (in a worker the model takes the worker's one thread) over 16 partitions,
.compute() (the workers load their models in a first, untimed run of 256 texts; each timed run is
a new frame). Best of R rounds each; prints the ratio.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=20_000)
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    import dask.dataframe as dd
    import pandas as pd
    from dask.distributed import Client, LocalCluster

    import sembed
    import sembed.dask

    rows = (ROOT / "tests/data/stsb-test.tsv").read_text(encoding="utf-8").splitlines()
    s = [r.split("\t")[5] for r in rows] + [r.split("\t")[6] for r in rows]
    texts = [s[i % len(s)] for i in range(a.texts)]

    one = sembed.SentenceTransformer(a.model, threads=2)
    one.encode(texts[:64])
    best_one = min(_timed(lambda: one.encode(texts)) for _ in range(a.rounds))
    local = one.encode(texts)

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    runs = iter(range(1_000_000))

    def job(n: int = a.texts):
        # A new frame each run (a `run` column): Dask would otherwise reuse results it still holds
        # under the same keys, and time nothing.
        frame = dd.from_pandas(pd.DataFrame({"text": texts[:n], "run": next(runs)}), npartitions=16)
        return sembed.dask.embed_dataframe(frame, a.model).compute()

    job(256)  # each worker loads its model
    best_dask = min(_timed(job) for _ in range(a.rounds))
    got = np.array(job()["embedding"].to_list(), dtype=np.float32)
    loads = client.run(sembed.dask.loads)
    client.close()
    cluster.close()
    assert np.array_equal(got, local), "cluster vectors differ from the local ones"
    print(
        f"{a.texts} texts, {a.model}: one process (2 threads) {best_one:.2f} s = {a.texts / best_one:.0f}/s; "
        f"Dask 2 workers x 1 thread {best_dask:.2f} s = {a.texts / best_dask:.0f}/s -> "
        f"{best_one / best_dask:.2f}x; model loads per worker {sorted(loads.values())}; vectors equal"
    )


def _timed(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
