// The sembed npm package (WebAssembly) side by side with transformers.js on all-MiniLM-L6-v2 and with
// model2vec-rs's WebAssembly build on a static model, in Node (issue #18), on the 2,758 STS-B
// sentences; the native sembed binary as a reference. Every run is a fresh Node process
// (bench/wasm-peers/run.mjs: import, load, one sentence, then all 2,758, peak RSS); the systems are
// interleaved in R rounds, medians printed as a markdown table with ratios sembed / peer.
// A first, untimed round writes every system's vectors and checks them against the references
// (min cosine); it is also the warm-up.
//
//   bench/wasm_peers.sh [R] [SYSTEM ...]          (sets up what is missing, then runs this)
//   node bench/wasm_peers.mjs [R] [SYSTEM ...]    (R default 3; systems default: all)
//
// Environment (bench/wasm_peers.sh sets all but the first):
//   SEMBED_WASM_PKG          the sembed package folder (default: wasm/pkg of this checkout)
//   MODEL_DIR                all-MiniLM-L6-v2 (Hugging Face layout, model.safetensors)
//   M2V_DIR                  the static model (default tests/data/m2v-minilm-256)
//   WASM_PEERS_CACHE         default ~/.cache/sembed/bench/wasm-peers: npm/node_modules,
//                            models/all-MiniLM-L6-v2 (transformers.js layout), m2v-rs-wasm-pkg
//   SEMBED                   the native binary (default target/release/sembed)
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { stsb } from "../wasm/tests/files.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const home = os.homedir();
const cache = path.resolve(process.env.WASM_PEERS_CACHE ?? path.join(home, ".cache/sembed/bench/wasm-peers"));
const cfg = {
  SEMBED_WASM_PKG: path.resolve(process.env.SEMBED_WASM_PKG ?? path.join(root, "wasm/pkg")),
  MODEL_DIR: path.resolve(process.env.MODEL_DIR ?? path.join(home, ".cache/sembed/test-models/all-MiniLM-L6-v2")),
  M2V_DIR: path.resolve(process.env.M2V_DIR ?? path.join(root, "tests/data/m2v-minilm-256")),
  WASM_PEERS_NODE_MODULES: path.join(cache, "npm/node_modules"),
  WASM_PEERS_MODELS: path.join(cache, "models"),
  WASM_PEERS_M2V_PKG: path.join(cache, "m2v-rs-wasm-pkg"),
};
const sembedBin = path.resolve(process.env.SEMBED ?? path.join(root, "target/release/sembed"));
const refs = { 384: path.join(root, "tests/data/minilm-stsb.npy"), 256: path.join(root, "tests/data/m2v-minilm-256-stsb.npy") };

// name -> [group, description]; the group's first system is the one the ratios divide.
const ALL = {
  "sembed-wasm": ["minilm", "**sembed npm package** (WebAssembly, simd128), all-MiniLM-L6-v2 safetensors f32"],
  "sembed-wasm-relaxed": ["minilm", "**sembed npm package**, its relaxed-SIMD build (FMA; Node 20 with `--experimental-wasm-relaxed-simd`)"],
  "tjs-wasm": ["minilm", "transformers.js + onnxruntime-web (WebAssembly, `ort-wasm-simd-threaded.wasm`), ONNX fp32"],
  "tjs-wasm-2t": ["minilm", "transformers.js + onnxruntime-web, as above, `numThreads` 2 (Node worker threads)"],
  "tjs-wasm-asyncify": ["minilm", "transformers.js + onnxruntime-web, `.asyncify` build (what transformers.js loads in a browser)"],
  "tjs-node-1t": ["minilm", "transformers.js + onnxruntime-node (native ORT), intra-op 1"],
  "tjs-node": ["minilm", "transformers.js + onnxruntime-node (native ORT), ORT's default threads"],
  "sembed-native-1t": ["minilm", "reference: native `sembed embed -t 1` (whole process)"],
  "sembed-native": ["minilm", "reference: native `sembed embed` (whole process), all cores"],
  "sembed-wasm-static": ["static", "**sembed npm package**, m2v-minilm-256 (static)"],
  "m2v-rs-wasm": ["static", "model2vec-rs 0.4.0 `wasm` feature (wasm-bindgen, simd128), m2v-minilm-256"],
  "sembed-native-static": ["static", "reference: native `sembed embed`, m2v-minilm-256 (whole process)"],
};
const THREADS = {
  "sembed-wasm": "1", "sembed-wasm-relaxed": "1", "tjs-wasm": "1", "tjs-wasm-2t": "2", "tjs-wasm-asyncify": "1", "tjs-node-1t": "1",
  "tjs-node": "default", "sembed-native-1t": "1", "sembed-native": String(os.cpus().length),
  "sembed-wasm-static": "1", "m2v-rs-wasm": "1", "sembed-native-static": String(os.cpus().length),
};

