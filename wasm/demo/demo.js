// The demo: loads a model's files and the sentences from the server, embeds the sentences once,
// then ranks them by cosine similarity to the query on every keystroke. Everything runs in the
// page; nothing but these files is fetched.
import { load } from "/pkg/index.js";

const q = document.getElementById("q");
const status = document.getElementById("status");
const results = document.getElementById("results");

async function bytes(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

async function start() {
  const t0 = performance.now();
  const names = await (await fetch("/model/files.json")).json();
  const files = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await bytes(`/model/${n}`)])));
  const model = await load(files);
  const sentences = await (await fetch("sentences.json")).json();
  // Unit length once, so that a dot product is the cosine (a model need not normalize).
  const unit = (v) => {
    const n = Math.hypot(...v) || 1;
    return v.map((x) => x / n);
  };
  const vectors = model.embed(sentences).map(unit);
  const info = model.info();
  status.textContent =
    `${info.kind} model, ${info.dim} dimensions, ${sentences.length} sentences embedded ` +
    `in ${(performance.now() - t0).toFixed(0)} ms (files fetched included).`;

  const search = () => {
    results.replaceChildren();
    const text = q.value.trim();
    if (!text) return;
    const t = performance.now();
    const v = unit(model.embed(text));
    const ranked = vectors
      .map((s, i) => [s.reduce((acc, x, j) => acc + x * v[j], 0), i])
      .sort((a, b) => b[0] - a[0])
      .slice(0, 5);
    for (const [score, i] of ranked) {
      const li = document.createElement("li");
      const span = document.createElement("span");
      span.className = "score";
      span.textContent = score.toFixed(3);
      li.append(span, sentences[i]);
      li.dataset.score = String(score);
      results.append(li);
    }
    results.dataset.query = text;
    results.dataset.ms = (performance.now() - t).toFixed(2);
  };
  q.addEventListener("input", search);
  q.disabled = false;
  q.focus();
  // For tests and the console: the loaded model.
  window.sembedDemo = { model, sentences };
  document.body.dataset.ready = "true";
}

start().catch((e) => {
  status.textContent = `Error: ${e.message}`;
  document.body.dataset.error = e.message;
});
