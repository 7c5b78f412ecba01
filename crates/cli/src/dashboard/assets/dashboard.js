// driftless dashboard: live updates over server-sent events, keyboard navigation, the theme toggle and
// the actions. Pages are rendered on the server; this only swaps what changed.
"use strict";
(() => {
  const root = document.documentElement;
  document.getElementById("theme").addEventListener("click", () => {
    const dark = root.dataset.theme === "dark" ||
      (!root.dataset.theme && matchMedia("(prefers-color-scheme: dark)").matches);
    root.dataset.theme = dark ? "light" : "dark";
    localStorage.setItem("driftless-theme", root.dataset.theme);
  });

  const flash = (text, error) => {
    const box = document.getElementById("flash");
    const div = document.createElement("div");
    div.textContent = text;
    if (error) div.className = "error";
    box.appendChild(div);
    setTimeout(() => div.remove(), error ? 12000 : 5000);
  };

  // actions: POSTed with a header no cross-site form can send; the answer is a sentence
  document.addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-action]");
    if (!button || button.disabled) return;
    button.disabled = true;
    try {
      const res = await fetch(button.dataset.action, { method: "POST", headers: { "X-Driftless-Action": "1" } });
      flash(await res.text(), !res.ok);
    } catch (err) {
      flash("the dashboard could not be reached: " + err, true);
    } finally {
      button.disabled = false;
    }
  });

  // fragments of the page re-fetched (at most every 300 ms) when an object they show changes
  const pending = new Map();
  const refresh = (id, url) => {
    if (pending.has(id)) return;
    pending.set(id, setTimeout(async () => {
      pending.delete(id);
      const res = await fetch(url);
      if (!res.ok) return;
      const el = document.getElementById(id);
      if (el) el.outerHTML = await res.text();
    }, 300));
  };

  const watched = () => {
    const el = document.querySelector("[data-watch]");
    return el ? { el, keys: el.dataset.watch.split(" ") } : null;
  };

  const events = new EventSource("/events");
  const live = document.getElementById("live");
  events.onopen = () => live.classList.add("on");
  events.onerror = () => live.classList.remove("on");
  events.addEventListener("reload", () => location.reload());
  // a page left for another closes its stream (browsers allow six connections to a host, and keep left
  // pages a while for the back button); come back to it and it reloads, fresh
  addEventListener("pagehide", () => events.close());
  addEventListener("pageshow", (e) => { if (e.persisted) location.reload(); });
  events.addEventListener("change", (e) => {
    const { key, row } = JSON.parse(e.data);
    const tr = document.getElementById(key);
    if (tr) {
      const tmp = document.createElement("tbody");
      tmp.innerHTML = row;
      const fresh = tmp.firstElementChild;
      if (tr.classList.contains("selected")) fresh.classList.add("selected");
      fresh.classList.add("flash");
      tr.replaceWith(fresh);
    }
    if (document.getElementById("counts")) refresh("counts", "/counts");
    const w = watched();
    if (w && w.keys.includes(key)) refresh(w.el.id, location.pathname + "?fragment=true");
  });
  events.addEventListener("gone", (e) => {
    const tr = document.getElementById(e.data);
    if (tr) tr.remove();
    if (document.getElementById("counts")) refresh("counts", "/counts");
  });

  // keyboard: / searches, j/k move through the rows, Enter opens the selected one
  const rows = () => Array.from(document.querySelectorAll("#objects tbody tr"));
  let selected = -1;
  const select = (i) => {
    const all = rows();
    if (!all.length) return;
    selected = Math.max(0, Math.min(all.length - 1, i));
    all.forEach((r, n) => r.classList.toggle("selected", n === selected));
    all[selected].scrollIntoView({ block: "nearest" });
  };
  document.addEventListener("keydown", (e) => {
    const typing = /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement.tagName);
    if (e.key === "/" && !typing) {
      const q = document.getElementById("q");
      if (q) { e.preventDefault(); q.focus(); q.select(); }
    } else if (!typing && (e.key === "j" || e.key === "k")) {
      select(selected + (e.key === "j" ? 1 : -1));
    } else if (!typing && e.key === "Enter" && selected >= 0) {
      const link = rows()[selected]?.querySelector("a");
      if (link) location.href = link.href;
    } else if (e.key === "Escape" && typing) {
      document.activeElement.blur();
    }
  });
})();