const args = process.argv.slice(2);
const R = args.length && /^\d+$/.test(args[0]) ? Number(args.shift()) : 3;
const chosen = args.length ? args : Object.keys(ALL);
for (const s of chosen) if (!ALL[s]) throw new Error(`wasm_peers.mjs: unknown system ${s}; one of ${Object.keys(ALL).join(" ")}`);

const texts = stsb();
const work = path.join(cache, "out");
fs.mkdirSync(work, { recursive: true });
const sentencesFile = path.join(work, "stsb-sentences.txt");
fs.writeFileSync(sentencesFile, texts.join("\n") + "\n");

/** Runs a command; resolves to { code, stdout, stderr, wall_ms } (wall time from spawn to exit). */
function run(cmd, argv, env = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(cmd, argv, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    p.on("error", reject);
    p.on("close", (code) => resolve({ code, stdout, stderr, wall_ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
  });
}
const fail = (what, r) => {
  throw new Error(`${what} exited ${r.code}\n${r.stderr.slice(-3000)}`);
};

/** One Node worker: run.mjs's JSON line plus the whole-process wall time. */
async function nodeSystem(system, out) {
  // The relaxed-SIMD row: the same package in a Node that validates relaxed SIMD (a V8 flag in
  // Node 20), so index.js takes its relaxed build.
  const flags = system === "sembed-wasm-relaxed" ? ["--experimental-wasm-relaxed-simd"] : [];
  const argv = [...flags, path.join(root, "bench/wasm-peers/run.mjs"), system, ...(out ? [out] : [])];
  const r = await run(process.execPath, argv, cfg);
  if (r.code !== 0) fail(system, r);
  const line = r.stdout.trim().split("\n").pop();
  return { ...JSON.parse(line), wall_ms: r.wall_ms };
}

/** The native binary: one sentence (start-up, whole process), then the 2,758 sentences from a
 * file; throughput = 2,758 / (wall of the file run - wall of the one-sentence run). Peak RSS from
 * GNU time when /usr/bin/time exists. */
async function nativeSystem(system, out) {
  const model = system === "sembed-native-static" ? cfg.M2V_DIR : cfg.MODEL_DIR;
  const threads = system === "sembed-native-1t" ? ["-t", "1"] : [];
  const timed = fs.existsSync("/usr/bin/time");
  const go = async (rest) => {
    const rss = path.join(work, "time.txt");
    const argv = ["embed", "-q", "-m", model, ...threads, "-f", "f32", ...rest];
    const r = timed
      ? await run("/usr/bin/time", ["-f", "%M", "-o", rss, sembedBin, ...argv])
      : await run(sembedBin, argv);
    if (r.code !== 0) fail(system, r);
    return { wall_ms: r.wall_ms, maxrss_mb: timed ? Number(fs.readFileSync(rss, "utf8").trim().split("\n").pop()) / 1024 : NaN };
  };
  const one = await go(["-o", "/dev/null", "A man is playing a guitar."]);
  const all = await go(["-o", out ?? "/dev/null", "--input", sentencesFile]);
  const secs = (all.wall_ms - one.wall_ms) / 1000;
  return {
    system,
    to_first_ms: one.wall_ms,
    wall_ms: all.wall_ms,
    load_ms: NaN,
    n: texts.length,
    sent_per_s: texts.length / secs,
    maxrss_mb: all.maxrss_mb,
    one_maxrss_mb: one.maxrss_mb,
  };
}
const runSystem = (s, out) => (s.startsWith("sembed-native") ? nativeSystem(s, out) : nodeSystem(s, out));

/** Minimum cosine, per row, of a raw f32 file against a reference .npy (float32, C order). */
function minCosine(file, dim) {
  const buf = fs.readFileSync(refs[dim]);
  const hl = buf.readUInt16LE(8);
  const header = buf.subarray(10, 10 + hl).toString();
  if (!header.includes("'<f4'") || !header.includes(`(${texts.length}, ${dim})`)) throw new Error(`${refs[dim]}: ${header}`);
  const ref = new Float32Array(buf.buffer.slice(buf.byteOffset + 10 + hl, buf.byteOffset + buf.length));
  const raw = fs.readFileSync(file);
  const got = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
  if (got.length !== ref.length) throw new Error(`${file}: ${got.length} floats, expected ${ref.length}`);
  let min = 1;
  for (let i = 0; i < texts.length; i++) {
    let ab = 0, aa = 0, bb = 0;
    for (let k = i * dim; k < (i + 1) * dim; k++) {
      ab += got[k] * ref[k];
      aa += got[k] * got[k];
      bb += ref[k] * ref[k];
    }
    min = Math.min(min, ab / Math.sqrt(aa * bb));
  }
  return min;
}

const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const version = (p) => {
  try {
    return JSON.parse(fs.readFileSync(path.join(cfg.WASM_PEERS_NODE_MODULES, p, "package.json"), "utf8")).version;
  } catch {
    return "?";
  }
};
const m2vLock = (() => {
  try {
    const lock = fs.readFileSync(path.join(root, "bench/wasm-peers/m2v-rs-wasm/Cargo.lock"), "utf8");
    return lock.match(/name = "model2vec-rs"\nversion = "([^"]+)"/)?.[1] ?? "?";
  } catch {
    return "?";
  }
})();
const host = (() => {
  try {
    const l = fs.readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.*)/);
    return l ? l[1] : os.cpus()[0]?.model;
  } catch {
    return os.cpus()[0]?.model;
  }
})();

