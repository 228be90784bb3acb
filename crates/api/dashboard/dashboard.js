// baton dashboard: reads /v1/locks with a read token and shows who holds
// what, for how long, and who waits. Every value from the API is written
// with textContent (never as HTML): owners and purposes are free text.
"use strict";

const TOKEN_KEY = "baton.token";
const REFRESH_MS = 5000;
const PAGE_SIZE = 200;

let token = null;
let locks = [];
let recent = null; // the last day's ended grants; null: not available
let clockOffsetMs = 0; // server clock minus this browser's
let timer = null;

const $ = (id) => document.getElementById(id);

function start() {
  // A token in the URL fragment (#token=…) is taken once and removed from
  // the address bar; fragments are never sent to a server.
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("token")) {
    sessionStorage.setItem(TOKEN_KEY, fragment.get("token"));
    history.replaceState(null, "", location.pathname + location.search);
  }
  token = sessionStorage.getItem(TOKEN_KEY);
  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    token = sessionStorage.getItem(TOKEN_KEY);
    show();
  });
  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    token = null;
    locks = [];
    show();
  });
  $("prefix").addEventListener("input", debounce(load, 250));
  $("environment").addEventListener("change", render);
  $("refresh").addEventListener("click", load);
  $("auto").addEventListener("change", schedule);
  setInterval(tick, 1000);
  show();
}

function show() {
  const signedIn = Boolean(token);
  $("login").hidden = signedIn;
  $("board").hidden = !signedIn;
  $("forget").hidden = !signedIn;
  if (signedIn) {
    load();
    schedule();
  } else {
    setStatus("enter a read token", false);
    clearInterval(timer);
  }
}

function schedule() {
  clearInterval(timer);
  if ($("auto").checked) timer = setInterval(load, REFRESH_MS);
}

async function load() {
  if (!token) return;
  const prefix = $("prefix").value;
  const found = [];
  let pageToken = null;
  try {
    do {
      const params = new URLSearchParams({ pageSize: String(PAGE_SIZE) });
      if (prefix) params.set("prefix", prefix);
      if (pageToken) params.set("pageToken", pageToken);
      const resp = await fetch("/v1/locks?" + params, {
        headers: { Authorization: "Bearer " + token },
        cache: "no-store",
      });
      const body = await resp.json().catch(() => ({}));
      if (resp.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        token = null;
        show();
        setStatus("the token was refused: " + (body.message || resp.status), true);
        return;
      }
      if (!resp.ok) throw new Error(body.message || "HTTP " + resp.status);
      const served = Date.parse(resp.headers.get("Date") || "");
      if (!Number.isNaN(served)) clockOffsetMs = served - Date.now();
      found.push(...body.locks);
      pageToken = body.nextPageToken;
    } while (pageToken);
  } catch (err) {
    setStatus("could not read locks: " + err.message, true);
    return;
  }
  if (prefix !== $("prefix").value) return; // a newer load is on its way
  locks = found;
  recent = await loadHistory();
  setStatus("updated " + new Date().toLocaleTimeString(), false);
  render();
}

// The last day's ended grants; null when this API keeps no history.
async function loadHistory() {
  try {
    const resp = await fetch("/v1/history?since=24h&pageSize=100", {
      headers: { Authorization: "Bearer " + token },
      cache: "no-store",
    });
    if (!resp.ok) return null;
    return (await resp.json()).entries;
  } catch (err) {
    return null;
  }
}

function render() {
  fillEnvironments();
  const env = $("environment").value;
  const shown = locks.filter((l) => !env || l.environment === env);
  const body = $("locks").tBodies[0];
  body.replaceChildren(...shown.map(row));
  $("count").textContent = String(shown.length);
  $("empty").hidden = shown.length > 0;
  const lines = $("lines").tBodies[0];
  const waiting = shown.flatMap((l) => (l.waiters || []).map((w, i) => waiterRow(l, w, i)));
  lines.replaceChildren(...waiting);
  $("nolines").hidden = waiting.length > 0;
  const prefix = $("prefix").value;
  const ended = (recent || []).filter(
    (h) => h.lockKey.startsWith(prefix) && (!env || h.environment === env));
  $("history").tBodies[0].replaceChildren(...ended.map(historyRow));
  $("nohistory").hidden = ended.length > 0;
  $("nohistory").textContent = recent === null
    ? "History is not available on this API."
    : "No grant ended in the last 24 hours.";
  tick();
}

