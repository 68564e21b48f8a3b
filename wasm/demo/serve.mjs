// Serves the demo page on loopback: the page (this folder), the npm package (wasm/pkg) at /pkg/,
// and a model folder's files at /model/ (with /model/files.json listing them).
//
//   scripts/build-wasm.sh && node wasm/demo/serve.mjs [MODEL_DIR] [PORT]
//
// MODEL_DIR defaults to tests/data/m2v-minilm-256 (a Model2Vec model, 2.6 MB); PORT to 8080
// (0 picks a free one). The test (wasm/tests/browser.test.mjs) imports `serve`.
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
};

/** Every file under `dir`, as `/`-separated names relative to it. */
function listFiles(dir) {
  const out = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(dir, p).split(path.sep).join("/"));
    }
  };
  walk(dir);
  return out.sort();
}

/** The file under `base` that `rel` names, or null when it would leave `base`. */
function inside(base, rel) {
  const p = path.resolve(base, "." + path.posix.normalize("/" + rel));
  return p === base || p.startsWith(base + path.sep) ? p : null;
}

/** Starts the server; resolves to `{ url, close }` once it listens. */
export function serve({ model = path.join(root, "tests/data/m2v-minilm-256"), port = 8080, pkg } = {}) {
  const modelDir = path.resolve(model);
  const pkgDir = path.resolve(pkg ?? process.env.SEMBED_WASM_PKG ?? path.join(root, "wasm/pkg"));
  if (!fs.existsSync(path.join(pkgDir, "sembed_wasm_bg.wasm"))) {
    throw new Error(`no built package in ${pkgDir}: run scripts/build-wasm.sh first`);
  }
  const files = listFiles(modelDir);
  const server = http.createServer((req, res) => {
    const { pathname } = new URL(req.url, "http://localhost");
    let file = null;
    if (pathname === "/model/files.json") {
      res.writeHead(200, { "content-type": TYPES[".json"] });
      res.end(JSON.stringify(files));
      return;
    } else if (pathname.startsWith("/model/")) {
      file = inside(modelDir, decodeURIComponent(pathname.slice("/model/".length)));
    } else if (pathname.startsWith("/pkg/")) {
      file = inside(pkgDir, decodeURIComponent(pathname.slice("/pkg/".length)));
    } else {
      file = inside(here, pathname === "/" ? "index.html" : decodeURIComponent(pathname.slice(1)));
    }
    if (!file || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found\n");
      return;
    }
    res.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream" });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      const url = `http://127.0.0.1:${server.address().port}/`;
      resolve({ url, close: () => new Promise((done) => server.close(done)) });
    });
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [model, port] = process.argv.slice(2);
  const { url } = await serve({ model, port: port === undefined ? 8080 : Number(port) });
  console.log(`sembed demo: ${url} (Ctrl-C stops)`);
}
