// sembed in WebAssembly: the ES module around the wasm-bindgen output (sembed_wasm.js). Works in
// Node (ESM) and in the browser; nothing is downloaded but the .wasm file beside this one.
import init, { Model as RawModel, cosine as rawCosine } from "./sembed_wasm.js";

let ready = null;

// Whether this package has the relaxed-SIMD build beside the plain one (scripts/build-wasm.sh
// sets it; the small build has one module only).
const RELAXED_BUILD = false; // set by scripts/build-wasm.sh

/** Whether this engine runs relaxed SIMD: a module of one `f32x4.relaxed_madd` validates. */
function hasRelaxedSimd() {
  const v128 = [0xfd, 0x0c, ...new Array(16).fill(0)];
  const body = [0x00, ...v128, ...v128, ...v128, 0xfd, 0x85, 0x02, 0x0b];
  const module = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b];
  module.push(0x03, 0x02, 0x01, 0x00, 0x0a, body.length + 2, 0x01, body.length, ...body);
  return WebAssembly.validate(new Uint8Array(module));
}

/** Instantiates the WebAssembly module once (Node: read from disk; browser: fetched): the
 * relaxed-SIMD build (fused multiply-adds, 1.3× faster transformers) where the engine has it. */
function start() {
  if (!ready) {
    const file = RELAXED_BUILD && hasRelaxedSimd() ? "./sembed_wasm_relaxed_bg.wasm" : "./sembed_wasm_bg.wasm";
    const url = new URL(file, import.meta.url);
    const isNode = typeof process !== "undefined" && process.versions && process.versions.node;
    ready = isNode
      ? import("node:fs/promises").then((fs) => fs.readFile(url)).then((bytes) => init({ module_or_path: bytes }))
      : init({ module_or_path: url });
  }
  return ready;
}

/** A loaded model: `embed`, `dim`, `info`. */
export class Model {
  #raw;
  constructor(raw) {
    this.#raw = raw;
  }

  /** The vector dimension. */
  get dim() {
    return this.#raw.dim;
  }

  /** The vectors of `texts` (an array of strings, or one string), in input order: one
   * Float32Array per text, views into one buffer. */
  embed(texts, options = {}) {
    const one = typeof texts === "string";
    const list = one ? [texts] : texts;
    if (!Array.isArray(list) || list.some((t) => typeof t !== "string")) {
      throw new TypeError("embed(texts): texts must be a string or an array of strings");
    }
    const flat = this.#raw.embedFlat(list, JSON.stringify(options ?? {}));
    const dim = this.#raw.dim;
    const rows = list.map((_, i) => flat.subarray(i * dim, (i + 1) * dim));
    return one ? rows[0] : rows;
  }

  /** Facts about the model (name, kind, dim, pooling, normalize, maxSeqLength, ...). */
  info() {
    return JSON.parse(this.#raw.infoJson());
  }

  /** Frees the model's WebAssembly memory now (otherwise when garbage-collected). */
  free() {
    this.#raw.free();
  }
}

/** Loads a model from its files: `files` maps names relative to the model folder
 * (`"config.json"`, `"1_Pooling/config.json"`, ...) to Uint8Arrays (or ArrayBuffers), as an
 * object or a Map. Resolves to a Model. */
export async function load(files) {
  await start();
  const entries = files instanceof Map ? [...files.entries()] : Object.entries(files ?? {});
  const names = [];
  const contents = [];
  for (const [name, data] of entries) {
    let bytes = data;
    if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else if (ArrayBuffer.isView(data) && !(data instanceof Uint8Array)) {
      bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    }
    if (!(bytes instanceof Uint8Array)) {
      throw new TypeError(`load(files): ${name} must be a Uint8Array or an ArrayBuffer`);
    }
    names.push(name);
    contents.push(bytes);
  }
  return new Model(RawModel.fromFiles(names, contents));
}

/** Cosine similarity of two vectors of the same length. */
export function similarity(a, b) {
  if (ready === null) throw new Error("similarity(): load a model first");
  return rawCosine(a, b);
}
