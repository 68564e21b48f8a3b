"""Embedding a corpus on a Dask ``distributed`` cluster: each worker process loads the model once.

A corpus too big for one machine's hours is a Dask DataFrame with a text column, partitioned over
the cluster's workers. :func:`embed_dataframe` adds an ``embedding`` column, computed partition by
partition where the partitions are; the model is loaded once per worker *process* (kept in this
module, keyed by the model and its options), never per task, and what travels between processes
is the model's name and the texts, never weights or a model object::

    import dask.dataframe as dd
    from dask.distributed import Client
    import sembed.dask

    client = Client("tcp://scheduler:8786")          # or LocalCluster(n_workers=2, threads_per_worker=1)
    texts = dd.read_parquet("s3://bucket/corpus/")    # a `text` column
    out = sembed.dask.embed_dataframe(texts, "all-MiniLM-L6-v2", column="text")
    out.to_parquet("s3://bucket/vectors/")            # `embedding`: list<float32> per row
    # read back with dd.read_parquet(path, dtype_backend="pyarrow")

The same code runs on one machine (``LocalCluster``) and on many (``dask scheduler`` on one host,
``dask worker tcp://scheduler:8786 --nworkers 1 --nthreads N`` on each, sembed installed on all):
run one single-threaded worker per core, or one worker per machine with a thread per core. Inside a
worker the model computes with as many threads as the worker has (``--nthreads``; concurrent tasks
share them), unless ``model_kwargs={"threads": N}`` says otherwise. (A model's own default, a
thread per core of the machine, would put four threads on two cores under two one-thread workers:
0.86x of one process's throughput, against 0.90-0.94x this way; BENCHMARKS.md.) Vectors equal a
local run's exactly: a text's vector does not depend on its batch, partition or thread count.

The same pattern elsewhere: Ray Data, ``ds.map_batches(Embed, fn_constructor_args=("all-MiniLM-L6-v2",),
concurrency=N, batch_format="pandas")`` with a class whose ``__init__`` loads the model and whose
``__call__`` encodes a batch; Spark, ``df.mapInPandas(fn, schema)`` with ``fn`` loading the model
once per Python worker (a module-level cache like :func:`model`) and yielding frames with an
``array<float>`` column. There, give the model ``threads=`` the cores each actor or task has (Ray's
``num_cpus``, Spark's ``spark.task.cpus``): outside Dask it takes a thread per core of the machine.
"""

from __future__ import annotations

import os
import threading
from typing import Any

__all__ = ["embed_dataframe", "embed_partition", "loads", "model", "worker_threads"]

_models: dict[tuple, Any] = {}
_lock = threading.Lock()
_loads = 0


def model(name: str | os.PathLike, kind: str = "sentence-transformer", **kwargs: Any) -> Any:
    """The model ``name`` of this process, loaded on first use and kept: ``kind`` is
    ``"sentence-transformer"`` (:class:`sembed.SentenceTransformer`) or ``"static"``
    (:class:`sembed.StaticModel`); ``kwargs`` go to its constructor. In a Dask worker a
    sentence-transformer's ``threads`` defaults to the worker's thread count."""
    global _loads
    if kind == "sentence-transformer" and "threads" not in kwargs:
        n = worker_threads()
        if n is not None:
            kwargs["threads"] = n
    key = (os.fspath(name), kind, tuple(sorted(kwargs.items())))
    with _lock:
        m = _models.get(key)
        if m is None:
            import sembed

            if kind == "sentence-transformer":
                m = sembed.SentenceTransformer(os.fspath(name), **kwargs)
            elif kind == "static":
                m = sembed.StaticModel.from_pretrained(os.fspath(name), **kwargs)
            else:
                raise ValueError(f"kind must be 'sentence-transformer' or 'static', not {kind!r}")
            _models[key] = m
            _loads += 1
        return m


def worker_threads() -> int | None:
    """The thread count of the Dask worker this code runs in; ``None`` outside a worker."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return None
    n = getattr(getattr(worker, "state", None), "nthreads", None) or getattr(worker, "nthreads", None)
    return int(n) if n else None


def loads() -> int:
    """How many models this process has loaded (for checking that a cluster loads one per worker)."""
    return _loads


def embed_partition(
    df: Any,
    name: str | os.PathLike,
    column: str = "text",
    kind: str = "sentence-transformer",
    output: str = "embedding",
    batch_size: int = 32,
    model_kwargs: dict | None = None,
) -> Any:
    """``df`` (a pandas DataFrame) with an ``output`` column: each row's vector of ``df[column]``
    as an Arrow ``list<float32>`` value (``pd.ArrowDtype``), in row order. What :func:`embed_dataframe` runs on each partition; usable
    alone (a Spark ``mapInPandas`` or Ray ``map_batches`` body). ``model_kwargs`` go to the model's
    constructor (e.g. ``{"threads": 1}``)."""
    import numpy as np

    m = model(name, kind, **(model_kwargs or {}))
    texts = df[column].astype(str).tolist()
    out = df.copy()
    if not texts:
        out[output] = _vector_column(np.zeros((0, 0), np.float32), df.index)
        return out
    kwargs: dict[str, Any] = {"batch_size": batch_size}
    if kind == "static":
        # A static model takes its thread count per call; in a worker, the worker's.
        kwargs["threads"] = worker_threads() or 0
        vectors = np.asarray(m.encode(texts, **kwargs), dtype=np.float32)
    else:
        vectors = np.asarray(m.encode(texts, convert_to_numpy=True, **kwargs), dtype=np.float32)
    out[output] = _vector_column(vectors, df.index)
    return out


def _vector_column(vectors: Any, index: Any) -> Any:
    """Rows of a float32 matrix as one pandas column of Arrow ``list<float>`` (what Parquet and
    Arrow-based engines store without conversion; no Python object per row)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    n, dim = vectors.shape if vectors.ndim == 2 else (0, 0)
    offsets = pa.array(np.arange(0, (n + 1) * dim, dim, dtype=np.int32)) if n else pa.array([0], pa.int32())
    values = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel(), type=pa.float32())
    arr = pa.ListArray.from_arrays(offsets, values)
    return pd.Series(pd.arrays.ArrowExtensionArray(arr), index=index)


def embed_dataframe(
    ddf: Any,
    name: str | os.PathLike,
    column: str = "text",
    kind: str = "sentence-transformer",
    output: str = "embedding",
    batch_size: int = 32,
    model_kwargs: dict | None = None,
) -> Any:
    """A Dask DataFrame: ``ddf`` with an ``output`` column of vectors (lists of float32), computed
    lazily, partition by partition, on whatever Dask scheduler is active (a ``distributed`` cluster
    when a ``Client`` exists). Each worker process loads the model once."""
    import pandas as pd
    import pyarrow as pa

    meta = ddf._meta.copy()
    meta[output] = pd.Series([], dtype=pd.ArrowDtype(pa.list_(pa.float32())))
    return ddf.map_partitions(
        embed_partition,
        os.fspath(name),
        column=column,
        kind=kind,
        output=output,
        batch_size=batch_size,
        model_kwargs=model_kwargs,
        meta=meta,
    )
