// Garrison console: deadline countdowns and the lists' auto refresh. No framework, no eval, no
// HTML strings: refreshed rows are parsed from the server's own escaped page and moved in.
"use strict";

function tickCountdowns() {
  const now = Date.now();
  for (const node of document.querySelectorAll(".countdown[data-deadline]")) {
    const left = Math.floor((Date.parse(node.dataset.deadline) - now) / 1000);
    if (Number.isNaN(left)) continue;
    if (left <= 0) { node.textContent = "past its deadline"; continue; }
    const h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
    const mm = String(m).padStart(2, "0"), ss = String(s).padStart(2, "0");
    node.textContent = h ? `${h}h ${mm}m ${ss}s` : `${m}m ${ss}s`;
  }
}

async function refreshLists() {
  const box = document.getElementById("auto-refresh");
  if (!box || !box.checked) return;
  const targets = document.querySelectorAll("[data-refresh]");
  if (!targets.length) return;
  // The header keeps the flash messages for the next page shown (orchestrator/console/rendering.py).
  const answer = await fetch(window.location.href, {
    credentials: "same-origin",
    headers: { "X-Garrison-Refresh": "1" },
  });
  if (!answer.ok || answer.redirected) return; // signed out: leave the page as it is
  const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
  for (const target of targets) {
    const id = target.dataset.refresh;
    const now = document.getElementById(id);
    const next = fresh.getElementById(id);
    if (now && next) now.replaceWith(document.adoptNode(next));
  }
  tickCountdowns();
}

document.addEventListener("DOMContentLoaded", () => {
  tickCountdowns();
  setInterval(tickCountdowns, 1000);
  const every = Number(document.body.dataset.refreshS) || 15;
  setInterval(() => { refreshLists().catch(() => {}); }, Math.max(1, every) * 1000);
});
