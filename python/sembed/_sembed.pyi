"""Type stubs of the Rust extension `sembed._sembed` (see python/src/)."""

from collections.abc import Callable, Sequence
from os import PathLike
from typing import Any

import numpy as np
import numpy.typing as npt

__version__: str

class Model:
    """A loaded engine model (transformer or static); immutable, shareable between threads."""

    @staticmethod
    def load(
        name: str,
        *,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        token: str | None = None,
        threads: int | None = None,
    ) -> tuple[Model, str | None]: ...
    @staticmethod
    def from_files(files: Sequence[tuple[str, bytes]], *, name: str | None = None, threads: int | None = None) -> Model: ...
    def embed(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        normalize: bool | None = None,
        max_length: int | None = None,
        truncate: bool = True,
        truncate_dim: int | None = None,
        prompt: str | None = None,
        prompt_name: str | None = None,
        threads: int = 0,
    ) -> npt.NDArray[np.float32]: ...
    def token_embeddings(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        max_length: int | None = None,
        truncate: bool = True,
        prompt: str | None = None,
        prompt_name: str | None = None,
        threads: int = 0,
    ) -> list[npt.NDArray[np.float32]]: ...
    def tokenize(
        self, texts: Sequence[str], *, max_length: int | None = None, prompt: str | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
    def count_tokens(self, text: str) -> int: ...
    def info(self) -> dict[str, Any]: ...
    def fingerprint(self) -> str: ...
    def threads(self) -> int: ...
    def distill(
        self,
        *,
        pca_dims: int = 256,
        sif_coefficient: float = 1e-4,
        threads: int = 0,
        progress: Callable[[int, int], None] | None = None,
    ) -> Model: ...
    def files(self) -> dict[str, bytes] | None: ...

class Index:
    """A search index (one SQLite file) of one model's vectors."""

    def __init__(self, path: str | PathLike[str], model: Model, *, chunk_tokens: int | None = None, overlap_tokens: int = 0) -> None: ...
    @property
    def path(self) -> str: ...
    def update(
        self,
        paths: Sequence[str | PathLike[str]],
        *,
        hidden: bool = False,
        no_ignore: bool = False,
        globs: Sequence[str] | None = None,
        max_filesize: int | None = None,
        follow: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]: ...
    def update_items(self, items: Sequence[tuple[str, str]]) -> dict[str, Any]: ...
    def remove_items(self, ids: Sequence[str]) -> int: ...
    def search(
        self,
        query: str,
        *,
        top_k: int = 10,
        mode: str = "hybrid",
        threshold: float | None = None,
        paths: Sequence[str | PathLike[str]] | None = None,
    ) -> list[dict[str, Any]]: ...
    def stats(self) -> dict[str, Any]: ...

class EmbeddingCache:
    """An embedding cache (a SQLite file) for one model and one set of options."""

    def __init__(
        self,
        path: str | PathLike[str],
        model: Model,
        *,
        normalize: bool | None = None,
        max_length: int | None = None,
        truncate_dim: int | None = None,
        prompt: str | None = None,
        prompt_name: str | None = None,
    ) -> None: ...
    def embed(self, texts: Sequence[str]) -> tuple[npt.NDArray[np.float32], tuple[int, int]]: ...
    @property
    def bypassed(self) -> str | None: ...
