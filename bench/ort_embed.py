#!/usr/bin/env python3
"""ONNX Runtime baseline for bench/bench.py: all-MiniLM-L6-v2 exported to ONNX (see BENCHMARKS.md),
tokenized with the HF `tokenizers` package as sentence-transformers does (truncation at 256, padding per
batch of 32), mean pooling over the attention mask, L2 normalization.
Usage: ort_embed.py MODEL_ONNX MODEL_DIR (--text TEXT | --input FILE)"""
import sys

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

onnx_path, model_dir, mode, arg = sys.argv[1:5]
texts = [arg] if mode == "--text" else open(arg, encoding="utf-8").read().splitlines()
tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
tok.enable_truncation(256)
tok.enable_padding()
opts = ort.SessionOptions()
opts.intra_op_num_threads = 2
sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
names = {i.name for i in sess.get_inputs()}
out = []
for i in range(0, len(texts), 32):
    enc = tok.encode_batch([t.strip() for t in texts[i:i + 32]])
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in names:
        feed["token_type_ids"] = np.zeros_like(ids)
    hidden = sess.run(None, feed)[0]
    m = mask[..., None].astype(np.float32)
    pooled = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
    out.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True).clip(1e-12))
print(np.concatenate(out).shape)
