// What the package's test and benchmark read from disk: a model folder's files by relative name,
// and the STS-B sentences.
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
