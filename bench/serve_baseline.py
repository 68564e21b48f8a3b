#!/usr/bin/env python3
"""The Python embedding service a user would run today, for bench/serve.py to load-test beside `sembed serve`:
sentence-transformers behind FastAPI, served by uvicorn with one worker, OpenAI's `/v1/embeddings` shape.

Kept as plain as the FastAPI tutorial: a sync `def` route (FastAPI runs it in its thread pool, so requests
that arrive together call `encode` concurrently), the model loaded once at start, torch's default thread
count (one per core), no batching across requests. Access log off (as `sembed serve --quiet`).

    python bench/serve_baseline.py --model DIR [--host 127.0.0.1] [--port 0] [--route sync|async]

Prints one stderr line `listening on http://HOST:PORT` (as `sembed serve` does) when the model is loaded
and the socket bound; `GET /health` answers 200 once uvicorn serves. Needs torch, sentence-transformers,
fastapi and uvicorn (`bench/serve.py --setup-baseline` makes that venv). Set HF_HUB_OFFLINE=1: the model
comes from a folder, never the hub.
"""
import argparse, os, socket, sys
from contextlib import asynccontextmanager
from typing import List, Optional, Union

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True, help="a sentence-transformers model folder")
ap.add_argument("--host", default="127.0.0.1")
ap.add_argument("--port", type=int, default=0)
ap.add_argument("--route", choices=["sync", "async"], default="sync",
                help="sync: a `def` route, run in FastAPI's thread pool (the tutorial's advice for blocking "
                     "calls); async: an `async def` route, encode on the event loop, one request at a time")
a = ap.parse_args()

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from sentence_transformers import SentenceTransformer

model = SentenceTransformer(a.model, device="cpu")
NAME = os.path.basename(os.path.normpath(a.model))
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind((a.host, a.port))


@asynccontextmanager
async def lifespan(app):
    host, port = sock.getsockname()[:2]
    print(f"listening on http://{host}:{port}", file=sys.stderr, flush=True)
    yield


app = FastAPI(lifespan=lifespan)


class EmbeddingRequest(BaseModel):
    input: Union[str, List[str]]
    model: Optional[str] = None
    encoding_format: Optional[str] = None


@app.get("/health")
def health():
    return {"status": "ok"}


def embeddings(req: EmbeddingRequest):
    texts = [req.input] if isinstance(req.input, str) else req.input
    vectors = model.encode(texts, batch_size=32)
    tokens = sum(len(ids) for ids in model.tokenizer(texts)["input_ids"])
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)],
        "model": req.model or NAME,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


async def embeddings_async(req: EmbeddingRequest):
    return embeddings(req)


app.post("/v1/embeddings")(embeddings if a.route == "sync" else embeddings_async)

if __name__ == "__main__":
    config = uvicorn.Config(app, workers=1, access_log=False, log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])