function fillEnvironments() {
  const select = $("environment");
  const current = select.value;
  const envs = [...new Set(locks.map((l) => l.environment).filter(Boolean))].sort();
  if (current && !envs.includes(current)) envs.push(current);
  const options = [option("", "all"), ...envs.map((e) => option(e, e))];
  select.replaceChildren(...options);
  select.value = current;
}

function option(value, label) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = label;
  return o;
}

function row(lock) {
  const tr = document.createElement("tr");
  tr.dataset.key = lock.lockKey;
  tr.append(
    cell("key", lock.lockKey),
    cell("holder", lock.lockedByName ? lock.lockedByName + " (" + lock.lockedBy + ")" : lock.lockedBy),
    cell("purpose", lock.purpose || ""),
    cell("env", lock.environment || ""),
    withData(cell("age", ""), "since", Date.parse(lock.lockedAt)),
    withData(cell("left", ""), "until", lock.expiresAtMs),
    cell("fence", String(lock.fence)),
    cell("waiting", String((lock.waiters || []).length)),
    runCell(lock.runUrl),
  );
  return tr;
}

function waiterRow(lock, waiter, index) {
  const tr = document.createElement("tr");
  tr.dataset.key = lock.lockKey;
  tr.append(
    cell("key", lock.lockKey),
    cell("position", String(index + 1)),
    cell("holder", waiter.ownerName || waiter.owner),
    cell("purpose", waiter.purpose || ""),
    withData(cell("age", ""), "since", waiter.joinedAtMs),
  );
  return tr;
}

function historyRow(entry) {
  const tr = document.createElement("tr");
  tr.dataset.key = entry.lockKey;
  const outcome = cell("outcome", entry.outcome);
  outcome.classList.add(entry.outcome);
  tr.append(
    cell("key", entry.lockKey),
    cell("holder", entry.lockedByName || entry.lockedBy),
    outcome,
    withData(cell("ended", ""), "ago", entry.endedAtMs),
    cell("duration", duration(entry.durationMs)),
    cell("endedby", entry.endedBy || ""),
    cell("reason", entry.reason || ""),
  );
  return tr;
}

function cell(kind, text) {
  const td = document.createElement("td");
  td.className = kind;
  td.textContent = text;
  return td;
}

function withData(td, name, value) {
  td.dataset[name] = String(value);
  return td;
}

function runCell(url) {
  const td = cell("run", "");
  // Only web links: a `javascript:` URL written into a lock must not run.
  if (url && /^https?:\/\//i.test(url)) {
    const a = document.createElement("a");
    a.href = url;
    a.rel = "noopener noreferrer";
    a.target = "_blank";
    a.textContent = "run";
    td.append(a);
  }
  return td;
}

// Ages count up and times left count down every second between loads.
function tick() {
  const now = Date.now() + clockOffsetMs;
  for (const td of document.querySelectorAll("td[data-since]")) {
    const since = Number(td.dataset.since);
    td.textContent = Number.isFinite(since) ? duration(now - since) : "";
  }
  for (const td of document.querySelectorAll("td[data-ago]")) {
    td.textContent = duration(now - Number(td.dataset.ago)) + " ago";
  }
  for (const td of document.querySelectorAll("td[data-until]")) {
    const left = Number(td.dataset.until) - now;
    td.textContent = left > 0 ? duration(left) : "expired " + duration(-left) + " ago";
    td.classList.toggle("expired", left <= 0);
    td.classList.toggle("soon", left > 0 && left < 60000);
  }
}

function duration(ms) {
  let s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d) return d + "d " + h + "h";
  if (h) return h + "h " + m + "m";
  if (m) return m + "m " + s + "s";
  return s + "s";
}

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function debounce(fn, ms) {
  let t = null;
  return () => { clearTimeout(t); t = setTimeout(fn, ms); };
}

document.addEventListener("DOMContentLoaded", start);
