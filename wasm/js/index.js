// sembed in WebAssembly: the ES module around the wasm-bindgen output (sembed_wasm.js). Works in
// Node (ESM) and in the browser; nothing is downloaded but the .wasm file beside this one.
import init, { Model as RawModel, cosine as rawCosine } from "./sembed_wasm.js";

let ready = null;

/** Instantiates the WebAssembly module once (Node: read from disk; browser: fetched). */
function start() {
  if (!ready) {
    const url = new URL("./sembed_wasm_bg.wasm", import.meta.url);
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
