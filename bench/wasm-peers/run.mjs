// One system, one fresh Node process: the worker that bench/wasm_peers.mjs starts once per system
// per round. Imports the library, loads the model, embeds one sentence (the first vector), then the
// 2,758 STS-B sentences; prints one JSON line of timings, then (if OUT is given) writes the STS-B
// vectors, in input order, as raw little-endian f32 rows.
//
//   node bench/wasm-peers/run.mjs SYSTEM [OUT.f32]
//
// Paths come from the environment, which bench/wasm_peers.mjs sets: SEMBED_WASM_PKG (the sembed
// package folder), MODEL_DIR (all-MiniLM-L6-v2 with model.safetensors, for sembed), M2V_DIR (the
// static model), WASM_PEERS_NODE_MODULES (transformers.js and onnxruntime-web), WASM_PEERS_MODELS
// (transformers.js's localModelPath, holding all-MiniLM-L6-v2/onnx/model.onnx), WASM_PEERS_M2V_PKG
// (model2vec-rs's wasm-bindgen output).
//
// Times are performance.now() values: in Node, milliseconds since the process started.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

import { folder, stsb } from "../../wasm/tests/files.mjs";

const ONE = "A man is playing a guitar.";
const BATCH = 32; // transformers.js: sentence-transformers' batch size and length sort
const [system, out] = process.argv.slice(2);
const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`run.mjs: ${name} is not set (bench/wasm_peers.mjs sets it)`);
  return v;
};
const url = (...p) => pathToFileURL(path.join(...p)).href;

// Each system: import() -> { load() -> embed(texts) -> Float32Array (n * dim, input order) }.
const systems = {
  "sembed-wasm": () => sembed(env("MODEL_DIR")),
  "sembed-wasm-relaxed": () => sembed(env("MODEL_DIR")), // started with the V8 flag by wasm_peers.mjs
  "sembed-wasm-static": () => sembed(env("M2V_DIR")),
  "m2v-rs-wasm": () => m2vRs(env("M2V_DIR")),
  "tjs-node": () => tjsNode(0), // ORT's default intra-op threads (0 = its own choice)
  "tjs-node-1t": () => tjsNode(1),
  "tjs-wasm": () => tjsWasm(1, ""),
  "tjs-wasm-2t": () => tjsWasm(2, ""),
  "tjs-wasm-asyncify": () => tjsWasm(1, ".asyncify"),
};

async function sembed(dir) {
  const { load } = await import(url(env("SEMBED_WASM_PKG"), "index.js"));
  return {
    threads: 1,
    batch: "whole array in one embed() call",
    load: async () => {
      const model = await load(folder(dir));
      return (texts) => {
        const rows = model.embed(texts);
        const flat = new Float32Array(texts.length * model.dim);
        rows.forEach((r, i) => flat.set(r, i * model.dim));
        return flat;
      };
    },
  };
}

async function m2vRs(dir) {
  const pkg = env("WASM_PEERS_M2V_PKG");
  const { default: init, Model } = await import(url(pkg, "m2v_rs_wasm.js"));
  const read = (n) => new Uint8Array(fs.readFileSync(path.join(dir, n)));
  return {
    threads: 1,
    batch: "whole array in one encode() call",
    load: async () => {
      await init({ module_or_path: fs.readFileSync(path.join(pkg, "m2v_rs_wasm_bg.wasm")) });
      const model = Model.fromBytes(read("tokenizer.json"), read("model.safetensors"), read("config.json"));
      return (texts) => model.encode(texts);
    },
  };
}

async function transformers() {
  const T = await import(url(env("WASM_PEERS_NODE_MODULES"), "@huggingface/transformers/dist/transformers.node.mjs"));
  T.env.allowRemoteModels = false;
  T.env.localModelPath = env("WASM_PEERS_MODELS");
  T.env.useWasmCache = false; // it would fetch the .wasm from its CDN URL
  return T;
}