const load0 = os.loadavg();
console.error(`wasm_peers: ${chosen.length} systems, 1 check round + ${R} timed rounds; sembed package ${cfg.SEMBED_WASM_PKG}`);

// The check round: vectors against the references (and the warm-up).
const check = {};
for (const s of chosen) {
  const out = path.join(work, `${s}.f32`);
  const r = await runSystem(s, out);
  check[s] = { min_cos: minCosine(out, r.dim ?? (ALL[s][0] === "static" ? 256 : 384)), threads: r.threads, batch: r.batch };
  console.error(`  check ${s}: min cosine ${check[s].min_cos.toFixed(13)}, ${r.sent_per_s.toFixed(0)}/s`);
}

const results = Object.fromEntries(chosen.map((s) => [s, []]));
for (let round = 0; round < R; round++) {
  // Rotate the order each round so that no system always runs first or after the same one.
  const order = chosen.map((_, i) => chosen[(i + round) % chosen.length]);
  for (const s of order) {
    const before = os.loadavg()[0];
    const r = await runSystem(s);
    r.loadavg_before = before;
    results[s].push(r);
    console.error(
      `  round ${round + 1}/${R} ${s}: to first vector ${r.to_first_ms.toFixed(0)} ms, ${r.sent_per_s.toFixed(1)}/s, ` +
        `${r.maxrss_mb.toFixed(0)} MB`,
    );
  }
}
const load1 = os.loadavg();

