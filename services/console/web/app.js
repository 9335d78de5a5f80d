// rmon console: plain JavaScript, no framework, nothing fetched from the
// internet. Each page polls the console's JSON API once a second (at most
// 1 s behind) and rebuilds only its data; filters and focus stay put.
// Every value from the services goes in as text (textContent), never as HTML.
"use strict";

const POLL_MS = 1000;
const SERIES = [  // the overview's chart: colour, dash and name (Okabe-Ito)
  {key: 1, name: "timeouts", color: "#d55e00", dash: ""},
  {key: 2, name: "tasks requeued", color: "#0072b2", dash: "6 4", cls: "dash"},
  {key: 4, name: "slots freed", color: "#cc79a7", dash: "2 3", cls: "dot"},
  {key: 3, name: "tasks completed", color: "#009e73", dash: ""},
];

// h("td", {class: "num"}, "text", childNode, ...): an element; strings become text.
function h(tag, attrs, ...children) {
  const el = tag.startsWith("svg:")
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

async function api(path, method = "GET") {
  let res;
  try {
    res = await fetch(path, {method, headers: {"X-Rmon-Console": "1"}, cache: "no-store"});
  } catch (e) {
    return {ok: false, message: "the console itself did not answer (" + e.message + ")"};
  }
  try {
    return await res.json();
  } catch (e) {
    return {ok: false, message: "the console answered " + res.status + " without JSON"};
  }
}

function ago(ms) {
  if (ms === undefined || ms === null || ms < 0) return "–";
  if (ms < 1000) return ms + " ms";
  const s = ms / 1000;
  if (s < 120) return s.toFixed(1) + " s";
  if (s < 7200) return Math.round(s / 60) + " min";
  return (s / 3600).toFixed(1) + " h";
}
function when(ms) { return ms ? new Date(ms).toLocaleString() : "–"; }
function stateTag(state) { return h("span", {class: "state state-" + state}, state || "?"); }
function card(label, value, opts = {}) {
  return h("div", {class: "card" + (opts.alarm ? " alarm" : ""), "data-testid": opts.id},
           h("div", {class: "label"}, label), h("div", {class: "value"}, value ?? "–"));
}
function failed(reply, what) {
  return h("p", {class: "muted", role: "note"}, what + ": " + (reply && reply.message || "no answer"));
}
function notice(text, ok) {
  const n = document.getElementById("notice");
  n.textContent = text;
  n.className = ok ? "ok" : "";
  n.hidden = !text;
}

// ---- routing ----
function route() {
  const hash = location.hash.replace(/^#\/?/, "") || "overview";
  const [path, qs] = hash.split("?");
  const parts = path.split("/");
  let id = parts.slice(1).join("/");
  try { id = decodeURIComponent(id); } catch (e) { /* a malformed escape: shown as typed */ }
  return {page: parts[0], id, params: new URLSearchParams(qs || "")};
}
function go(page, params) {
  const qs = params ? new URLSearchParams(Object.entries(params).filter(([, v]) => v)).toString() : "";
  location.hash = "#/" + page + (qs ? "?" + qs : "");
}

let mounted = 0;  // which view is on the page; an older one's polling stops
let lastOk = 0;

// Polls the view: the next refresh is scheduled only once this one is done,
// so a slow service never piles requests up and replies never arrive out of
// order.
function mount(view) {
  const me = ++mounted;
  document.getElementById("main").replaceChildren(...view.frame);
  const tick = async () => {
    if (me !== mounted) return;
    const started = Date.now();
    const ok = await view.refresh();
    if (me !== mounted) return;
    if (ok) lastOk = Date.now();
    freshness();
    setTimeout(tick, Math.max(0, POLL_MS - (Date.now() - started)));
  };
  tick();
}

let carried = null;  // a notice that survives the next page change (retry's new task)

function show() {
  const r = route();
  notice(carried ? carried.text : "", carried && carried.ok);
  carried = null;
  for (const a of document.querySelectorAll("nav a")) {
    const on = a.dataset.page === r.page || a.dataset.page + "s" === r.page ||
               (r.page === "runner" && a.dataset.page === "runners") ||
               (r.page === "task" && a.dataset.page === "tasks");
    if (on) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  const views = {overview, runners, runner, tasks, task, pools};
  mount((views[r.page] || overview)(r));
}

function freshness() {
  const f = document.getElementById("freshness");
  const age = Date.now() - lastOk;
  f.textContent = lastOk ? "updated " + ago(age) + " ago" : "waiting for the services…";
  f.className = lastOk && age > 3 * POLL_MS ? "stale" : "";
}
setInterval(freshness, 250);

// ---- overview ----
function overview() {
  const cards = h("div", {"data-testid": "overview"});
  const pools = h("div", {"data-testid": "pool-bars"});
  const chart = h("div", {class: "chart"});
  const frame = [h("h2", {}, "Runners, tasks and events"), cards,
                 h("h2", {}, "Pools: slots in use"), pools,
                 h("h2", {}, "Per minute, last hour"), chart];
  return {frame, async refresh() {
    const o = await api("/api/overview");
    if (!o.ok) { cards.replaceChildren(failed(o, "overview")); return false; }
    const m = o.monitor, t = o.task_queue;
    const groups = [];
    if (m.ok) {
      groups.push(h("div", {class: "cards group"},
        card("running", m.running, {id: "runners-running"}),
        card("suspect", m.suspect, {id: "runners-suspect", alarm: m.suspect > 0}),
        card("completed", m.completed, {id: "runners-completed"}),
        card("failed", m.failed, {id: "runners-failed"}),
        card("timeouts", m.timeouts, {id: "timeouts"}),
        card("storm brake", m.brake_engaged ? "ON (" + m.brake_held + " held)" : "off",
             {id: "brake", alarm: !!m.brake_engaged}),
        card("stall guard", m.stalled ? "ON" : "off", {id: "stalled", alarm: !!m.stalled}),
        ...Object.keys(m).filter(k => k.startsWith("pending_")).map(k =>
          card("events pending: " + k.slice(8), m[k], {id: "pending-" + k.slice(8), alarm: m[k] > 0}))));
      if (m.brake_engaged) {
        groups.push(h("p", {}, h("button", {class: "danger", "data-testid": "release-brake", onclick: releaseBrake},
                                 "Release the storm brake…")));
      }
    } else groups.push(failed(m, "runner-monitor"));
    if (t.ok) {
      groups.push(h("div", {class: "cards group"},
        ...["queued", "leased", "completed", "dead", "cancelled", "reassigned"].map(k =>
          card("tasks " + k, t[k], {id: "tasks-" + k, alarm: k === "dead" && t[k] > 0}))));
    } else groups.push(failed(t, "task-queue"));
    cards.replaceChildren(...groups);
    if (o.pools.ok) {
      pools.replaceChildren(...o.pools.pools.map(p => {
        const pct = p.slots ? Math.round(100 * p.in_use / p.slots) : 0;
        const fill = h("span", {});
        fill.style.width = pct + "%";
        return h("div", {class: "pool-row", "data-testid": "pool-" + p.name},
                 h("a", {href: "#/pools"}, p.name + " (" + p.type + ")"),
                 h("div", {class: "bar" + (p.slots && p.in_use >= p.slots ? " full" : ""), role: "img",
                           "aria-label": p.in_use + " of " + p.slots + " slots in use"}, fill),
                 h("span", {}, p.in_use + " / " + p.slots + " in use"));
      }));
    } else pools.replaceChildren(failed(o.pools, "pool-manager"));
    chart.replaceChildren(...drawChart(o.history).filter(Boolean));
    return m.ok && t.ok && o.pools.ok;
  }};
}

async function releaseBrake() {
  if (!confirm("Release the storm brake? Every runner it holds is convicted now: their tasks are requeued and their slots freed.")) return;
  const r = await api("/api/brake/release", "POST");
  notice(r.ok ? "Storm brake released." : "Not released: " + r.message, r.ok);
}

// Rates per minute between neighbouring samples; a counter that fell (a
// restart, retention) or was not answered leaves a gap.
function drawChart(history) {
  const s = history.samples || [];
  const W = 900, H = 220, L = 40, B = 20;
  const svg = h("svg:svg", {viewBox: `0 0 ${W} ${H}`, role: "img", "data-testid": "chart",
                            "aria-label": "timeouts, requeued tasks, freed slots and completed tasks per minute"});
  const lines = SERIES.map(() => []);
  let max = 1;
  for (let i = 1; i < s.length; i++) {
    const dt = (s[i][0] - s[i - 1][0]) / 60000;
    SERIES.forEach((ser, j) => {
      const a = s[i - 1][ser.key], b = s[i][ser.key];
      const rate = a < 0 || b < 0 || b < a || dt <= 0 ? null : (b - a) / dt;
      if (rate !== null) max = Math.max(max, rate);
      lines[j].push([s[i][0], rate]);
    });
  }
  const now = s.length ? s[s.length - 1][0] : Date.now();
  // The last hour, or what has been sampled so far (a minute at least).
  const span = Math.max(60000, Math.min(3600000, s.length ? now - s[0][0] : 0));
  const x = t => L + (W - L - 5) * (1 - (now - t) / span);
  const y = v => H - B - (H - B - 10) * (v / max);
  svg.append(h("svg:line", {x1: L, y1: H - B, x2: W, y2: H - B, stroke: "#999"}),
             h("svg:text", {x: 2, y: 14, "font-size": 11, fill: "#5a5a5a"}, max.toFixed(max < 10 ? 1 : 0) + "/min"),
             h("svg:text", {x: 2, y: H - B, "font-size": 11, fill: "#5a5a5a"}, "0"),
             h("svg:text", {x: L, y: H - 4, "font-size": 11, fill: "#5a5a5a"}, ago(span) + " ago"),
             h("svg:text", {x: W - 30, y: H - 4, "font-size": 11, fill: "#5a5a5a"}, "now"));
  SERIES.forEach((ser, j) => {
    let d = "", pen = false, rise = 0;
    for (const [t, v] of lines[j]) {
      if (v === null) { pen = false; continue; }
      d += (pen ? "L" : "M") + x(t).toFixed(1) + " " + y(v).toFixed(1) + " ";
      pen = true;
      if (v > 0) rise = t;
    }
    // data-last-rise: the time of its latest point above zero (tests read it).
    if (d) svg.append(h("svg:path", {d, fill: "none", stroke: ser.color, "stroke-width": 2.5,
                                     "stroke-dasharray": ser.dash || null, "data-series": ser.name,
                                     "data-last-rise": rise}));
  });
  // The legend: each rate over the last minute (or what has been sampled).
  const last = s[s.length - 1];
  let then = s.length ? s[0] : null;
  for (const sample of s) if (last && last[0] - sample[0] >= 60000) then = sample;
  const latest = SERIES.map(ser => {
    const dt = last && then ? (last[0] - then[0]) / 60000 : 0;
    const ok = dt > 0 && then[ser.key] >= 0 && last[ser.key] >= then[ser.key];
    const v = ok ? (last[ser.key] - then[ser.key]) / dt : null;
    const span = h("span", {class: ser.cls || ""}, ser.name + ": " + (v === null ? "–" : v.toFixed(1)) + "/min");
    span.style.setProperty("--c", ser.color);
    return span;
  });
  const note = s.length < 2 ? h("p", {class: "muted"}, "The chart fills as the console samples the services (every " +
                                 Math.round(history.interval_ms / 1000) + " s).") : null;
  return [svg, h("div", {class: "legend", "data-testid": "chart-legend"}, latest), note];
}

// ---- runners ----
const RUNNER_STATES = ["", "running", "suspect", "completed", "failed"];
const TASK_STATES = ["", "queued", "leased", "completed", "dead", "cancelled"];

function filterForm(fields, onsubmit) {
  const form = h("form", {class: "filters", onsubmit: e => { e.preventDefault(); onsubmit(new FormData(form)); }},
    ...fields, h("button", {type: "submit"}, "Show"));
  return form;
}
function select(name, label, options, value) {
  return h("label", {}, label, h("select", {name, "data-testid": "filter-" + name},
    ...options.map(o => h("option", {value: o, selected: o === value}, o || "any"))));
}
function input(name, label, value, placeholder) {
  return h("label", {}, label, h("input", {name, value: value || "", placeholder: placeholder || "",
                                           "data-testid": "filter-" + name}));
}

function runners(r) {
  const p = r.params;
  const state = p.get("state") || "", pool = p.get("pool") || "", q = p.get("q") || "";
  const after = p.get("after") || "", limit = 100;
  const body = h("tbody", {});
  const info = h("span", {"data-testid": "runner-page-info"});
  const next = h("button", {"data-testid": "next-page", disabled: true}, "Next page →");
  const first = h("button", {"data-testid": "first-page", disabled: !after,
                             onclick: () => go("runners", {state, pool, q})}, "← First page");
  let lastId = "";
  next.addEventListener("click", () => go("runners", {state, pool, q, after: lastId}));
  const frame = [
    h("h2", {}, "Runners"),
    filterForm([select("state", "State", RUNNER_STATES, state), input("pool", "Pool", pool),
                input("q", "Runner id or its start", q, "id or prefix")],
               f => go("runners", {state: f.get("state"), pool: f.get("pool"), q: f.get("q")})),
    h("table", {"data-testid": "runners-table"},
      h("thead", {}, h("tr", {}, ...["Runner", "State", "Pool", "Task", "Attempt", "Last heartbeat", "Timeout"]
                                  .map(c => h("th", {scope: "col"}, c)))), body),
    h("div", {class: "pager"}, first, next, info)];
  return {frame, async refresh() {
    // A search: the exact id if there is one, else the ids that start with it.
    let list;
    if (q && !after) {
      const one = await api("/api/runner?id=" + encodeURIComponent(q));
      if (one.ok) list = {ok: true, runners: [one.runner]};
    }
    if (!list) {
      const qs = new URLSearchParams({limit: String(limit)});
      if (state) qs.set("state", state);
      if (pool) qs.set("pool", pool);
      if (after || q) qs.set("after", after || q);
      list = await api("/api/runners?" + qs);
      if (list.ok && q) list.runners = list.runners.filter(x => x.runner_id.startsWith(q));
    }
    if (!list.ok) { body.replaceChildren(h("tr", {}, h("td", {colspan: 7}, failed(list, "runner-monitor")))); return false; }
    const rows = list.runners;
    body.replaceChildren(...rows.map(x => h("tr", {},
      h("td", {}, h("a", {href: "#/runner/" + encodeURIComponent(x.runner_id)}, x.runner_id)),
      h("td", {}, stateTag(x.state)), h("td", {}, x.pool), h("td", {}, x.task_id),
      h("td", {class: "num"}, x.attempt), h("td", {}, ago(x.silence_ms) + " ago"),
      h("td", {}, ago(x.timeout_ms)))));
    if (!rows.length) body.replaceChildren(h("tr", {}, h("td", {colspan: 7, class: "muted"}, "No runners match.")));
    lastId = rows.length ? rows[rows.length - 1].runner_id : "";
    next.disabled = q ? rows.length < limit : !list.more;
    info.textContent = rows.length + " runners on this page" + (after ? " (after " + after + ")" : "");
    return true;
  }};
}

function fields(obj, order) {
  const keys = [...order.filter(k => k in obj), ...Object.keys(obj).filter(k => !order.includes(k))];
  return h("dl", {class: "fields"}, ...keys.flatMap(k => {
    let v = obj[k];
    if (k.endsWith("_at_ms") || k === "last_heartbeat_ms") v = when(v) + " (" + ago(Date.now() - v) + " ago)";
    else if (k.endsWith("_ms")) v = ago(v);
    else if (typeof v === "object") v = JSON.stringify(v);
    return [h("dt", {}, k), h("dd", {"data-field": k}, k === "state" ? stateTag(v) : v)];
  }));
}

function runner(r) {
  const box = h("div", {"data-testid": "runner-detail"});
  const frame = [h("p", {}, h("a", {href: "#/runners"}, "← Runners")), h("h2", {}, "Runner " + r.id), box];
  return {frame, async refresh() {
    const x = await api("/api/runner?id=" + encodeURIComponent(r.id));
    if (!x.ok) { box.replaceChildren(failed(x, "runner " + r.id)); return x.error === "not_found"; }
    box.replaceChildren(fields(x.runner, ["state", "silence_ms", "timeout_ms", "task_id", "attempt", "pool",
                                          "pool_type", "pid", "container_id", "job_name", "progress",
                                          "last_heartbeat_ms", "last_seq"]),
      h("p", {}, h("a", {href: "#/task/" + encodeURIComponent(x.runner.task_id)}, "Its task " + x.runner.task_id)));
    return true;
  }};
}

// ---- tasks ----
function tasks(r) {
  const p = r.params;
  const state = p.get("state") || "", pool = p.get("pool") || "", after = p.get("after") || "";
  const body = h("tbody", {});
  const info = h("span", {});
  const next = h("button", {"data-testid": "next-page", disabled: true}, "Next page →");
  let lastId = "";
  next.addEventListener("click", () => go("tasks", {state, pool, after: lastId}));
  const frame = [
    h("h2", {}, "Tasks"),
    filterForm([select("state", "State", TASK_STATES, state), input("pool", "Pool", pool)],
               f => go("tasks", {state: f.get("state"), pool: f.get("pool")})),
    h("table", {"data-testid": "tasks-table"},
      h("thead", {}, h("tr", {}, ...["Task", "State", "Pool", "Attempt", "Runner", "Last error", "Updated"]
                                  .map(c => h("th", {scope: "col"}, c)))), body),
    h("div", {class: "pager"}, h("button", {disabled: !after, onclick: () => go("tasks", {state, pool})}, "← First page"),
      next, info)];
  return {frame, async refresh() {
    const qs = new URLSearchParams({limit: "100"});
    if (state) qs.set("state", state);
    if (pool) qs.set("pool", pool);
    if (after) qs.set("after", after);
    const list = await api("/api/tasks?" + qs);
    if (!list.ok) { body.replaceChildren(h("tr", {}, h("td", {colspan: 7}, failed(list, "task-queue")))); return false; }
    body.replaceChildren(...list.tasks.map(t => h("tr", {"data-task": t.task_id},
      h("td", {}, h("a", {href: "#/task/" + encodeURIComponent(t.task_id)}, t.task_id)),
      h("td", {}, stateTag(t.state)), h("td", {}, t.pool || "–"),
      h("td", {class: "num"}, t.attempt + " / " + t.max_attempts), h("td", {}, t.runner_id || "–"),
      h("td", {}, t.last_error || ""), h("td", {}, when(t.updated_at_ms)))));
    if (!list.tasks.length) body.replaceChildren(h("tr", {}, h("td", {colspan: 7, class: "muted"}, "No tasks match.")));
    lastId = list.tasks.length ? list.tasks[list.tasks.length - 1].task_id : "";
    next.disabled = !list.more;
    info.textContent = list.tasks.length + " tasks on this page";
    return true;
  }};
}

function task(r) {
  const box = h("div", {"data-testid": "task-detail"});
  const actions = h("p", {});
  const frame = [h("p", {}, h("a", {href: "#/tasks"}, "← Tasks")), h("h2", {}, "Task " + r.id), actions, box];
  let shownState = null;
  const act = async (what, question) => {
    if (!confirm(question)) return;
    const res = await api("/api/task/" + what + "?id=" + encodeURIComponent(r.id), "POST");
    if (!res.ok) { notice("Not done: " + res.message, false); return; }
    if (what === "retry") {
      carried = {text: res.created ? "Dead task " + r.id + " submitted again as " + res.task_id + "."
                                   : "Dead task " + r.id + " was already submitted again as " + res.task_id + ".",
                 ok: true};
      location.hash = "#/task/" + encodeURIComponent(res.task_id);
    } else notice("Task " + r.id + " is " + res.state + " now.", true);
  };
  return {frame, async refresh() {
    const x = await api("/api/task?id=" + encodeURIComponent(r.id));
    if (!x.ok) { box.replaceChildren(failed(x, "task " + r.id)); return x.error === "not_found"; }
    const t = x.task;
    box.replaceChildren(fields(t, ["state", "attempt", "max_attempts", "runner_id", "pool", "last_error",
                                   "priority", "created_at_ms", "updated_at_ms", "available_at_ms", "payload"]));
    if (t.state !== shownState) {  // rebuilt only on a change, so focus stays on a button
      shownState = t.state;
      actions.replaceChildren(...[
        (t.state === "queued" || t.state === "leased") && h("button", {class: "danger", "data-testid": "cancel",
          onclick: () => act("cancel", "Cancel task " + r.id + "? It will not run again.")}, "Cancel task…"),
        t.state === "dead" && h("button", {"data-testid": "retry",
          onclick: () => act("retry", "Submit the work of dead task " + r.id + " again, as a new task?")}, "Retry as a new task…"),
      ].filter(Boolean));
    }
    return true;
  }};
}

// ---- pools ----
function pools() {
  const box = h("div", {"data-testid": "pools"});
  return {frame: [h("h2", {}, "Pools and their slots"), box], async refresh() {
    const s = await api("/api/pools");
    if (!s.ok) { box.replaceChildren(failed(s, "pool-manager")); return false; }
    box.replaceChildren(...s.pools.map(p => {
      const held = new Map((p.holders || []).map(x => [x.slot, x]));
      const cells = [];
      for (let i = 0; i < p.slots; i++) {
        const x = held.get(i);
        cells.push(x ? h("div", {class: "slot held", "data-slot": i},
            h("strong", {}, "slot " + i), " ", h("a", {href: "#/runner/" + encodeURIComponent(x.runner_id)}, x.runner_id),
            h("br"), "task ", h("a", {href: "#/task/" + encodeURIComponent(x.task_id)}, x.task_id),
            " attempt " + x.attempt, h("br"), "held " + ago(Date.now() - x.since_ms))
          : h("div", {class: "slot free", "data-slot": i}, "slot " + i + ": free"));
      }
      return h("section", {"data-testid": "pool-" + p.name},
        h("h2", {}, p.name + " (" + p.type + "): " + p.in_use + " of " + p.slots + " in use"),
        h("div", {class: "slots"}, cells));
    }));
    return true;
  }};
}

window.addEventListener("hashchange", show);
window.addEventListener("DOMContentLoaded", show);
