// The npm package in Node against the reference vectors (issue #18): sentence-transformers 6.2's
// all-MiniLM-L6-v2 (f32 files) and model2vec 0.10's m2v-minilm-256 on the 2,758 STS-B sentences,
// min cosine >= 0.99999; the tiny fixtures of every architecture; the package's API and errors.
//
//   SEMBED_WASM_PKG=wasm/pkg SEMBED_MINILM=DIR node --test wasm/tests/
//
// Run by scripts/test-wasm.sh (which builds the package and fetches the model first).
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import test from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

import { cos, folder, minCosine, npy, relaxedSimd, stsb } from "./files.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const pkg = process.env.SEMBED_WASM_PKG ?? path.join(root, "wasm/pkg");
const minilm = process.env.SEMBED_MINILM;
const data = path.join(root, "tests/data");
const { load, similarity } = await import(pathToFileURL(path.join(pkg, "index.js")).href);

const sentences = stsb();

test("Model2Vec: model2vec's vectors of the STS-B sentences", async () => {
  const m = await load(folder(path.join(data, "m2v-minilm-256")));
  assert.equal(m.dim, 256);
  assert.equal(m.info().kind, "static");
  const { min, at } = minCosine(m.embed(sentences), npy(path.join(data, "m2v-minilm-256-stsb.npy")));
  assert.ok(min >= 0.99999, `min cosine ${min} at sentence ${at}: ${sentences[at]}`);
  console.log(`m2v-minilm-256: ${sentences.length} sentences, min cosine ${min}`);
});

test("all-MiniLM-L6-v2 (f32): sentence-transformers' vectors of the STS-B sentences", async () => {
  assert.ok(minilm, "SEMBED_MINILM must name the all-MiniLM-L6-v2 folder (scripts/fetch-test-model.sh)");
  const files = folder(minilm);
  const m = await load(files);
  assert.equal(m.dim, 384);
  assert.equal(m.info().kind, "transformer");
  const t = performance.now();
  const got = m.embed(sentences);
  const secs = (performance.now() - t) / 1000;
  const { min, at } = minCosine(got, npy(path.join(data, "minilm-stsb.npy")));
  assert.ok(min >= 0.99999, `min cosine ${min} at sentence ${at}: ${sentences[at]}`);
  // A text's vector does not depend on its batch: the same floats alone and among 2,758 (the
  // simd128 kernel computes each output in one fixed order, whatever the rows beside it).
  for (const i of [at, 0, sentences.length - 1]) {
    assert.deepEqual(m.embed(sentences[i]), got[i], `sentence ${i} alone differs from the same in a batch`);
  }
  // The full package holds a relaxed-SIMD build too, taken where the engine validates it.
  assert.equal(m.info().cpu, relaxedSimd() ? "simd128-relaxed" : "simd128");
  console.log(`all-MiniLM-L6-v2 ran on ${m.info().cpu}`);
  console.log(`all-MiniLM-L6-v2: ${sentences.length} sentences in ${secs.toFixed(1)} s, min cosine ${min}`);
});

test("all-MiniLM-L6-v2 in float16 (the built-in model's files): within 0.9999995 of sentence-transformers", async () => {
  // The native build's bound for these files; in wasm the f16 weights are widened to f32 at load.
  const m = await load(folder(path.join(root, "crates/engine/assets/all-MiniLM-L6-v2")));
  assert.equal(m.info().weightsDtype, "f16");
  const { min, at } = minCosine(m.embed(sentences), npy(path.join(data, "minilm-stsb.npy")));
  assert.ok(min >= 0.9999995, `min cosine ${min} at sentence ${at}: ${sentences[at]}`);
  console.log(`all-MiniLM-L6-v2 f16: ${sentences.length} sentences, min cosine ${min}`);
  m.free();
});

// The tiny random sentence-transformers models of tests/data/fixtures (every architecture and
// pooling the engine has: BERT cls / max + Dense / mean_sqrt_len, XLM-RoBERTa with its Unigram
// tokenizer through the tokenizers crate's wasm build, MPNet) against their references.
for (const name of ["tiny-bert-cls", "tiny-bert-max-dense", "tiny-bert-meansqrt", "tiny-xlmr-mean", "tiny-mpnet-mean"]) {
  test(`fixture ${name}: sentence-transformers' vectors`, async () => {
    const dir = path.join(data, "fixtures", name);
    const refs = fs
      .readFileSync(path.join(dir, "reference.jsonl"), "utf8")
      .split("\n")
      .filter((l) => l)
      .map((l) => JSON.parse(l));
    const m = await load(folder(dir));
    const got = m.embed(refs.map((r) => r.text));
    for (const [i, r] of refs.entries()) {
      const c = cos(got[i], r.embedding);
      assert.ok(c >= 0.99999, `${name}: ${JSON.stringify(r.text)} cosine ${c}`);
    }
    m.free();
  });
}

