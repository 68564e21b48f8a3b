"""``StaticModel`` and ``distill``: Python model2vec 0.10's API for static (Model2Vec) models, on the
sembed engine — the same vectors as model2vec's ``StaticModel.encode``."""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from sembed import _progress
from sembed._sembed import Model

DEFAULT_MAX_LENGTH = 512


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()


def _config(model: Model, info: dict) -> dict:
    import json

    files = model.files()
    try:
        if files is not None:
            raw = files.get("config.json", b"{}")
        else:
            with open(os.path.join(info["source"], "config.json"), "rb") as f:
                raw = f.read()
        config = json.loads(raw)
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


class StaticModel:
    """A Model2Vec static model: each text's vector is the mean of its tokens' rows of a table,
    computed as Python model2vec 0.10 computes it (same truncation, same unknown-token rule, same
    normalization). Load with :meth:`from_pretrained`, or make one with :func:`distill`."""

    def __init__(self, model: Model, *, normalize: bool | None = None, max_length: Any = _UNSET, dimensionality: int | None = None) -> None:
        info = model.info()
        if info["kind"] != "static":
            raise ValueError(
                f"{info['name']} is a {info['architecture']} transformer, not a static model: "
                "load it with sembed.SentenceTransformer, or make a static model from it with sembed.distill."
            )
        self._model = model
        self._info = info
        self.config: dict[str, Any] = _config(model, info)
        # The engine read the model's own rule (model2vec's config.json, where a missing key means
        # false, or a Normalize module of the sentence-transformers layout).
        self.normalize: bool = bool(info["normalize"]) if normalize is None else bool(normalize)
        self.max_length: int | None = self.config.get("max_length", DEFAULT_MAX_LENGTH) if max_length is _UNSET else max_length
        if dimensionality is not None and not (isinstance(dimensionality, int) and 0 < dimensionality <= info["dim"]):
            raise ValueError(f"dimensionality must be between 1 and {info['dim']}, got {dimensionality!r}.")
        self._dimensionality = dimensionality

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        token: str | None = None,
        normalize: bool | None = None,
        subfolder: str | None = None,
        quantize_to: Any = None,
        dimensionality: int | None = None,
        vocabulary_quantization: int | None = None,
        max_length: Any = _UNSET,
        force_download: bool = True,
    ) -> StaticModel:
        """Loads a static model from a folder or a Hugging Face id (the cache Python shares, else a
        download), as model2vec's ``StaticModel.from_pretrained``.

        Args:
            path: The folder or hub id.
            token: A Hugging Face token for a private model.
            normalize: Normalize the vectors (default: the model's ``config.json``, else False).
            subfolder: A folder inside ``path``.
            quantize_to: Not supported (an error unless None): sembed computes with the table as stored.
            dimensionality: Keep only the first dimensions (models trained with PCA or Matryoshka).
            vocabulary_quantization: Not supported (an error unless None).
            max_length: Default truncation in tokens for :meth:`encode` (default: the model's
                ``config.json``, else 512; None: no truncation).
            force_download: Accepted and ignored: a model in the cache is used as it is.
        """
        if quantize_to is not None:
            raise ValueError("StaticModel.from_pretrained: quantize_to is not supported by sembed (the table is used as stored).")
        if vocabulary_quantization is not None:
            raise ValueError("StaticModel.from_pretrained: vocabulary_quantization is not supported by sembed.")
        name = os.fspath(path)
        if subfolder:
            name = os.path.join(name, subfolder)
        model, _ = Model.load(name, token=token)
        return cls(model, normalize=normalize, max_length=max_length, dimensionality=dimensionality)

    @property
    def dim(self) -> int:
        """Width of the vectors."""
        return self._dimensionality or self._info["dim"]

    @property
    def base_model_name(self) -> str | None:
        """The model this one was distilled from, if its config says."""
        return self.config.get("model_name") or self.config.get("base_model_name")

    def encode(
        self,
        sentences: str | Sequence[str],
        *,
        show_progress_bar: bool = False,
        max_length: Any = _UNSET,
        normalize: bool | None = None,
        batch_size: int = 1024,
        use_multiprocessing: bool = True,
        multiprocessing_threshold: int = 10_000,
        **kwargs: Any,
    ) -> np.ndarray:
        """Encodes sentences: a 2-D float32 array ``[len(sentences), dim]``, or a 1-D array for one string.

        Args:
            sentences: A string or a list of strings.
            show_progress_bar: Show a progress bar (per batch).
            max_length: Truncation in tokens (default: the model's; None: no truncation). Texts are first cut
                to ``max_length × median token length`` characters, as model2vec does.
            normalize: Normalize the vectors (default: the model's setting).
            batch_size: Texts per batch (only the progress bar's steps: the engine runs all cores anyway).
            use_multiprocessing, multiprocessing_threshold: Accepted and ignored (the engine always uses
                its threads).
            **kwargs: Ignored, as model2vec ignores them.
        """
        if max_length is _UNSET:
            max_length = self.max_length
        if normalize is None:
            normalize = self.normalize
        if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
            raise ValueError(f"max_length must be a positive integer or None, got {max_length!r}.")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        opts = dict(
            # None: no truncation (a length no text reaches).
            max_length=max_length if max_length is not None else 2**62,
            normalize=bool(normalize),
            truncate_dim=self._dimensionality,
            prompt="",
        )
        if show_progress_bar and len(texts) > batch_size:
            bar = _progress.bar(-(-len(texts) // batch_size), "Batches")
            parts = []
            try:
                for start in range(0, len(texts), batch_size):
                    parts.append(self._model.embed(texts[start : start + batch_size], **opts))
                    bar.update(1)
            finally:
                bar.close()
            out = np.concatenate(parts, axis=0)
        else:
            out = self._model.embed(texts, **opts)
        return out[0] if single else out

    def save_pretrained(self, path: str | os.PathLike, model_name: str | None = None, subfolder: str | None = None) -> None:
        """Writes the model to a folder (model2vec's layout: ``model.safetensors``, ``tokenizer.json``,
        ``config.json``, ``modules.json``) that model2vec, sentence-transformers and sembed load."""
        folder = os.fspath(path)
        if subfolder:
            folder = os.path.join(folder, subfolder)
        os.makedirs(folder, exist_ok=True)
        import json
        import shutil

        files = self._model.files()
        if files is None:
            source = self._info["source"]
            if not os.path.isdir(source):
                raise ValueError(f"{self._info['name']} has no files to save ({source}).")
            for name in os.listdir(source):
                src = os.path.join(source, name)
                if os.path.isfile(src) and not os.path.samefile(source, folder):
                    shutil.copyfile(src, os.path.join(folder, name))
            return
        config = dict(self.config, normalize=self.normalize, max_length=self.max_length)
        if model_name is not None:
            config["model_name"] = model_name
        for name, data in files.items():
            if name == "config.json":
                data = json.dumps(config, indent=2).encode()
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)

    def tokenize(self, sentences: Sequence[str]) -> list[list[int]]:
        """Token ids of each sentence (no special tokens, unknown tokens dropped, cut at ``max_length``)."""
        ids, mask = self._model.tokenize(list(sentences), max_length=self.max_length if self.max_length is not None else 2**62)
        return [row[m == 1].tolist() for row, m in zip(ids, mask)]

    def __repr__(self) -> str:
        return f"StaticModel(name={self._info['name']!r}, dim={self.dim}, normalize={self.normalize}, max_length={self.max_length})"


def distill(
    model: Any,
    vocabulary: list[str] | None = None,
    device: str | None = None,
    pca_dims: int | None = 256,
    sif_coefficient: float | None = 1e-4,
    token_remove_pattern: str | None = r"\[unused\d+\]",
    trust_remote_code: bool = False,
    quantize_to: Any = "float16",
    vocabulary_quantization: int | None = None,
    pooling: Any = "mean",
    *,
    show_progress_bar: bool = False,
    threads: int = 0,
) -> StaticModel:
    """Distills a sentence-transformers model into a Model2Vec static model, as model2vec 0.10's
    ``distill(model_name, pca_dims=256)`` with its defaults (the tokenizer's vocabulary, mean pooling,
    PCA, SIF weighting, a float16 table). About 100× faster to encode with, at some quality cost.

    Args:
        model: A model name or path (as :class:`SentenceTransformer` takes), or a loaded
            :class:`SentenceTransformer`.
        pca_dims: Dimensions kept by PCA (capped at the model's width).
        sif_coefficient: The SIF weighting coefficient, in (0, 1).
        show_progress_bar: sembed only: show progress as the vocabulary goes through the encoder.
        threads: sembed only: threads to use (0: all).

    ``vocabulary``, ``token_remove_pattern`` other than the default, ``quantize_to`` other than float16,
    ``vocabulary_quantization``, ``pooling`` other than mean, ``pca_dims=None``/``"auto"`` and
    ``sif_coefficient=None`` raise ``ValueError``; ``device`` must be None or "cpu".
    """
    from sembed.sentence_transformer import SentenceTransformer, _cpu_only

    if vocabulary is not None:
        raise ValueError("distill: a custom vocabulary is not supported by sembed (the tokenizer's vocabulary is used).")
    if token_remove_pattern != r"\[unused\d+\]":
        raise ValueError(r"distill: only the default token_remove_pattern (\[unused\d+\]) is supported.")
    if str(getattr(quantize_to, "value", quantize_to)).lower() not in ("float16", "dtype.float16"):
        raise ValueError("distill: only quantize_to='float16' (the default) is supported.")
    if vocabulary_quantization is not None:
        raise ValueError("distill: vocabulary_quantization is not supported by sembed.")
    if str(getattr(pooling, "value", pooling)).lower() != "mean":
        raise ValueError("distill: only mean pooling (the default) is supported.")
    if not isinstance(pca_dims, int) or isinstance(pca_dims, bool):
        raise ValueError(f"distill: pca_dims must be an integer, got {pca_dims!r}.")
    if sif_coefficient is None:
        raise ValueError("distill: sif_coefficient=None (no weighting) is not supported.")
    _cpu_only(device, "distill")
    source = model if isinstance(model, SentenceTransformer) else SentenceTransformer(model)
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = _progress.bar(total, "Encoding tokens")
        bar.update(done - getattr(bar, "n", 0))

    try:
        static = source._model.distill(
            pca_dims=pca_dims,
            sif_coefficient=sif_coefficient,
            threads=threads,
            progress=progress if show_progress_bar else None,
        )
    finally:
        if bar is not None:
            bar.close()
    return StaticModel(static)
