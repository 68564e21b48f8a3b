"""``SentenceTransformer``: sentence-transformers 6's class of the same name, on the sembed engine."""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any, Iterable

import numpy as np

from sembed import _progress, util
from sembed._sembed import Model


def _logger():
    # logging is imported on first use, not at import: it costs a fresh interpreter milliseconds.
    import logging

    return logging.getLogger("sembed")


def _logging_verbose() -> bool:
    """Whether the ``sembed`` logger's effective level is INFO or DEBUG (sentence-transformers' rule for
    showing a progress bar). Without ``logging`` imported, nothing configured it: the level is WARNING."""
    logging = sys.modules.get("logging")
    return logging is not None and logging.getLogger("sembed").getEffectiveLevel() in (logging.INFO, logging.DEBUG)

ALLOWED_PRECISIONS = {"float32", "int8", "uint8", "binary", "ubinary"}
SUPPORTED_SIMILARITY_FN_NAMES = ("cosine", "dot", "euclidean", "manhattan")
# Keyword arguments sentence-transformers' encode() takes beyond its signature for every model.
_ENCODE_EXTRA_KWARGS = {"task", "processing_kwargs"}


def _cpu_only(device: Any, where: str) -> None:
    """sembed computes on the CPU: ``None`` and ``"cpu"`` are accepted, any other device is an error."""
    if device is None:
        return
    if isinstance(device, (list, tuple)):
        raise ValueError(
            f"{where}: device={device!r} asks for multi-process encoding, which sembed does not do; "
            "one process already uses every core (pass threads= to SentenceTransformer to limit it)."
        )
    name = str(device)
    if name != "cpu":
        raise ValueError(f"{where}: device={name!r} is not supported: sembed runs on the CPU only (use device='cpu' or None).")


def _unsupported(where: str, **given: Any) -> None:
    named = [k for k, v in given.items() if v]
    if named:
        raise ValueError(f"{where}: {', '.join(named)} {'is' if len(named) == 1 else 'are'} not supported by sembed.")


def _st_config(source: str) -> dict:
    """``config_sentence_transformers.json`` of a model folder ({} for the built-in model or none)."""
    path = os.path.join(source, "config_sentence_transformers.json")
    if not os.path.isfile(path):
        return {}
    import json

    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


