"""``Index`` and ``EmbeddingCache``: the search index and the embedding cache of ``sembed index`` /
``sembed search`` / ``sembed embed --cache``, from Python. Both are one SQLite file that the CLI
reads and writes too."""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping

import numpy as np

from sembed import _sembed


def _engine_model(model: Any) -> _sembed.Model:
    if isinstance(model, _sembed.Model):
        return model
    inner = getattr(model, "_model", None)
    if isinstance(inner, _sembed.Model):
        return inner
    if isinstance(model, (str, os.PathLike)):
        from sembed.sentence_transformer import SentenceTransformer

        return SentenceTransformer(os.fspath(model))._model
    raise TypeError(f"expected a SentenceTransformer, a StaticModel or a model name, got {type(model).__name__}")


class Index:
    """A semantic index of files (and of items you add) for one model, in one SQLite file or in
    PostgreSQL + pgvector (``path`` a ``postgresql://user@host/db?table=name`` URL).

    ``update(paths)`` walks the paths as ripgrep does (``.gitignore`` respected), cuts files into
    chunks that fit the model, and embeds only chunks whose text it has not seen; files that did
    not change are not even read. ``search(query)`` ranks chunks by cosine similarity, BM25 or both.

    >>> index = sembed.Index("notes.sqlite", sembed.SentenceTransformer("all-MiniLM-L6-v2"))
    >>> index.update(["notes/"])["embedded"]
    >>> index.search("where did I park", top_k=3)[0]["path"]
    """

    def __init__(self, path: str | os.PathLike, model: Any, *, chunk_tokens: int | None = None, overlap_tokens: int = 0) -> None:
        self._inner = _sembed.Index(os.fspath(path), _engine_model(model), chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens)

    @property
    def path(self) -> str:
        """The index file, or the PostgreSQL URL (its password replaced by ``***``)."""
        return os.fspath(self._inner.path)

    def update(
        self,
        paths: Iterable[str | os.PathLike] | str | os.PathLike,
        *,
        hidden: bool = False,
        no_ignore: bool = False,
        globs: list[str] | None = None,
        max_filesize: int | None = None,
        follow: bool = False,
        show_progress_bar: bool = False,
    ) -> dict[str, Any]:
        """Brings the index up to date with the files under ``paths``. Returns counts: ``seen``,
        ``changed``, ``touched``, ``deleted``, ``skipped``, ``chunks``, ``embedded``, ``tokens``, ``seconds``."""
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        progress = None
        if show_progress_bar:
            import sys

            def progress(files: int, embedded: int) -> None:
                sys.stderr.write(f"\rindexed {files} files, embedded {embedded} chunks")
                sys.stderr.flush()

        try:
            return self._inner.update(
                [os.fspath(p) for p in paths],
                hidden=hidden,
                no_ignore=no_ignore,
                globs=globs,
                max_filesize=max_filesize,
                follow=follow,
                progress=progress,
            )
        finally:
            if show_progress_bar:
                import sys

                sys.stderr.write("\n")

    def add(self, items: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, Any]:
        """Indexes items that are not files, as ``{id: text}`` or ``[(id, text), ...]``; an item whose
        text changed is replaced, others are kept. Search hits show the id as ``path``."""
        pairs = list(items.items()) if isinstance(items, Mapping) else [tuple(p) for p in items]
        return self._inner.update_items(pairs)

    def remove(self, ids: Iterable[str]) -> int:
        """Removes items by id; returns how many there were."""
        return self._inner.remove_items(list(ids))

    def search(
        self,
        query: str,
        *,
        top_k: int = 10,
        mode: str = "hybrid",
        threshold: float | None = None,
        paths: Iterable[str | os.PathLike] | None = None,
    ) -> list[dict[str, Any]]:
        """The best chunks for ``query``, best first: dicts with ``path``, ``start_line``, ``end_line``
        (1-based, inclusive), ``score``, ``cosine`` and ``text``. ``mode``: ``"semantic"``, ``"lexical"``
        or ``"hybrid"`` (both, fused by reciprocal rank). ``paths`` limits the search to files under
        them; by default every file and item in the index is searched."""
        roots = None if paths is None else [os.fspath(p) for p in paths]
        return self._inner.search(query, top_k=top_k, mode=mode, threshold=threshold, paths=roots)

    def stats(self) -> dict[str, Any]:
        """What the file holds: ``path``, ``bytes``, ``cached_vectors`` and per model ``collections``."""
        return self._inner.stats()


class EmbeddingCache:
    """Embeddings kept in a SQLite file, keyed by the model's fingerprint, the options and each text:
    a text embedded before is looked up instead of computed. Static models are never cached (computing
    is cheaper than a lookup)."""

    def __init__(
        self,
        path: str | os.PathLike,
        model: Any,
        *,
        normalize_embeddings: bool = False,
        prompt: str | None = None,
        prompt_name: str | None = None,
        truncate_dim: int | None = None,
    ) -> None:
        self._inner = _sembed.EmbeddingCache(
            os.fspath(path),
            _engine_model(model),
            normalize=True if normalize_embeddings else None,
            prompt=prompt,
            prompt_name=prompt_name,
            truncate_dim=truncate_dim,
        )
        self.hits = 0
        self.misses = 0

    def encode(self, sentences: str | Iterable[str]) -> np.ndarray:
        """Embeddings of ``sentences`` (a 2-D float32 array; 1-D for one string), equal to the model's
        ``encode`` with the cache's options. ``hits`` and ``misses`` count what came from the cache."""
        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        out, (hits, misses) = self._inner.embed(texts)
        self.hits += hits
        self.misses += misses
        return out[0] if single else out

    @property
    def bypassed(self) -> str | None:
        """Why the cache is not used (a static model), if it is not."""
        return self._inner.bypassed
