"""sembed.dask on a real Dask ``distributed`` LocalCluster with two worker processes: the vectors of
a partitioned corpus equal a local run's exactly, each worker process loads the model once (not
per task), and the result writes to Parquet and reads back unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import dask.dataframe as ddf_mod
import pandas as pd
from dask.distributed import Client, LocalCluster

import sembed
import sembed.dask


@pytest.fixture(scope="module")
def client():
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_a_partitioned_corpus_gets_the_local_vectors(client, minilm_dir, stsb_sentences, tmp_path):
    texts = stsb_sentences[:600]
    frame = pd.DataFrame({"id": range(len(texts)), "text": texts})
    parts = ddf_mod.from_pandas(frame, npartitions=12)
    out = sembed.dask.embed_dataframe(parts, str(minilm_dir), model_kwargs={"threads": 1})
    got = out.compute()
    assert list(got["id"]) == list(range(len(texts)))
    vectors = np.array(got["embedding"].to_list(), dtype=np.float32)
    local = sembed.SentenceTransformer(str(minilm_dir)).encode(texts)
    assert vectors.shape == local.shape
    np.testing.assert_array_equal(vectors, local)

    # Both workers computed, and each loaded the model once for its 6 or so tasks.
    loads = client.run(sembed.dask.loads)
    assert len(loads) == 2
    assert sorted(loads.values()) == [1, 1], loads

    # Parquet round trip: the float32 lists come back bit for bit.
    path = tmp_path / "vectors.parquet"
    out.to_parquet(str(path))
    back = ddf_mod.read_parquet(str(path), dtype_backend="pyarrow").compute().sort_values("id")
    np.testing.assert_array_equal(np.array(back["embedding"].to_list(), dtype=np.float32), local)
    # pandas alone, as the README shows.
    back = pd.read_parquet(path, dtype_backend="pyarrow").sort_values("id")
    np.testing.assert_array_equal(np.array(back["embedding"].to_list(), dtype=np.float32), local)


def test_static_models_and_empty_partitions(client, stsb_sentences):
    from pathlib import Path

    m2v = Path(__file__).resolve().parents[2] / "tests" / "data" / "m2v-minilm-256"
    texts = stsb_sentences[:50]
    frame = pd.DataFrame({"text": texts})
    # More partitions than rows in some: empty partitions give empty results, not errors.
    parts = ddf_mod.from_pandas(frame, npartitions=5)
    parts = parts[parts["text"].str.len() > 0]
    got = sembed.dask.embed_dataframe(parts, str(m2v), kind="static", output="v").compute()
    local = sembed.StaticModel.from_pretrained(str(m2v)).encode(texts)
    np.testing.assert_array_equal(np.array(got["v"].to_list(), dtype=np.float32), local)
    with pytest.raises(ValueError, match="kind"):
        sembed.dask.model(str(m2v), kind="nonsense")


def test_in_a_worker_the_model_takes_the_workers_threads(client, minilm_dir):
    # Two one-thread workers on a 2-core machine: each model computes with 1 thread, not a thread
    # per core (which would put four threads on two cores).
    def threads_of_default_model(name):
        m = sembed.dask.model(name)
        return sembed.dask.worker_threads(), m._model.threads()

    def on_each_worker(f, *args):
        # As tasks (where partitions run), one pinned to each worker.
        workers = sorted(client.scheduler_info()["workers"])
        futures = [client.submit(f, *args, workers=[w], pure=False) for w in workers]
        return client.gather(futures)

    got = on_each_worker(threads_of_default_model, str(minilm_dir))
    assert got == [(1, 1), (1, 1)], got

    # Given explicitly, the caller's count wins; outside a worker there is none to follow.
    def threads_of(name, n):
        return sembed.dask.model(name, threads=n)._model.threads()

    assert on_each_worker(threads_of, str(minilm_dir), 2) == [2, 2]
    assert sembed.dask.worker_threads() is None