class SentenceTransformer:
    """Loads a sentence-transformers model and embeds text with it, with sentence-transformers' API and
    vectors (min cosine ≥ 0.99999 against sentence-transformers 6.2 on the same files).

    Args:
        model_name_or_path: A model folder, ``"builtin"``, or a Hugging Face id or alias
            (``"all-MiniLM-L6-v2"``, ``"BAAI/bge-small-en-v1.5"``). all-MiniLM-L6-v2 is built in: without
            a copy in the Hugging Face cache it needs no download. Other ids are read from the cache
            Python's huggingface_hub uses (``HF_HOME``, ``HF_HUB_CACHE``), else downloaded into it.
        device: ``None`` or ``"cpu"`` (sembed runs on the CPU; any other device is an error).
        prompts: Prompts by name, e.g. ``{"query": "query: "}``; they take precedence over the model's.
        default_prompt_name: The prompt used when ``encode`` gets neither ``prompt`` nor ``prompt_name``.
        cache_folder: The Hugging Face cache folder to use instead of the default.
        trust_remote_code: Accepted; sembed never runs code from a model repository.
        revision: A branch, tag or commit of a hub model.
        local_files_only: Never use the network.
        token: A Hugging Face token (``str``), ``True``/``None`` (the saved one) or ``False`` (none).
        backend: ``"torch"`` (the default; sembed's engine stands in for it). ``"onnx"`` and
            ``"openvino"`` are errors.
        similarity_fn_name: ``"cosine"`` (default), ``"dot"``, ``"euclidean"`` or ``"manhattan"``.
        truncate_dim: Keep only the first dimensions of each embedding (Matryoshka models).
        threads: sembed only: the most threads this model computes with (default: all cores, shared
            by every model of the process).

    Arguments that need torch modules (``modules``, ``model_kwargs``, ``processor_kwargs``,
    ``config_kwargs``, ``model_card_data``) raise ``ValueError`` when given.
    """

    def __init__(
        self,
        model_name_or_path: str | None = None,
        *,
        modules: Any = None,
        device: str | None = None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        cache_folder: str | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        local_files_only: bool = False,
        token: bool | str | None = None,
        use_auth_token: bool | str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        model_card_data: Any = None,
        backend: str = "torch",
        similarity_fn_name: str | None = None,
        truncate_dim: int | None = None,
        threads: int | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        where = "SentenceTransformer"
        if use_auth_token is not None:
            warnings.warn(
                "The `use_auth_token` argument is deprecated and will be removed in a future release of SentenceTransformers.",
                FutureWarning,
                stacklevel=2,
            )
            if token is not None:
                raise ValueError("Both `token` and `use_auth_token` are specified. Please only specify the `token` argument.")
            token = use_auth_token
        if model_name_or_path is None:
            raise ValueError(f"{where}: model_name_or_path is required (sembed builds no model from modules).")
        _unsupported(
            where,
            modules=modules is not None,
            model_kwargs=model_kwargs,
            processor_kwargs=processor_kwargs,
            tokenizer_kwargs=tokenizer_kwargs,
            config_kwargs=config_kwargs,
            model_card_data=model_card_data is not None,
        )
        if backend != "torch":
            raise ValueError(
                f"{where}: backend={backend!r} is not supported: sembed runs its own engine (leave backend='torch', the default)."
            )
        _cpu_only(device, where)
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ValueError(f"{where}: threads must be a positive integer, got {threads!r}.")
        if token is True:
            token = None  # the saved token, as the hub client reads it anyway
        elif token is False:
            token = ""  # no token at all

        self._model, instead_of = Model.load(
            os.fspath(model_name_or_path),
            cache_folder=os.fspath(cache_folder) if cache_folder is not None else None,
            revision=revision,
            local_files_only=local_files_only,
            token=token,
            threads=threads,
        )
        if instead_of is not None:
            _logger().info(
                f"{instead_of} is not in the Hugging Face cache: using sembed's built-in float16 copy "
                "(vectors within 0.9999995 cosine of the original's)."
            )
        self._init_from_model(prompts, default_prompt_name, similarity_fn_name, truncate_dim)

    def _init_from_model(self, prompts, default_prompt_name, similarity_fn_name, truncate_dim) -> None:
        self._info = self._model.info()
        config = _st_config(self._info["source"])
        # As sentence-transformers 6: the user's prompts first, then the model's for keys not set,
        # then "query" and "document" as empty prompts.
        merged: dict[str, str | None] = {"query": None, "document": None}
        if prompts:
            merged.update(prompts)
        for name, text in self._info["prompts"].items():
            if merged.get(name) is None:
                merged[name] = text
        self.prompts: dict[str, str] = {k: ("" if v is None else v) for k, v in merged.items()}
        self.default_prompt_name: str | None = default_prompt_name or self._info["default_prompt_name"]
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise ValueError(
                f"Default prompt name '{self.default_prompt_name}' not found in the configured prompts "
                f"dictionary with keys {list(self.prompts.keys())!r}."
            )
        self._similarity_fn_name: str | None = None
        self.similarity_fn_name = similarity_fn_name
        if self._similarity_fn_name is None and config.get("similarity_fn_name") in SUPPORTED_SIMILARITY_FN_NAMES:
            self.similarity_fn_name = config["similarity_fn_name"]
        self.truncate_dim: int | None = truncate_dim if truncate_dim is not None else config.get("truncate_dim")
        self._max_seq_length: int | None = self._info["max_seq_length"]

    # -- facts ------------------------------------------------------------------------------------

    @property
    def device(self) -> str:
        """Always ``"cpu"``."""
        return "cpu"

    @property
    def max_seq_length(self) -> int | None:
        """The truncation length in tokens (special tokens included); settable."""
        return self._max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"max_seq_length must be a positive integer, got {value!r}.")
        self._max_seq_length = value

    @property
    def similarity_fn_name(self) -> str:
        """The name of the similarity function (``"cosine"`` unless set)."""
        if self._similarity_fn_name is None:
            self._similarity_fn_name = "cosine"
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: Any) -> None:
        if value is not None and hasattr(value, "value"):  # a SimilarityFunction enum member
            value = value.value
        if value is not None and value not in SUPPORTED_SIMILARITY_FN_NAMES:
            raise ValueError(
                f"{type(self).__name__} only supports similarity_fn_name in {SUPPORTED_SIMILARITY_FN_NAMES}, got {value!r}."
            )
        self._similarity_fn_name = value

    def get_embedding_dimension(self) -> int | None:
        """The number of dimensions of :meth:`encode`'s vectors (``truncate_dim`` counted)."""
        dim = self._info["dim"]
        return dim if self.truncate_dim is None else min(dim, self.truncate_dim)

    def get_sentence_embedding_dimension(self) -> int | None:
        """The older name of :meth:`get_embedding_dimension`."""
        warnings.warn(
            "The `get_sentence_embedding_dimension` method has been renamed to `get_embedding_dimension`.",
            FutureWarning,
            stacklevel=2,
        )
        return self.get_embedding_dimension()

    def get_max_seq_length(self) -> int | None:
        """The truncation length in tokens (as :attr:`max_seq_length`)."""
        return self.max_seq_length

    def get_model_kwargs(self) -> list[str]:
        """Extra keyword arguments ``encode`` takes for this model: none."""
        return []

    def get_backend(self) -> str:
        """``"torch"``, for code that asks; the computation is sembed's own engine."""
        return "torch"

    @property
    def info(self) -> dict[str, Any]:
        """sembed only: what the model is (architecture, dimensions, pooling, source, CPU path...)."""
        return dict(self._info)

    def fingerprint(self) -> str:
        """sembed only: a stable identifier of the model's files (as ``sembed info`` shows it)."""
        return self._model.fingerprint()

    def __repr__(self) -> str:
        i = self._info
        return (
            f"SentenceTransformer(name={i['name']!r}, architecture={i['architecture']!r}, dim={i['dim']}, "
            f"max_seq_length={self.max_seq_length}, pooling={i['pooling']}, normalize={i['normalize']}, "
            f"engine='sembed', cpu={i['cpu']!r})"
        )

    # -- encoding ---------------------------------------------------------------------------------

    def _resolve_prompt(self, prompt: str | None, prompt_name: str | None) -> str | None:
        if prompt is None:
            if prompt_name is not None:
                try:
                    prompt = self.prompts[prompt_name]
                except KeyError:
                    raise ValueError(
                        f"Prompt name '{prompt_name}' not found in the configured prompts dictionary with keys {list(self.prompts.keys())!r}."
                    ) from None
            elif self.default_prompt_name is not None:
                prompt = self.prompts.get(self.default_prompt_name, None)
        elif prompt_name is not None:
            _logger().warning(
                "Provide either a `prompt`, a `prompt_name`, or neither, but not both. "
                "Ignoring the `prompt_name` in favor of `prompt`."
            )
        return prompt

    def encode(
        self,
        inputs: str | Iterable[str] | None = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        output_value: str | None = "sentence_embedding",
        precision: str = "float32",
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | None = None,
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
        pool: Any = None,
        chunk_size: int | None = None,
        **kwargs: Any,
    ):
        """
        Computes embeddings for the given inputs.

        Args:
            inputs: The inputs to embed: a string or a list of strings (``sentences=`` is accepted, the
                older name).
            prompt_name (str, optional): The name of the prompt to use for encoding. Must be a key in the
                ``prompts`` dictionary, which is either set in the constructor or loaded from the model
                configuration. For example if ``prompt_name`` is "query" and the ``prompts`` is
                {"query": "query: ", ...}, then the sentence "What is the capital of France?" will be encoded
                as "query: What is the capital of France?". If ``prompt`` is also set, this argument is
                ignored. Defaults to None.
            prompt (str, optional): The prompt to use for encoding, prepended to every input. If ``prompt``
                is set, ``prompt_name`` is ignored. Defaults to None.
            batch_size (int, optional): The batch size used for the computation. Defaults to 32.
            show_progress_bar (bool, optional): Whether to output a progress bar when encoding. Defaults to
                None: shown if the ``sembed`` logger's effective level is INFO or DEBUG.
            output_value (str, optional): ``"sentence_embedding"`` (default), ``"token_embeddings"`` (the
                encoder's token states, one ``[tokens, hidden]`` array per input) or None (a dict per input
                with both, plus ``input_ids`` and ``attention_mask``).
            precision (str, optional): ``"float32"`` (default), ``"int8"``, ``"uint8"``, ``"binary"`` or
                ``"ubinary"``, as :func:`sembed.util.quantize_embeddings` (int8/uint8 ranges from the batch
                itself).
            convert_to_numpy (bool, optional): True (default): one numpy array; False: a list of 1-D numpy
                arrays.
            convert_to_tensor (bool, optional): Return one torch tensor (needs torch installed).
            device (str, optional): None or "cpu".
            normalize_embeddings (bool, optional): Whether to normalize returned vectors to have length 1
                (after ``truncate_dim``).
            truncate_dim (int, optional): The dimension to truncate sentence embeddings to (default: the
                model's ``truncate_dim``).
            pool, chunk_size: multi-process encoding; not supported (an error when given).
            **kwargs: ``task`` (accepted; only Router models use it) and
                ``processing_kwargs={"text": {"max_length": N, "truncation": bool}}`` (this call's
                truncation); anything else is a ``ValueError``.

        Returns:
            By default a 2-D numpy array ``[num_inputs, output_dimension]`` (float32, or the quantized
            type); a single string gives a 1-D array.
        """
        if "sentences" in kwargs:
            _logger().warning("The `sentences` argument was renamed and is now deprecated. Please use `inputs` instead.")
            sentences = kwargs.pop("sentences")
            if inputs is None:
                inputs = sentences
        if inputs is None:
            raise TypeError("encode() missing 1 required positional argument: 'inputs'")
        if show_progress_bar is None:
            show_progress_bar = _logging_verbose()
        if convert_to_tensor:
            convert_to_numpy = False
        if output_value != "sentence_embedding":
            convert_to_tensor = False
            convert_to_numpy = False
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")

        singular = isinstance(inputs, str)
        if singular:
            inputs = [inputs]
        elif isinstance(inputs, np.ndarray):
            inputs = inputs.tolist()
        elif not isinstance(inputs, list):
            inputs = list(inputs)
        for i, text in enumerate(inputs):
            if not isinstance(text, str):
                raise TypeError(f"sembed embeds text: input {i} is a {type(text).__name__}, not a str.")

        if unused := set(kwargs) - _ENCODE_EXTRA_KWARGS:
            raise ValueError(
                f"{self.__class__.__name__}.encode() has been called with additional keyword arguments that this model does not use: {list(unused)}. "
                f"As per {self.__class__.__name__}.get_model_kwargs(), this model does not accept any additional keyword arguments."
            )
        if precision is not None and precision not in ALLOWED_PRECISIONS:
            raise ValueError(f"Precision {precision!r} is not supported, must be one of {ALLOWED_PRECISIONS}")
        if pool is not None or chunk_size is not None:
            raise ValueError("encode(): pool and chunk_size (multi-process encoding) are not supported by sembed.")
        _cpu_only(device, "encode()")
        max_length, truncate = self._max_seq_length, True
        if kwargs.get("processing_kwargs") is not None:
            max_length, truncate = self._processing_kwargs(kwargs["processing_kwargs"])
        prompt = self._resolve_prompt(prompt, prompt_name)
        truncate_dim = truncate_dim if truncate_dim is not None else self.truncate_dim
        if truncate_dim is not None and truncate_dim >= self._info["dim"]:
            truncate_dim = None  # sentence-transformers slices [:, :truncate_dim]: nothing to cut
        call = dict(
            batch_size=batch_size,
            max_length=max_length,
            truncate=truncate,
            # "" turns the engine's own default prompt off: the prompt was resolved here.
            prompt=prompt if prompt is not None else "",
        )

        if output_value == "sentence_embedding":
            embeddings = self._embed(
                inputs,
                show_progress_bar,
                normalize=True if normalize_embeddings else None,
                truncate_dim=truncate_dim,
                **call,
            )
            if len(embeddings) and precision and precision != "float32":
                embeddings = util.quantize_embeddings(embeddings, precision=precision)
        elif output_value == "token_embeddings":
            embeddings = self._model.token_embeddings(inputs, **call)
        elif output_value is None:
            sentence = self._embed(
                inputs,
                show_progress_bar,
                normalize=True if normalize_embeddings else None,
                truncate_dim=truncate_dim,
                **call,
            )
            tokens = self._model.token_embeddings(inputs, **call)
            ids, mask = self._model.tokenize(inputs, max_length=max_length, prompt=call["prompt"] or None)
            embeddings = [
                {
                    "sentence_embedding": sentence[i],
                    "token_embeddings": tokens[i],
                    "input_ids": ids[i],
                    "attention_mask": mask[i],
                }
                for i in range(len(inputs))
            ]
        else:
            raise ValueError(
                f"output_value {output_value!r} is not supported: use 'sentence_embedding', 'token_embeddings' or None."
            )

        if convert_to_tensor:
            torch = _torch()
            embeddings = torch.from_numpy(embeddings) if len(embeddings) else torch.tensor([])
        elif convert_to_numpy:
            if not len(embeddings):
                embeddings = np.array([])
        elif output_value == "sentence_embedding":
            embeddings = list(embeddings)
        if singular:
            embeddings = embeddings[0]
        return embeddings

    def _processing_kwargs(self, processing_kwargs: Any) -> tuple[int | None, bool]:
        """``processing_kwargs={"text": {"max_length": N, "truncation": bool}}``: this call's truncation."""
        if not isinstance(processing_kwargs, dict) or set(processing_kwargs) - {"text"}:
            raise ValueError('processing_kwargs: sembed takes only {"text": {"max_length": N, "truncation": bool}}.')
        text = processing_kwargs.get("text") or {}
        if not isinstance(text, dict) or (unknown := set(text) - {"max_length", "truncation"}):
            raise ValueError(f"processing_kwargs['text']: only max_length and truncation are supported, got {sorted(unknown)}.")
        return text.get("max_length", self._max_seq_length), bool(text.get("truncation", True))

    def _embed(self, inputs: list[str], show_progress_bar: bool, **opts: Any) -> np.ndarray:
        if not show_progress_bar or len(inputs) <= opts["batch_size"]:
            return self._model.embed(inputs, **opts)
        # With a bar: the inputs go in slices of several batches, so the bar moves; each slice is
        # still sorted by length inside the engine, and vectors do not depend on the batch.
        step = opts["batch_size"] * 8
        total = -(-len(inputs) // opts["batch_size"])
        bar = _progress.bar(total, "Batches")
        parts = []
        try:
            for start in range(0, len(inputs), step):
                part = inputs[start : start + step]
                parts.append(self._model.embed(part, **opts))
                bar.update(-(-len(part) // opts["batch_size"]))
        finally:
            bar.close()
        return np.concatenate(parts, axis=0)

    def encode_query(self, inputs: str | Iterable[str] | None = None, prompt_name: str | None = None, prompt: str | None = None, **kwargs: Any):
        """:meth:`encode` with the ``"query"`` prompt when neither ``prompt_name`` nor ``prompt`` is given
        (an empty one unless the model or ``prompts`` define it, which turns the default prompt off)."""
        if prompt_name is None and prompt is None and "query" in self.prompts:
            prompt_name = "query"
        kwargs.setdefault("task", "query")
        return self.encode(inputs, prompt_name=prompt_name, prompt=prompt, **kwargs)

    def encode_document(self, inputs: str | Iterable[str] | None = None, prompt_name: str | None = None, prompt: str | None = None, **kwargs: Any):
        """:meth:`encode` with the first of the ``"document"``, ``"passage"``, ``"corpus"`` prompts when
        neither ``prompt_name`` nor ``prompt`` is given."""
        if prompt_name is None and prompt is None:
            for candidate in ("document", "passage", "corpus"):
                if candidate in self.prompts:
                    prompt_name = candidate
                    break
        kwargs.setdefault("task", "document")
        return self.encode(inputs, prompt_name=prompt_name, prompt=prompt, **kwargs)

    def similarity(self, embeddings1, embeddings2) -> np.ndarray:
        """Scores of every vector of ``embeddings1`` with every vector of ``embeddings2``
        (``[n1, n2]``), by :attr:`similarity_fn_name`."""
        return util.SIMILARITY[self.similarity_fn_name][0](embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1, embeddings2) -> np.ndarray:
        """Scores of ``embeddings1[i]`` with ``embeddings2[i]`` (``[n]``), by :attr:`similarity_fn_name`."""
        return util.SIMILARITY[self.similarity_fn_name][1](embeddings1, embeddings2)

    def tokenize(self, texts: list[str] | str, **kwargs: Any) -> dict[str, np.ndarray]:
        """Token ids as the model consumes them (special tokens included, cut at :attr:`max_seq_length`),
        padded to the longest: ``input_ids``, ``attention_mask`` (and ``token_type_ids`` for BERT models),
        int64 numpy arrays."""
        if kwargs:
            raise ValueError(f"tokenize(): unsupported keyword arguments {sorted(kwargs)}.")
        if isinstance(texts, str):
            texts = [texts]
        ids, mask = self._model.tokenize(list(texts), max_length=self._max_seq_length)
        out = {"input_ids": ids, "attention_mask": mask}
        if self._info["architecture"] == "BertModel":
            out["token_type_ids"] = np.zeros_like(ids)
        return out


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError(
            "encode(convert_to_tensor=True) returns a torch tensor, and torch is not installed. "
            "Install torch, or leave convert_to_tensor=False to get a numpy array."
        ) from None
    return torch
