#!/usr/bin/env python3
"""Exports all-MiniLM-L6-v2's encoder to ONNX for the onnxruntime baseline of bench/bench.py, and
checks the file against PyTorch (reference computed before exporting, on a fresh model).

Usage: export_onnx.py MODEL_DIR OUT.onnx
Needs torch, transformers, onnx, onnxruntime (see BENCHMARKS.md for the venv)."""
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
from transformers import AutoModel

model_dir, out = sys.argv[1:3]
model = AutoModel.from_pretrained(model_dir).eval()


class Encoder(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.m(input_ids=input_ids, attention_mask=attention_mask,
                      token_type_ids=token_type_ids).last_hidden_state


ids = torch.randint(1000, 5000, (3, 40))
mask = torch.ones_like(ids)
mask[1, 25:] = 0
with torch.no_grad():
    ref = Encoder(model)(ids, mask, torch.zeros_like(ids)).numpy()
names = ["input_ids", "attention_mask", "token_type_ids"]
torch.onnx.export(Encoder(model), (ids, mask, torch.zeros_like(ids)), out, input_names=names,
                  output_names=["last_hidden_state"], opset_version=17, dynamo=False, do_constant_folding=True,
                  dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names + ["last_hidden_state"]})
onnx.checker.check_model(onnx.load(out))
sess = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
got = sess.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy(),
                      "token_type_ids": np.zeros(ids.shape, np.int64)})[0]
diff = float(np.abs(got - ref)[mask.numpy().astype(bool)].max())
print(f"{out}: max |onnxruntime - torch| over real tokens = {diff:.2e}")
sys.exit(0 if diff < 1e-4 else 1)
