// tickguard's dashboard: one WebSocket (/ws/trades), plain DOM, no build step. Prices arrive in paise.
"use strict";

const MAX_POINTS = 600;      // price points kept per trade for its line
const MAX_EVENTS = 200;      // lines kept in the event log
const FINISHED = new Set(["CLOSED", "REJECTED", "EXPIRED"]);
const CLOSABLE = new Set(["PENDING_ENTRY", "OPEN", "UNPROTECTED"]);
const COLUMNS = [
  ["symbol", "Symbol"], ["account", "Account"], ["side", "Side"], ["qty", "Qty"], ["entry", "Entry"],
  ["ltp", "LTP"], ["stop", "Stop"], ["broker", "At broker"], ["target", "Target"], ["pnl", "P&L"],
  ["status", "Status"], ["actions", ""],
];
const NUMERIC = new Set(["qty", "entry", "ltp", "stop", "broker", "target", "pnl"]);

const state = {
  trades: new Map(),       // id -> trade row as the feed sends it
  series: new Map(),       // id -> [{t, ltp, stop, target}]
  seenEvents: new Set(),   // event row ids already logged
  selected: null,
  halted: false,
  plugins: [],             // the engine's plug-ins as the snapshot lists them, kept current by events
  socket: null,
  attempt: 0,
  retryTimer: null,
  signedIn: false,
};

