// The small build (scripts/build-wasm.sh --small: no `tokenizers` crate) in Node (issue #18): at
// most 2 MB of wasm; Model2Vec and BERT WordPiece models give the same vectors as the full build's
// references; a tokenizer it cannot run is a one-line error naming what is missing.
//
//   SEMBED_WASM_PKG_SMALL=wasm/pkg-small SEMBED_MINILM=DIR node --test wasm/tests/
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import test from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

import { folder, minCosine, npy, stsb } from "./files.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const pkg = path.resolve(process.env.SEMBED_WASM_PKG_SMALL ?? path.join(root, "wasm/pkg-small"));
const data = path.join(root, "tests/data");
const { load } = await import(pathToFileURL(path.join(pkg, "index.js")).href);

test("the small build is at most 2 MB of wasm", () => {
  const bytes = fs.statSync(path.join(pkg, "sembed_wasm_bg.wasm")).size;
  assert.ok(bytes <= 2_000_000, `${bytes} bytes`);
});

test("Model2Vec (m2v-minilm-256): model2vec's vectors of the STS-B sentences", async () => {
  const sentences = stsb();
  const m = await load(folder(path.join(data, "m2v-minilm-256")));
  const { min, at } = minCosine(m.embed(sentences), npy(path.join(data, "m2v-minilm-256-stsb.npy")));
  assert.ok(min >= 0.99999, `sentence ${at}: cosine ${min}`);
  m.free();
});

test("all-MiniLM-L6-v2 (WordPiece, run natively): sentence-transformers' vectors", async () => {
  const dir = process.env.SEMBED_MINILM;
  assert.ok(dir, "SEMBED_MINILM must name the all-MiniLM-L6-v2 folder (scripts/fetch-test-model.sh)");
  const sentences = stsb().slice(0, 300);
  const m = await load(folder(dir));
  assert.equal(m.info().tokenizer, "WordPiece (native)");
  const all = npy(path.join(data, "minilm-stsb.npy"));
  const ref = { ...all, rows: sentences.length, values: all.values.subarray(0, sentences.length * all.cols) };
  const { min, at } = minCosine(m.embed(sentences), ref);
  assert.ok(min >= 0.99999, `sentence ${at}: cosine ${min}`);
  m.free();
});

test("a Unigram tokenizer (XLM-R) is a one-line error naming the missing crate", async () => {
  await assert.rejects(load(folder(path.join(data, "fixtures/tiny-xlmr-mean"))), (e) => {
    assert.match(e.message, /Unigram tokenizer needs the `tokenizers` crate, which this build leaves out/);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
});
