// What the package's tests and benchmark share: a model folder's files by relative name, the
// STS-B sentences, reference vectors (.npy) and the cosine.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Every file under `dir` as a Uint8Array, by its name relative to `dir` (`/`-separated). */
export function folder(dir) {
  const out = {};
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[path.relative(dir, p).split(path.sep).join("/")] = new Uint8Array(fs.readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

/** The STS-B test sentences: every first sentence, then every second (the references' order). */
export function stsb() {
  const rows = fs.readFileSync(path.join(root, "tests/data/stsb-test.tsv"), "utf8").split("\n").filter((l) => l);
  const cols = rows.map((r) => r.split("\t"));
  return [...cols.map((c) => c[5]), ...cols.map((c) => c[6])];
}

/** A float32 .npy matrix (C order): `{ rows, cols, values }`. */
export function npy(file) {
  const b = fs.readFileSync(file);
  const headerLen = b.readUInt16LE(8);
  const header = b.subarray(10, 10 + headerLen).toString("latin1");
  if (!/'descr': '<f4'/.test(header) || !/'fortran_order': False/.test(header)) {
    throw new Error(`${file}: not a float32 C-order .npy`);
  }
  const [rows, cols] = header.match(/'shape': \((\d+), (\d+)\)/).slice(1).map(Number);
  const start = 10 + headerLen;
  const values = new Float32Array(b.buffer.slice(b.byteOffset + start, b.byteOffset + start + rows * cols * 4));
  return { rows, cols, values };
}

/** The cosine of two vectors (in f64). */
export function cos(a, b) {
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return d / Math.sqrt(na * nb);
}

/** Whether this engine runs relaxed SIMD (the probe index.js uses to pick its build). */
export function relaxedSimd() {
  const v128 = [0xfd, 0x0c, ...new Array(16).fill(0)];
  const body = [0x00, ...v128, ...v128, ...v128, 0xfd, 0x85, 0x02, 0x0b];
  const module = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b];
  module.push(0x03, 0x02, 0x01, 0x00, 0x0a, body.length + 2, 0x01, body.length, ...body);
  return WebAssembly.validate(new Uint8Array(module));
}

/** The smallest cosine between `got` and the reference rows, and where. */
export function minCosine(got, ref) {
  assert.equal(got.length, ref.rows);
  let min = 1, at = -1;
  got.forEach((v, i) => {
    assert.equal(v.length, ref.cols);
    const c = cos(v, ref.values.subarray(i * ref.cols, (i + 1) * ref.cols));
    if (!(c >= min)) {
      min = c;
      at = i;
    }
  });
  return { min, at };
}