const $ = (id) => document.getElementById(id);
const rupees = new Intl.NumberFormat("en-IN", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const money = (paise) => (paise === null || paise === undefined ? "—" : rupees.format(paise / 100));
const clock = (ms) => new Date(ms).toLocaleTimeString("en-GB", { hour12: false });

// Connection -----------------------------------------------------------------------------------------
function setConnection(name, text) {
  const badge = $("connection");
  badge.dataset.state = name;
  badge.textContent = text;
}

function feedUrl() {
  const page = new URLSearchParams(location.search);
  const query = new URLSearchParams();
  for (const key of ["strategy", "account"]) if (page.get(key)) query.set(key, page.get(key));
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const rest = query.toString();
  $("filters").textContent = rest ? `(${rest.replace("&", ", ")})` : "";
  return `${scheme}//${location.host}/ws/trades${rest ? "?" + rest : ""}`;
}

function connect() {
  clearTimeout(state.retryTimer);
  if (!state.signedIn) return;
  setConnection(state.attempt ? "reconnecting" : "connecting", state.attempt ? "reconnecting…" : "connecting…");
  const socket = new WebSocket(feedUrl());
  state.socket = socket;
  let opened = false;
  socket.onopen = () => {
    opened = true;
    state.attempt = 0;
    setConnection("live", "live");
  };
  socket.onmessage = (message) => receive(JSON.parse(message.data));
  socket.onclose = async () => {
    if (state.socket !== socket) return;  // replaced on purpose
    state.socket = null;
    if (!opened) {
      const session = await fetch("/session").then((r) => r.json()).catch(() => null);
      if (session && !session.authenticated) return signedOut();
    }
    retry();
  };
}

function retry() {
  if (!state.signedIn) return;
  // Full jitter on an exponential backoff: 0.5 s, 1 s, 2 s … up to 15 s.
  const ceiling = Math.min(15000, 500 * 2 ** state.attempt);
  const wait = Math.round(ceiling / 2 + Math.random() * ceiling / 2);
  state.attempt += 1;
  setConnection("reconnecting", `offline · retrying in ${Math.ceil(wait / 1000)} s`);
  state.retryTimer = setTimeout(connect, wait);
}

function reconnectNow() {
  if (state.signedIn && !state.socket) {
    state.attempt = Math.min(state.attempt, 1);
    connect();
  }
}

// Messages -------------------------------------------------------------------------------------------
function receive(message) {
  switch (message.type) {
    case "snapshot": return applySnapshot(message);
    case "trade": return applyTrade(message.trade);
    case "event": return logEvent(message, true);
    case "prices": return applyPrices(message);
  }
}

function applySnapshot(snapshot) {
  state.trades.clear();
  for (const trade of snapshot.trades) {
    state.trades.set(trade.id, trade);
    addPoint(trade, snapshot.at_ms);
  }
  for (const id of [...state.series.keys()]) if (!state.trades.has(id)) state.series.delete(id);
  setHalted(snapshot.halted);
  if (snapshot.halts) renderHalts(snapshot.halts);
  state.plugins = snapshot.plugins || [];
  renderPlugins();
  for (const event of snapshot.events) logEvent(event, false);
  if (!state.trades.has(state.selected)) state.selected = null;
  renderTrades();
}

function applyTrade(trade) {
  const held = state.trades.get(trade.id);
  if (held && held.version >= trade.version) return;  // an older version queued behind a snapshot
  if (held && trade.ltp === null) { trade.ltp = held.ltp; }
  state.trades.set(trade.id, trade);
  addPoint(trade, trade.updated_ms);
  renderTrades();
}

function applyPrices(message) {
  for (const price of message.prices) {
    const trade = state.trades.get(price.trade_id);
    if (!trade) continue;
    trade.ltp = price.ltp;
    trade.pnl = price.pnl;
    addPoint(trade, message.at_ms);
    updateRow(trade);
  }
  drawChart();
}

function addPoint(trade, at) {
  if (trade.ltp === null || trade.ltp === undefined) return;
  const points = state.series.get(trade.id) || [];
  const last = points[points.length - 1];
  const point = { t: at, ltp: trade.ltp, stop: trade.stop, target: trade.target };
  if (last && last.ltp === point.ltp && last.stop === point.stop && last.target === point.target) return;
  if (last && at < last.t) point.t = last.t;
  points.push(point);
  if (points.length > MAX_POINTS) points.splice(0, points.length - MAX_POINTS);
  state.series.set(trade.id, points);
}

function setHalted(halted) {
  state.halted = halted;
  $("halt").checked = halted;
  $("halt-control").classList.toggle("on", halted);
}

// Halts: the operator's, and today's daily-loss halts of accounts and strategies (GET /halt) -----------
function renderHalts(view) {
  const items = [];
  if (view.global && view.global.halted) items.push({ scope: "global", key: "", ...view.global });
  for (const [scope, groups] of [["account", view.accounts], ["strategy", view.strategies]]) {
    for (const [key, group] of Object.entries(groups || {})) if (group.halted) items.push({ scope, key, ...group });
  }
  const list = $("halts");
  list.replaceChildren();
  for (const halt of items) {
    const item = document.createElement("li");
    item.dataset.scope = halt.scope;
    item.dataset.key = halt.key;
    const field = (name, text) => {
      const span = document.createElement(name === "at" ? "time" : "span");
      span.dataset.field = name;
      span.textContent = text;
      return span;
    };
    item.append(field("who", halt.scope === "global" ? "all entries" : `${halt.scope} ${halt.key}`));
    if (halt.at_ms) item.append(field("at", clock(halt.at_ms)));
    item.append(field("reason", halt.reason || "halted"));
    if (halt.realised !== undefined) item.append(field("realised", `realised today ${money(halt.realised)}`));
    list.append(item);
  }
  $("halts-panel").hidden = items.length === 0;
}

async function refreshHalts() {
  const reply = await fetch("/halt").catch(() => null);
  if (reply && reply.ok) renderHalts(await reply.json());
}

// Plug-ins -------------------------------------------------------------------------------------------
function pluginChanged(event) {
  const d = event.data || {};
  if (event.kind === "plugin_failed") {
    const plugin = state.plugins.find((p) => p.name === d.name);
    if (plugin) { plugin.state = "unplugged"; plugin.error = d.error; }
  } else if (event.kind === "plugin_withheld") {
    for (const name of String(d.name).split(",")) {
      const plugin = state.plugins.find((p) => p.name === name);
      if (plugin) plugin.withheld += 1;
    }
  }
  renderPlugins();
}

function renderPlugins() {
  $("plugins-panel").hidden = state.plugins.length === 0;
  const list = $("plugins");
  list.replaceChildren();
  for (const plugin of state.plugins) {
    const item = document.createElement("li");
    item.dataset.name = plugin.name;
    item.dataset.state = plugin.state;
    const field = (name, text, className = "") => {
      const span = document.createElement("span");
      span.dataset.field = name;
      span.className = className;
      span.textContent = text;
      return span;
    };
    item.append(field("name", plugin.name, "name"), field("stage", plugin.stage, "stage"));
    if (plugin.factory !== plugin.name) item.append(field("factory", plugin.factory, "factory"));
    item.append(field("state", plugin.state === "unplugged" ? `unplugged: ${plugin.error}` : "running"));
    if (plugin.withheld) item.append(field("withheld", `overruled ${plugin.withheld}×`));
    list.append(item);
  }
}

// Event log ------------------------------------------------------------------------------------------
function describe(event) {
  const d = event.data || {};
  const parts = [];
  if (event.kind.startsWith("plugin_")) {
    parts.push(d.name);
    if (d.error) parts.push(d.error);
    if (d.ltp !== undefined) parts.push(`held back ${money(d.ltp)} on ${d.token}: the rules ran on it`);
    return parts.join(" · ");
  }
  if (event.trade_id) {
    const trade = state.trades.get(event.trade_id);
    parts.push(`#${event.trade_id}${trade ? " " + trade.tradingsymbol : ""}`);
  }
  if (d.alert) parts.push(`${d.alert.signal || ""} ${d.alert.symbolname || ""} (${d.alert.strategyname || ""})`.trim());
  if (d.reason) parts.push(d.reason);
  if (d.quantity !== undefined && d.price !== undefined) parts.push(`${d.quantity} @ ${d.price ? money(d.price) : "market"}`);
  else if (d.quantity !== undefined) parts.push(`qty ${d.quantity}`);
  if (d.asked !== undefined) parts.push(`asked ${d.asked}`);
  if (d.level !== undefined && d.level !== null) parts.push(`level ${money(d.level)}`);
  if (d.stop !== undefined && d.stop !== null) parts.push(`stop ${money(d.stop)}`);
  if (d.target !== undefined && d.target !== null) parts.push(`target ${money(d.target)}`);
  if (d.halted !== undefined) parts.push(d.halted ? "trading halted" : "trading resumed");
  return parts.join(" · ");
}

function logEvent(event, live) {
  if (event.id !== null && event.id !== undefined) {
    if (state.seenEvents.has(event.id)) return;
    state.seenEvents.add(event.id);
  }
  if (live && event.kind === "halt") setHalted(Boolean(event.data.halted));
  // A close moves the realised P&L shown beside a halt.
  const halts = ["halt", "loss_limit", "loss_resumed"].includes(event.kind) || (event.kind === "closed" && !$("halts-panel").hidden);
  if (live && halts) refreshHalts();
  if (live && event.kind.startsWith("plugin_")) pluginChanged(event);
  const item = document.createElement("li");
  item.dataset.kind = event.kind;
  const time = document.createElement("time");
  time.textContent = clock(event.at_ms);
  const kind = document.createElement("span");
  kind.className = `kind kind-${event.kind}`;
  kind.textContent = event.kind.replaceAll("_", " ");
  const detail = document.createElement("span");
  detail.className = "detail";
  detail.textContent = describe(event);
  item.append(time, kind, detail);
  const log = $("events");
  log.prepend(item);
  while (log.children.length > MAX_EVENTS) log.lastElementChild.remove();
}

// Trades table ---------------------------------------------------------------------------------------
function ordered() {
  return [...state.trades.values()].sort((a, b) =>
    (FINISHED.has(a.state) - FINISHED.has(b.state)) || b.id - a.id);
}

function renderTrades() {
  const body = $("trades").tBodies[0];
  const trades = ordered();
  const rows = new Map([...body.rows].map((row) => [Number(row.dataset.tradeId), row]));
  for (const [id, row] of rows) if (!state.trades.has(id)) row.remove();
  trades.forEach((trade, index) => {
    const row = rows.get(trade.id) || createRow(trade);
    if (body.rows[index] !== row) body.insertBefore(row, body.rows[index] || null);
    updateRow(trade);
  });
  $("no-trades").hidden = trades.length > 0;
  if (state.selected === null) {
    const first = trades.find((t) => !FINISHED.has(t.state)) || trades[0];
    if (first) state.selected = first.id;
  }
  for (const row of body.rows) row.classList.toggle("selected", Number(row.dataset.tradeId) === state.selected);
  drawChart();
}

function createRow(trade) {
  const row = document.createElement("tr");
  row.dataset.tradeId = trade.id;
  for (const [field, label] of COLUMNS) {
    const cell = document.createElement("td");
    cell.dataset.field = field;
    cell.dataset.label = label;
    if (NUMERIC.has(field)) cell.className = "num";
    row.append(cell);
  }
  const button = document.createElement("button");
  button.type = "button";
  button.className = "danger close";
  button.textContent = "Close";
  button.addEventListener("click", (click) => { click.stopPropagation(); closeTrade(trade.id, button); });
  row.querySelector('[data-field="actions"]').append(button);
  row.addEventListener("click", () => {
    state.selected = trade.id;
    renderTrades();
  });
  return row;
}

function updateRow(trade) {
  const row = $("trades").querySelector(`tr[data-trade-id="${trade.id}"]`);
  if (!row) return;
  const cell = (field) => row.querySelector(`[data-field="${field}"]`);
  cell("symbol").innerHTML = "";
  const symbol = document.createElement("span");
  symbol.className = "symbol";
  symbol.textContent = trade.tradingsymbol;
  const strategy = document.createElement("span");
  strategy.className = "muted";
  strategy.textContent = ` ${trade.strategy}`;
  cell("symbol").append(symbol, strategy);
  cell("account").textContent = trade.account;
  cell("side").textContent = trade.side;
  cell("side").className = `side-${trade.side}`;
  const qty = trade.open_quantity || trade.filled || trade.quantity || "—";
  // a trade partly exited shows what is still open and what has gone: "2 (3 exited)"
  cell("qty").textContent = trade.exited && trade.open_quantity ? `${qty} (${trade.exited} exited)` : qty;
  cell("entry").textContent = money(trade.entry_price);
  cell("ltp").textContent = money(trade.ltp);
  cell("stop").textContent = money(trade.stop);
  showBrokerStop(cell("broker"), trade.broker_stop);
  cell("target").textContent = money(trade.target);
  const pnl = cell("pnl");
  pnl.textContent = trade.pnl === null || trade.pnl === undefined ? "—" : (trade.pnl > 0 ? "+" : "") + money(trade.pnl);
  pnl.className = "num" + (trade.pnl > 0 ? " profit" : trade.pnl < 0 ? " loss" : "");
  const status = cell("status");
  status.innerHTML = "";
  const badge = document.createElement("span");
  badge.className = `state state-${trade.state}`;
  badge.textContent = trade.state.replace("_", " ");
  if (trade.reason) badge.title = trade.reason;
  status.append(badge);
  row.dataset.state = trade.state;
  row.classList.toggle("finished", FINISHED.has(trade.state));
  row.classList.toggle("unprotected", trade.state === "UNPROTECTED");
  const button = row.querySelector("button.close");
  button.hidden = !CLOSABLE.has(trade.state);
}

// The broker-side backup stop: its trigger while one is working, else a dash saying why there is none.
function showBrokerStop(cell, backup) {
  const working = backup && backup.trigger !== undefined;
  cell.textContent = working ? money(backup.trigger) : "—";
  cell.title = !backup ? "" : working
    ? `broker stop: trigger ${money(backup.trigger)}, limit ${money(backup.limit)}, ${backup.quantity} units, ${backup.status}`
    : `no broker stop: ${backup.why}`;
  cell.classList.toggle("no-broker-stop", Boolean(backup) && !working);
}

// Controls -------------------------------------------------------------------------------------------
async function post(path, body) {
  const reply = await fetch(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}),
  });
  if (reply.status === 401) signedOut();
  return reply;
}