const med = (s, k) => median(results[s].map((r) => r[k]));
const base = { minilm: "sembed-wasm", static: "sembed-wasm-static" };
const f0 = (x) => (Number.isFinite(x) ? x.toFixed(0) : "—");
const f1 = (x) => (Number.isFinite(x) ? (x >= 1000 ? x.toFixed(0) : x.toFixed(1)) : "—");
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : "—");
const bits = (s) => {
  const b = base[ALL[s][0]];
  return {
    b: chosen.includes(b) && b !== s ? b : null,
    first: med(s, "to_first_ms"),
    load: med(s, "load_ms"),
    rate: med(s, "sent_per_s"),
    rss: med(s, "maxrss_mb"),
  };
};

console.log(`host: ${host}, ${os.cpus().length} CPUs; Node ${process.version}; load average ${load0.map((x) => x.toFixed(2)).join(" ")} at start, ${load1.map((x) => x.toFixed(2)).join(" ")} at end`);
console.log(
  `versions: @huggingface/transformers ${version("@huggingface/transformers")}, onnxruntime-node ${version("onnxruntime-node")}, ` +
    `onnxruntime-web ${version("onnxruntime-web")}, model2vec-rs ${m2vLock}; sembed package ${cfg.SEMBED_WASM_PKG} ` +
    `(${fs.statSync(path.join(cfg.SEMBED_WASM_PKG, "sembed_wasm_bg.wasm")).size} bytes of wasm)`,
);
const loads = Object.values(results).flat().map((r) => r.loadavg_before);
console.log(
  `1-minute load average just before each timed run: ${Math.min(...loads).toFixed(2)} to ${Math.max(...loads).toFixed(2)} ` +
    "(about 1 means only the benchmark ran; more means something else used the CPU too)",
);
console.log(`STS-B: ${texts.length} sentences; ${R} rounds, medians; each Node run a fresh process; ratios = sembed-wasm / peer (same model group)`);
console.log();
console.log(
  "| system | what | threads | load ms | to first vector ms | sent/s (2,758) [min–max] | CPU/wall | peak RSS MB | min cos vs reference | " +
    "first vector: sembed / peer | sent/s: sembed / peer | RSS: sembed / peer |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|---|---|");
for (const s of chosen) {
  const x = bits(s);
  const y = x.b ? bits(x.b) : null;
  const cpw = med(s, "cpu_per_wall");
  console.log(
    `| ${s} | ${ALL[s][1]} | ${THREADS[s]} | ${f0(x.load)} | ${f0(x.first)} | ${f1(x.rate)} [${f1(Math.min(...results[s].map((r) => r.sent_per_s)))}–${f1(Math.max(...results[s].map((r) => r.sent_per_s)))}] | ${Number.isFinite(cpw) ? cpw.toFixed(2) : "—"} | ` +
      `${f0(x.rss)} | ${check[s].min_cos.toFixed(13)} | ${y ? ratio(y.first, x.first) : ""} | ${y ? ratio(y.rate, x.rate) : ""} | ` +
      `${y ? ratio(y.rss, x.rss) : ""} |`,
  );
}
console.log();
console.log(
  "load = the library's load call alone (files read, wasm instantiated, model built / ORT session created); " +
    "to first vector = from process start (Node's performance.now()) to the first vector of one sentence, import and load included; " +
    "sent/s = the 2,758 sentences after that first call (sembed: one embed() of the whole array; model2vec-rs: one encode(); " +
    "transformers.js: batches of 32 sorted by descending length, sentence-transformers' order); CPU/wall = process CPU time over wall time " +
    "during that pass; peak RSS = process.resourceUsage().maxRSS at its end. Native reference rows: whole-process wall times " +
    "(start-up = `sembed embed` of one sentence; sent/s = 2,758 / (wall of the file run - wall of the one-sentence run)), peak RSS from GNU time.",
);
fs.writeFileSync(path.join(work, "results.json"), JSON.stringify({ host, load0, load1, R, check, results }, null, 1));
