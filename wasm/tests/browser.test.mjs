// The demo page in headless Chromium (issue #18): the page loads the package and a Model2Vec model
// over HTTP from the loopback server (its relaxed-SIMD build), a query typed into the box ranks
// the expected sentence first, and the page's vectors equal Node's. Screenshot: $SEMBED_WASM_OUT/demo.png.
//
// Needs SEMBED_CHROMIUM (the browser) and SEMBED_PLAYWRIGHT (the playwright-core package folder);
// scripts/test-wasm.sh installs both. Missing, the test fails with the reason; it never skips.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

import { serve } from "../demo/serve.mjs";
import { folder } from "./files.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const pkg = path.resolve(process.env.SEMBED_WASM_PKG ?? path.join(root, "wasm/pkg"));
const out = path.resolve(process.env.SEMBED_WASM_OUT ?? path.join(root, "target/wasm-test-out"));
const modelDir = path.join(root, "tests/data/m2v-minilm-256");

let browser;
let server;
let page;

before(async () => {
  const chromium = process.env.SEMBED_CHROMIUM;
  const playwright = process.env.SEMBED_PLAYWRIGHT;
  assert.ok(chromium && fs.existsSync(chromium), `SEMBED_CHROMIUM must name the chromium binary (got ${chromium})`);
  assert.ok(playwright && fs.existsSync(playwright), `SEMBED_PLAYWRIGHT must name playwright-core (got ${playwright})`);
  const { chromium: launcher } = await import(pathToFileURL(path.join(playwright, "index.mjs")).href);
  server = await serve({ model: modelDir, port: 0, pkg });
  browser = await launcher.launch({
    executablePath: chromium,
    // Playwright passes --headless and its own --user-data-dir (a fresh temporary one).
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(server.url);
  await page.waitForFunction(() => document.body.dataset.ready || document.body.dataset.error, null, {
    timeout: 60_000,
  });
  const failed = await page.evaluate(() => document.body.dataset.error);
  assert.equal(failed, undefined, `the demo page failed to start: ${failed}; page errors: ${errors.join("; ")}`);
});

after(async () => {
  await browser?.close();
  await server?.close();
});

test("typing a query ranks the expected sentence first", async () => {
  // No word in common with the expected sentence: found by meaning.
  await page.locator("#q").pressSequentially("weather forecast", { delay: 20 });
  await page.waitForFunction(() => document.getElementById("results").dataset.query === "weather forecast");
  const items = await page.locator("#results li").allTextContents();
  assert.equal(items.length, 5);
  assert.match(items[0], /Heavy rain is expected over the weekend\./);
  fs.mkdirSync(out, { recursive: true });
  await page.screenshot({ path: path.join(out, "demo.png"), fullPage: true });
  assert.ok(fs.statSync(path.join(out, "demo.png")).size > 1000);
});

test("the page's vectors equal Node's", async () => {
  const { load } = await import(pathToFileURL(path.join(pkg, "index.js")).href);
  const model = await load(folder(modelDir));
  const texts = ["weather forecast", "A man is playing a guitar on the stage.", "ünïcödé — 東京 🙂"];
  const inPage = await page.evaluate((t) => window.sembedDemo.model.embed(t).map((v) => Array.from(v)), texts);
  const inNode = model.embed(texts);
  // Chromium runs relaxed SIMD: the page took the package's relaxed build.
  assert.equal(await page.evaluate(() => window.sembedDemo.model.info().cpu), "simd128-relaxed");
  for (let i = 0; i < texts.length; i++) {
    assert.equal(inPage[i].length, inNode[i].length);
    // Same wasm, same bytes: the same floats.
    assert.deepEqual(inPage[i], Array.from(inNode[i]), `text ${i}`);
  }
  model.free();
});