function closeTrade(id, button) {
  // Two taps: the first arms the button for three seconds, the second sends the close.
  if (!button.classList.contains("armed")) {
    button.classList.add("armed");
    button.textContent = "Confirm";
    button.disarm = setTimeout(() => { button.classList.remove("armed"); button.textContent = "Close"; }, 3000);
    return;
  }
  clearTimeout(button.disarm);
  button.classList.remove("armed");
  button.disabled = true;
  button.textContent = "Closing…";
  post(`/trades/${id}/close`).then((reply) => {
    if (!reply.ok) reply.json().then((r) => alertLine(`close #${id}: ${r.errors?.[0]?.reason || reply.status}`)).catch(() => {});
  }).finally(() => { button.disabled = false; button.textContent = "Close"; });
}

function alertLine(text) {
  logEvent({ id: null, kind: "dashboard", trade_id: null, at_ms: Date.now(), data: { reason: text } }, false);
}

async function toggleHalt() {
  const wanted = $("halt").checked;
  const reply = await post("/halt", { halted: wanted });
  if (reply.ok) setHalted((await reply.json()).halted);
  else setHalted(!wanted);
}

// Chart ----------------------------------------------------------------------------------------------
const SVG = "http://www.w3.org/2000/svg";

function svgElement(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

function drawChart() {
  const svg = $("chart");
  const trade = state.trades.get(state.selected);
  let points = (trade && state.series.get(trade.id)) || [];
  svg.replaceChildren();
  $("chart-title").textContent = trade ? `${trade.tradingsymbol} · #${trade.id} · ${trade.side}` : "Price";
  svg.dataset.tradeId = trade ? trade.id : "";
  svg.dataset.stop = trade && trade.stop !== null ? trade.stop : "";
  svg.dataset.target = trade && trade.target !== null ? trade.target : "";
  if (!points.length) {
    svg.removeAttribute("viewBox");
    svg.append(svgElement("text", { x: "50%", y: "50%", "text-anchor": "middle", class: "empty" },
      trade ? "waiting for prices…" : "select a trade"));
    return;
  }
  // Drawn in the element's own pixels, so text keeps its shape at any width.
  const width = Math.max(svg.clientWidth, 200), height = Math.max(svg.clientHeight, 120);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const left = 8, right = 64, top = 14, bottom = 10;
  if (points.length === 1) points = [points[0], { ...points[0], t: points[0].t + 1 }];  // one price: a level
  const values = points.flatMap((p) => [p.ltp, p.stop, p.target]).filter((v) => v !== null && v !== undefined);
  let low = Math.min(...values), high = Math.max(...values);
  const pad = Math.max((high - low) * 0.08, 5);
  low -= pad; high += pad;
  const t0 = points[0].t, t1 = Math.max(points[points.length - 1].t, t0 + 1);
  const x = (t) => left + (width - left - right) * (t - t0) / (t1 - t0);
  const y = (v) => top + (height - top - bottom) * (1 - (v - low) / (high - low));

  for (const v of [low + pad, (low + high) / 2, high - pad]) {
    svg.append(svgElement("line", { x1: left, x2: width - right, y1: y(v), y2: y(v), class: "grid" }));
    svg.append(svgElement("text", { x: width - right + 4, y: y(v) + 4, class: "axis" }, money(Math.round(v))));
  }
  const step = (key) => {
    let d = "", previous = null;
    for (const p of points) {
      const v = p[key];
      if (v === null || v === undefined) { previous = null; continue; }
      d += previous === null ? `M${x(p.t)},${y(v)}` : `H${x(p.t)}V${y(v)}`;
      previous = v;
    }
    return previous === null && !d ? "" : d + `H${width - right}`;
  };
  const line = points.map((p, i) => `${i ? "L" : "M"}${x(p.t)},${y(p.ltp)}`).join("");
  for (const [key, value] of [["stop", trade.stop], ["target", trade.target]]) {
    const d = step(key);
    if (!d) continue;
    svg.append(svgElement("path", { d, class: key, "data-line": key, "data-value": value ?? "" }));
    if (value !== null && value !== undefined) {
      svg.append(svgElement("text", { x: left + 4, y: y(value) + (key === "stop" ? 13 : -4), class: `label-${key}` },
        `${key} ${money(value)}`));
    }
  }
  svg.append(svgElement("path", { d: line, class: "ltp", "data-line": "ltp", "data-value": trade.ltp ?? "" }));
}

// Sign-in --------------------------------------------------------------------------------------------
function signedIn(who) {
  state.signedIn = true;
  state.role = who.role;
  document.body.dataset.role = who.role;  // a viewer's page shows no controls (the server refuses them anyway)
  $("who").textContent = `${who.operator} (${who.role})`;
  $("who").hidden = false;
  $("login").hidden = true;
  $("desk").hidden = false;
  $("halt-control").hidden = who.role !== "trader";
  $("logout").hidden = false;
  state.attempt = 0;
  connect();
}

function signedOut() {
  state.signedIn = false;
  clearTimeout(state.retryTimer);
  if (state.socket) { const socket = state.socket; state.socket = null; socket.close(); }
  $("login").hidden = false;
  $("desk").hidden = true;
  $("halt-control").hidden = true;
  $("logout").hidden = true;
  $("who").hidden = true;
  setConnection("signed-out", "signed out");
  $("operator-name").focus();
}

async function signIn(submit) {
  submit.preventDefault();
  const reply = await fetch("/login", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: $("operator-name").value, password: $("password").value }),
  }).catch(() => null);
  $("password").value = "";
  if (reply && reply.ok) {
    $("login-error").hidden = true;
    signedIn(await reply.json());
  } else {
    $("login-error").hidden = false;
  }
}

async function start() {
  $("login-form").addEventListener("submit", signIn);
  $("logout").addEventListener("click", async () => { await post("/logout"); signedOut(); });
  $("halt").addEventListener("change", toggleHalt);
  window.addEventListener("online", reconnectNow);
  window.addEventListener("resize", () => requestAnimationFrame(drawChart));
  document.addEventListener("visibilitychange", () => { if (!document.hidden) reconnectNow(); });
  if (new URLSearchParams(location.search).get("login") === "failed") $("login-error").hidden = false;
  const session = await fetch("/session").then((r) => r.json()).catch(() => ({ authenticated: false }));
  if (session.authenticated) signedIn(session); else signedOut();
}

start();
