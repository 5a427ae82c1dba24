// The live view: each camera's snapshot is fetched again once the last one has arrived (at
// most one request in flight per camera, at most one a second), and its stats with it. Only
// while the page is visible: a tab in the background costs the board nothing.
"use strict";
const PERIOD_MS = 1000;

function refresh(img) {
  if (document.hidden) {
    setTimeout(() => refresh(img), PERIOD_MS);
    return;
  }
  const camera = img.dataset.camera;
  const started = Date.now();
  const next = () => setTimeout(() => refresh(img), Math.max(0, PERIOD_MS - (Date.now() - started)));
  img.onload = next;
  img.onerror = () => setTimeout(() => refresh(img), 5 * PERIOD_MS);
  img.src = "/api/cameras/" + encodeURIComponent(camera) + "/snapshot.jpg?t=" + started;
  fetch("/api/cameras").then((r) => r.json()).then((cameras) => {
    for (const c of cameras) {
      const stats = document.querySelector('[data-stats="' + CSS.escape(c.camera) + '"]');
      if (stats) {
        const latency = c.latest.map((r) => r.latency_ms).find((l) => l);
        stats.textContent = c.frames + " frames" + (c.fps ? ", " + c.fps + " fps" : "") +
          (latency ? " · pre " + latency.pre + " ms, infer " + latency.infer + " ms, post " + latency.post + " ms" : "");
      }
      const found = document.querySelector('[data-found="' + CSS.escape(c.camera) + '"] tbody');
      if (found) {
        found.replaceChildren(...rows(c.latest));
      }
    }
  }).catch(() => {});
}

function rows(records) {
  const out = [];
  const row = (cells) => {
    const tr = document.createElement("tr");
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text == null ? "" : String(text);
      tr.appendChild(td);
    }
    out.push(tr);
  };
  const score = (s) => (s == null ? "" : s.toFixed(2));
  for (const r of records) {
    if (r.objects) {
      for (const o of r.objects) row([o.track, o.label, o.name || o.identity || o.fine_label, score(o.score)]);
    } else if (r.identity) {
      row(["", r.roi, r.name || r.identity, score(r.similarity)]);
    } else if (r.top && r.top.length) {
      row(["", r.top[0].label, "", score(r.top[0].score)]);
    } else if (r.error) {
      row(["", r.error.stage, r.error.message, ""]);
    }
  }
  return out;
}

for (const img of document.querySelectorAll("img.live")) {
  img.onload = () => setTimeout(() => refresh(img), PERIOD_MS);
  img.onerror = () => setTimeout(() => refresh(img), 5 * PERIOD_MS);
}
