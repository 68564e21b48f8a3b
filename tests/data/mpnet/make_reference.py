"""Reference vectors for sentence-transformers/all-mpnet-base-v2, made with Python sentence-transformers.

How it was run (CPU only, 2 torch threads, hub offline):

    # the model directory comes from scripts/fetch-mpnet.sh (~/.cache/sembed/test-models/all-mpnet-base-v2)
    python3 -m venv ~/.cache/sembed/venvs/st
    ~/.cache/sembed/venvs/st/bin/python -m pip install sentence-transformers==6.2.0 torch==2.15.0 numpy
    HF_HUB_OFFLINE=1 CUDA_VISIBLE_DEVICES= ~/.cache/sembed/venvs/st/bin/python \
        tests/data/mpnet/make_reference.py "$(scripts/fetch-mpnet.sh)"

Versions it was run with: sentence-transformers 6.2.0, torch 2.15.0 (CPU), transformers 5.24.0,
tokenizers 0.23.3, numpy 2.4.6, CPython 3.11.7.

Input: texts.json beside this script (a JSON array of strings). Output: reference.jsonl beside it, one object
per text, in the order of texts.json:
  text       the input string
  input_ids  model.tokenize([text])["input_ids"][0] -- the ids sentence-transformers feeds the model,
             truncated at the model's max_seq_length (384), with <s> ... </s>
  embedding  the 768 floats of model.encode([text], convert_to_numpy=True), each text encoded alone (batch
             of one, so no padding); normalization is whatever the model's own modules do (its modules.json
             ends with Normalize). Written as float(np.float32) -> repr, i.e. exact float32 values.
"""
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import sentence_transformers
import tokenizers
import torch
import transformers
from sentence_transformers import SentenceTransformer

here = os.path.dirname(os.path.abspath(__file__))
model_dir = sys.argv[1]
torch.set_num_threads(2)

t0 = time.time()
model = SentenceTransformer(model_dir, device="cpu")
model.eval()
print(f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}, "
      f"transformers {transformers.__version__}, tokenizers {tokenizers.__version__}, numpy {np.__version__}, "
      f"device {model.device}, threads {torch.get_num_threads()}")
print(f"max_seq_length {model.max_seq_length}")
print(f"modules: {[type(m).__name__ for m in model]}")
print(f"loaded in {time.time() - t0:.1f}s")

with open(os.path.join(here, "texts.json"), encoding="utf-8") as f:
    texts = json.load(f)

t0 = time.time()
truncated = 0
out_path = os.path.join(here, "reference.jsonl")
with open(out_path + ".tmp", "w", encoding="utf-8") as out, torch.inference_mode():
    for text in texts:
        ids = model.tokenize([text])["input_ids"][0].tolist()
        untruncated = model.tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"]
        if len(untruncated) > len(ids):
            truncated += 1
        emb = model.encode([text], convert_to_numpy=True)
        assert emb.dtype == np.float32 and emb.shape == (1, 768), (emb.dtype, emb.shape)
        rec = {"text": text, "input_ids": ids, "embedding": [float(x) for x in emb[0]]}
        out.write(json.dumps(rec, ensure_ascii=False) + "\n")
os.replace(out_path + ".tmp", out_path)
print(f"{len(texts)} texts, {truncated} truncated at {model.max_seq_length} tokens, "
      f"encoded in {time.time() - t0:.1f}s -> {out_path}")