/** The f32 value of a half's bits, decoded by hand. */
function halfToFloat(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0x1f) return man ? NaN : sign * Infinity;
  return sign * (exp ? 2 ** (exp - 15) * (1 + man / 1024) : 2 ** -14 * (man / 1024));
}

test("every float16 value of a Model2Vec table widens exactly (the simd128 path)", async () => {
  // A Model2Vec model made here: the test model's tokenizer, a table of 8 columns holding all
  // 65,536 half-precision bit patterns across 8,192 one-token words, no normalization. A word's
  // vector is then its row, widened.
  const tokenizer = fs.readFileSync(path.join(data, "m2v-minilm-256/tokenizer.json"));
  const vocab = JSON.parse(tokenizer).model.vocab;
  const rows = Math.max(...Object.values(vocab)) + 1;
  const words = Object.entries(vocab)
    .filter(([t]) => /^[a-z]{2,}$/.test(t))
    .sort((a, b) => a[1] - b[1])
    .slice(0, 8192);
  assert.equal(words.length, 8192);
  const table = new Uint16Array(rows * 8);
  words.forEach(([, id], i) => {
    for (let c = 0; c < 8; c++) table[id * 8 + c] = i * 8 + c;
  });
  let header = JSON.stringify({ embeddings: { dtype: "F16", shape: [rows, 8], data_offsets: [0, table.byteLength] } });
  header += " ".repeat((8 - (header.length % 8)) % 8);
  const st = new Uint8Array(8 + header.length + table.byteLength);
  new DataView(st.buffer).setBigUint64(0, BigInt(header.length), true);
  st.set(new TextEncoder().encode(header), 8);
  st.set(new Uint8Array(table.buffer), 8 + header.length);
  const config = { model_type: "model2vec", hidden_dim: 8, normalize: false, pooling: "mean" };
  const m = await load({
    "config.json": new TextEncoder().encode(JSON.stringify(config)),
    "tokenizer.json": tokenizer,
    "model.safetensors": st,
  });
  const got = m.embed(words.map(([t]) => t));
  for (let h = 0; h < 65536; h++) {
    const v = got[h >> 3][h & 7];
    const want = halfToFloat(h);
    // -0 comes out +0 (the mean starts from +0: 0 + -0 = +0), in any implementation.
    if (Number.isNaN(want)) assert.ok(Number.isNaN(v), `half 0x${h.toString(16)}: ${v}`);
    else assert.equal(v, want === 0 ? 0 : want, `half 0x${h.toString(16)}`);
  }
  m.free();
});

test("the API: one string, options, similarity, info, errors", async () => {
  const m = await load(new Map(Object.entries(folder(path.join(data, "m2v-minilm-256")))));
  const one = m.embed("a cat sat on the mat");
  assert.ok(one instanceof Float32Array);
  assert.equal(one.length, 256);
  const [a, b] = m.embed(["a cat sat on the mat", "a dog lay on the rug"]);
  assert.deepEqual([...a], [...one]);
  assert.ok(Math.abs(similarity(a, b) - cos(a, b)) < 1e-6);
  assert.ok(Math.abs(similarity(a, a) - 1) < 1e-6);
  const raw = m.embed(["a cat sat on the mat"], { normalize: false })[0];
  assert.ok(Math.abs(Math.hypot(...a) - 1) < 1e-5);
  assert.ok(Math.abs(cos(raw, a) - 1) < 1e-6);
  assert.equal(m.embed(["x"], { truncateDim: 32 })[0].length, 32);
  assert.deepEqual(m.embed([]), []);
  assert.throws(() => m.embed(["x"], { normalise: true }), /unknown option "normalise"/);
  assert.throws(() => m.embed(["x"], { batchSize: 0 }), /positive integer/);
  assert.throws(() => m.embed([1, 2]), TypeError);
  assert.throws(() => similarity(a, a.subarray(0, 3)), /dimensions/);
  await assert.rejects(load({}), /no files/);
  await assert.rejects(load({ "config.json": new TextEncoder().encode("{not json") }), Error);
  await assert.rejects(load({ "config.json": "text" }), TypeError);
  m.free();
});
