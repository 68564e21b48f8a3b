"""Interop: Python model2vec 0.10 loads a model distilled by `sembed distill` and encodes the dev texts to
the vectors `sembed embed` gives for the same model. Run by scripts/test.sh (needs `pip install
model2vec==0.10.0`; no torch). Usage: python3 model2vec_loads_sembed_distill.py SEMBED_BIN MODEL_DIR DEV_JSONL"""
import json, subprocess, sys

import numpy as np
from model2vec import StaticModel

sembed, model_dir, dev = sys.argv[1:4]
texts = [json.loads(line)["text"] for line in open(dev, encoding="utf-8")]
py = StaticModel.from_pretrained(model_dir).encode(texts)
jsonl = "".join(json.dumps(t) + "\n" for t in texts)
out = subprocess.run([sembed, "embed", "--model", model_dir, "--input-format", "jsonl", "-f", "f32"],
                     input=jsonl.encode(), capture_output=True, check=True).stdout
rs = np.frombuffer(out, dtype="<f4").reshape(len(texts), -1)
assert rs.shape == py.shape, (rs.shape, py.shape)
worst = 1.0
for t, a, b in zip(texts, py.astype(np.float64), rs.astype(np.float64)):
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        assert na == nb == 0, f"{t!r}: one side is zero"
        continue
    worst = min(worst, float(a @ b / na / nb))
print(f"model2vec interop: {len(texts)} dev texts, min cosine {worst:.7f}")
assert worst >= 0.99999, f"min cosine {worst} < 0.99999"
print("1 passed, 0 failed")
