// The event log, the halts panel (GET /halt) and the engine's plug-ins.

import { $, clock, el, get, money } from "./util.js";
import { state } from "./state.js";

const MAX_EVENTS = 200;  // lines kept in the event log

let changed = { halt: () => {} };

/** `halt(halted)`: the operator's halt changed by an event. */
export function onEvents(halt) {
  changed = { halt };
}

// Halts: the operator's, and today's daily-loss halts of accounts and strategies -------------------
export function renderHalts(view) {
  const items = [];
  if (view.global && view.global.halted) items.push({ scope: "global", key: "", ...view.global });
  for (const [scope, groups] of [["account", view.accounts], ["strategy", view.strategies]]) {
    for (const [key, group] of Object.entries(groups || {})) if (group.halted) items.push({ scope, key, ...group });
  }
  const list = $("halts");
  list.replaceChildren();
  for (const halt of items) {
    const item = el("li");
    item.dataset.scope = halt.scope;
    item.dataset.key = halt.key;
    const field = (name, text) => {
      const span = el(name === "at" ? "time" : "span", "", text);
      span.dataset.field = name;
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

export async function refreshHalts() {
  const reply = await get("/halt");
  if (reply && reply.ok) renderHalts(await reply.json());
}

// Plug-ins -----------------------------------------------------------------------------------------
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

export function renderPlugins() {
  $("plugins-panel").hidden = state.plugins.length === 0;
  const list = $("plugins");
  list.replaceChildren();
  for (const plugin of state.plugins) {
    const item = el("li");
    item.dataset.name = plugin.name;
    item.dataset.state = plugin.state;
    const field = (name, text, className = "") => {
      const span = el("span", className, text);
      span.dataset.field = name;
      return span;
    };
    item.append(field("name", plugin.name, "name"), field("stage", plugin.stage, "stage"));
    if (plugin.factory !== plugin.name) item.append(field("factory", plugin.factory, "factory"));
    item.append(field("state", plugin.state === "unplugged" ? `unplugged: ${plugin.error}` : "running"));
    if (plugin.withheld) item.append(field("withheld", `overruled ${plugin.withheld}×`));
    list.append(item);
  }
}

// Event log ----------------------------------------------------------------------------------------
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
  if (d.operator) parts.push(`by ${d.operator}`);  // a close, halt or flatten: who asked for it
  return parts.join(" · ");
}

export function logEvent(event, live) {
  if (event.id !== null && event.id !== undefined) {
    if (state.seenEvents.has(event.id)) return;
    state.seenEvents.add(event.id);
  }
  if (live && event.kind === "halt") changed.halt(Boolean(event.data.halted));
  // A close moves the realised P&L shown beside a halt.
  const halts = ["halt", "loss_limit", "loss_resumed"].includes(event.kind) || (event.kind === "closed" && !$("halts-panel").hidden);
  if (live && halts) refreshHalts();
  if (live && event.kind.startsWith("plugin_")) pluginChanged(event);
  const item = el("li");
  item.dataset.kind = event.kind;
  item.append(el("time", "", clock(event.at_ms)), el("span", `kind kind-${event.kind}`, event.kind.replaceAll("_", " ")),
    el("span", "detail", describe(event)));
  const log = $("events");
  log.prepend(item);
  while (log.children.length > MAX_EVENTS) log.lastElementChild.remove();
}

/** A line of the page's own (a refused close …) in the event log. */
export function note(text) {
  logEvent({ id: null, kind: "dashboard", trade_id: null, at_ms: Date.now(), data: { reason: text } }, false);
}