/** The pipeline's embed: batches of 32, sorted by descending character length, back in input order. */
function tjsEmbed(extractor) {
  return async (texts) => {
    const order = [...texts.keys()].sort((a, b) => texts[b].length - texts[a].length);
    let flat = null;
    for (let i = 0; i < order.length; i += BATCH) {
      const idx = order.slice(i, i + BATCH);
      const t = await extractor(idx.map((j) => texts[j]), { pooling: "mean", normalize: true });
      const dim = t.dims[1];
      flat ??= new Float32Array(texts.length * dim);
      idx.forEach((j, k) => flat.set(t.data.subarray(k * dim, (k + 1) * dim), j * dim));
    }
    return flat;
  };
}

async function tjsNode(threads) {
  const T = await transformers();
  const session_options = threads ? { intraOpNumThreads: threads, interOpNumThreads: 1 } : {};
  return {
    threads: threads || "ORT default",
    batch: `${BATCH}, sorted by length (descending)`,
    load: async () =>
      tjsEmbed(await T.pipeline("feature-extraction", "all-MiniLM-L6-v2", { dtype: "fp32", device: "cpu", session_options })),
  };
}

// transformers.js picks onnxruntime-node in Node and offers no "wasm" device there; a global
// onnxruntime (Symbol.for("onnxruntime"), which it checks first) makes it use onnxruntime-web, the
// package that its browser build uses. With that global it lists no devices, so "auto" (-> no
// device filter) plus an explicit "wasm" execution provider. The .wasm files come from the
// onnxruntime-web package on disk (transformers.js would point at its CDN).
async function tjsWasm(threads, variant) {
  const nm = env("WASM_PEERS_NODE_MODULES");
  const ort = await import(url(nm, "onnxruntime-web/dist/ort.node.min.mjs"));
  const dist = path.join(nm, "onnxruntime-web/dist");
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.wasmPaths = {
    mjs: url(dist, `ort-wasm-simd-threaded${variant}.mjs`),
    wasm: url(dist, `ort-wasm-simd-threaded${variant}.wasm`),
  };
  globalThis[Symbol.for("onnxruntime")] = ort;
  const T = await transformers();
  return {
    threads,
    batch: `${BATCH}, sorted by length (descending)`,
    load: async () =>
      tjsEmbed(
        await T.pipeline("feature-extraction", "all-MiniLM-L6-v2", {
          dtype: "fp32",
          device: "auto",
          session_options: { executionProviders: ["wasm"] },
        }),
      ),
  };
}

if (!systems[system]) throw new Error(`run.mjs: unknown system ${system}; one of ${Object.keys(systems).join(" ")}`);
const t0 = performance.now();
const sys = await systems[system]();
const t1 = performance.now();
const embed = await sys.load();
const t2 = performance.now();
const first = await embed([ONE]);
const t3 = performance.now();
if (!(first.length > 0) || !Number.isFinite(first[0])) throw new Error(`run.mjs: ${system}: no vector`);

const texts = stsb();
const cpu0 = process.cpuUsage();
const t4 = performance.now();
const vecs = await embed(texts);
const secs = (performance.now() - t4) / 1000;
const cpu = process.cpuUsage(cpu0);
const maxrssKb = process.resourceUsage().maxRSS;
console.log(
  JSON.stringify({
    system,
    threads: sys.threads,
    batch: sys.batch,
    boot_ms: t0, // Node start-up until the library import begins
    import_ms: t1 - t0,
    load_ms: t2 - t1,
    first_call_ms: t3 - t2,
    to_first_ms: t3, // from process start to the first vector
    n: texts.length,
    dim: vecs.length / texts.length,
    embed_s: secs,
    sent_per_s: texts.length / secs,
    cpu_per_wall: (cpu.user + cpu.system) / 1e6 / secs,
    maxrss_mb: maxrssKb / 1024,
  }),
);
if (out) fs.writeFileSync(out, new Uint8Array(vecs.buffer, vecs.byteOffset, vecs.byteLength));
