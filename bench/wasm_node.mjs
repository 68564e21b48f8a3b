// The npm package's speed in Node (issue #18): loads a model folder's files with `load`, then
// times one `embed` of the first N STS-B sentences. Timing, not a test.
//
//   scripts/build-wasm.sh && node bench/wasm_node.mjs MODEL_DIR [N]
//   SEMBED_WASM_PKG=/tmp/other-pkg node bench/wasm_node.mjs MODEL_DIR [N]
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import { folder, stsb } from "../wasm/tests/files.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
// SEMBED_WASM_PKG: another build of the package (e.g. a copy of wasm/pkg, for A/B runs).
const pkg = path.resolve(process.env.SEMBED_WASM_PKG ?? path.join(root, "wasm/pkg"));
const { load } = await import(pathToFileURL(path.join(pkg, "index.js")).href);
const [dir, n = "300"] = process.argv.slice(2);
if (!dir) throw new Error("usage: node bench/wasm_node.mjs MODEL_DIR [N]");

const t0 = performance.now();
const model = await load(folder(dir));
const loaded = performance.now() - t0;
const texts = stsb().slice(0, Number(n));
const t1 = performance.now();
model.embed(texts);
const secs = (performance.now() - t1) / 1000;
console.log(
  `${path.basename(dir)}: load ${loaded.toFixed(0)} ms (files read included); ${texts.length} sentences ` +
    `in ${secs.toFixed(2)} s = ${(texts.length / secs).toFixed(0)}/s`,
);
