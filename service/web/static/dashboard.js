// tickguard's desk: one WebSocket (/ws/trades) plus a few reads, plain DOM, ES modules, no build step.
// Prices arrive in integer paise. `window.tickguard` exposes the page's state and its reconnect
// schedule for scripts and tests.

import { $, get, istDay, onUnauthorised, post, reasonOf } from "./util.js";
import { state } from "./state.js";
import { backoffDelay, connect, disconnect, onFeed, reconnectNow } from "./feed.js";
import { addPoint, drawChart, forgetPrices, loadPrices } from "./chart.js";
import { armed, markSelected, onTrades, renderTrades, updateRow } from "./trades.js";
import { logEvent, note, onEvents, renderHalts, renderPlugins } from "./events.js";
import { applySummary, refreshSummary } from "./summary.js";
import { loadHistory, startHistory } from "./history.js";
import { loadAlerts, startAlerts } from "./alerts.js";

const phone = window.matchMedia("(max-width: 720px)");

// Messages -----------------------------------------------------------------------------------------
function receive(message) {
  switch (message.type) {
    case "snapshot": return applySnapshot(message);
    case "trade": return applyTrade(message.trade);
    case "event": return logEvent(message, true);
    case "prices": return applyPrices(message);
    case "summary": return applySummary(message);
  }
}

function applySnapshot(snapshot) {
  state.trades.clear();
  for (const trade of snapshot.trades) {
    state.trades.set(trade.id, trade);
    addPoint(trade, snapshot.at_ms);
  }
  forgetPrices();
  setHalted(snapshot.halted);
  if (snapshot.halts) renderHalts(snapshot.halts);
  state.plugins = snapshot.plugins || [];
  renderPlugins();
  for (const event of snapshot.events) logEvent(event, false);
  if (!state.trades.has(state.selected)) state.selected = null;
  renderTrades();
  if (state.selected !== null) loadPrices(state.selected);
  drawChart();
  refreshSummary();
}

function applyTrade(trade) {
  const held = state.trades.get(trade.id);
  if (held && held.version >= trade.version) return;  // an older version queued behind a snapshot
  if (held && trade.ltp === null) trade.ltp = held.ltp;
  state.trades.set(trade.id, trade);
  addPoint(trade, trade.updated_ms);
  renderTrades();
  drawChart();
}

function applyPrices(message) {
  for (const price of message.prices) {
    const trade = state.trades.get(price.trade_id);
    if (!trade) continue;
    trade.ltp = price.ltp;
    trade.pnl = price.pnl;
    if (price.open_pnl !== undefined) trade.open_pnl = price.open_pnl;
    addPoint(trade, message.at_ms);
    updateRow(trade);
  }
  drawChart();
}

// Choosing a trade: its chart beside the table, or on a phone in a sheet over the cards --------------
function select(id, fromCard) {
  state.selected = id;
  markSelected();
  loadPrices(id);
  if (fromCard && phone.matches) {
    $("desk").classList.add("chart-open");
    $("chart-done").focus();
  }
  drawChart();
}

function closeChart() {
  $("desk").classList.remove("chart-open");
}

// Views --------------------------------------------------------------------------------------------
function showView(view) {
  $("desk").dataset.view = view;
  for (const tab of document.querySelectorAll(".tab")) tab.setAttribute("aria-selected", String(tab.dataset.view === view));
  if (view === "history") loadHistory();
  if (view === "alerts") loadAlerts();
  if (view === "trades") requestAnimationFrame(drawChart);
}

// Controls -----------------------------------------------------------------------------------------
function setHalted(halted) {
  state.halted = halted;
  $("halt").checked = halted;
  $("halt-control").classList.toggle("on", halted);
}

async function toggleHalt() {
  const wanted = $("halt").checked;
  const reply = await post("/halt", { halted: wanted }).catch(() => null);
  if (reply && reply.ok) return setHalted((await reply.json()).halted);
  setHalted(!wanted);
  note(`halt: ${reply ? await reasonOf(reply) : "the service did not answer"}`);
}

function flatten() {
  const button = $("flatten");
  armed(button, "Flatten", async () => {
    button.textContent = "Flattening…";
    const reply = await post("/halt", { halted: true, flatten: true, reason: "flatten from the desk" }).catch(() => null);
    if (reply && reply.ok) setHalted((await reply.json()).halted);
    else note(`flatten: ${reply ? await reasonOf(reply) : "the service did not answer"}`);
  });
}

// Sign-in ------------------------------------------------------------------------------------------
function showOperator(session) {
  state.operator = session.operator || null;
  state.role = session.role || null;
  document.body.dataset.role = state.role || "trader";
  $("operator").hidden = !state.operator;
  $("operator").querySelector('[data-field="name"]').textContent = state.operator || "";
  $("operator").querySelector('[data-field="role"]').textContent = state.role || "";
}

function signedIn(session) {
  state.signedIn = true;
  showOperator(session);
  $("login").hidden = true;
  $("desk").hidden = false;
  $("summary").hidden = false;
  $("logout").hidden = false;
  state.attempt = 0;
  connect();
}

function signedOut() {
  state.signedIn = false;
  disconnect("signed out");
  showOperator({});
  $("login").hidden = false;
  $("desk").hidden = true;
  $("summary").hidden = true;
  $("logout").hidden = true;
  $("operator-name").focus();
}

async function signIn(submit) {
  submit.preventDefault();
  const reply = await fetch("/login", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: $("operator-name").value.trim(), password: $("password").value }),
  }).catch(() => null);
  $("password").value = "";
  const error = $("login-error");
  if (reply && reply.ok) {
    error.hidden = true;
    return signedIn(await reply.json().catch(() => ({})));  // {"authenticated", "operator", "role"}
  }
  error.hidden = false;
  if (!reply) error.textContent = "The service did not answer.";
  else if (reply.status === 429) {
    error.textContent = `Too many failed attempts: try again in ${reply.headers.get("Retry-After") || "a while"} s.`;
  } else error.textContent = "That name and password were not accepted.";
}

async function start() {
  onFeed(receive, signedOut);
  onUnauthorised(signedOut);
  onTrades(select, note);
  onEvents(setHalted);
  startHistory();
  startAlerts();
  $("login-form").addEventListener("submit", signIn);
  $("logout").addEventListener("click", async () => { await post("/logout").catch(() => null); signedOut(); });
  $("halt").addEventListener("change", toggleHalt);
  $("flatten").addEventListener("click", flatten);
  $("chart-done").addEventListener("click", closeChart);
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showView(tab.dataset.view));
  phone.addEventListener("change", () => { closeChart(); requestAnimationFrame(drawChart); });
  window.addEventListener("online", reconnectNow);
  window.addEventListener("resize", () => requestAnimationFrame(drawChart));
  document.addEventListener("visibilitychange", () => { if (!document.hidden) reconnectNow(); });
  if (new URLSearchParams(location.search).get("login") === "failed") $("login-error").hidden = false;
  const session = await fetch("/session").then((r) => r.json()).catch(() => ({ authenticated: false }));
  if (session.authenticated) signedIn(session); else signedOut();
}

window.tickguard = { state, backoffDelay, istDay };
start();
