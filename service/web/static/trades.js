// The live trades table: every open trade and today's recent ones, as the feed keeps them.

import { $, chargesText, el, money, post, reasonOf, signed, tone } from "./util.js";
import { CLOSABLE, FINISHED, exitReason, state } from "./state.js";

const COLUMNS = [
  ["symbol", "Symbol"], ["account", "Account"], ["side", "Side"], ["qty", "Qty"], ["entry", "Entry"],
  ["ltp", "LTP"], ["stop", "Stop"], ["broker", "At broker"], ["target", "Target"], ["exit", "Exit"],
  ["exit_reason", "Exit reason"], ["pnl", "P&L"], ["status", "Status"], ["actions", ""],
];
const NUMERIC = new Set(["qty", "entry", "ltp", "stop", "broker", "target", "exit", "pnl"]);

let hooks = { select: () => {}, note: () => {} };

/** `select(id, fromCard)`: a row was chosen; `note(text)`: a line for the event log. */
export function onTrades(select, note) {
  hooks = { select, note };
}

function ordered() {
  return [...state.trades.values()].sort((a, b) =>
    (FINISHED.has(a.state) - FINISHED.has(b.state)) || b.id - a.id);
}

export function renderTrades() {
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
  markSelected();
}

export function markSelected() {
  for (const row of $("trades").tBodies[0].rows) {
    row.classList.toggle("selected", Number(row.dataset.tradeId) === state.selected);
  }
}

function createRow(trade) {
  const row = document.createElement("tr");
  row.dataset.tradeId = trade.id;
  for (const [field, label] of COLUMNS) {
    const cell = el("td", NUMERIC.has(field) ? "num" : "");
    cell.dataset.field = field;
    cell.dataset.label = label;
    row.append(cell);
  }
  const button = el("button", "danger close trader-only", "Close");
  button.type = "button";
  button.addEventListener("click", (click) => { click.stopPropagation(); closeTrade(trade.id, button); });
  const chart = el("button", "quiet chart-open phone-only", "Chart");
  chart.type = "button";
  chart.addEventListener("click", (click) => { click.stopPropagation(); hooks.select(trade.id, true); });
  row.querySelector('[data-field="actions"]').append(chart, button);
  row.tabIndex = 0;  // a keyboard chooses a trade with Enter as a pointer does with a click
  row.addEventListener("click", () => hooks.select(trade.id, true));
  row.addEventListener("keydown", (key) => {
    if (key.target === row && (key.key === "Enter" || key.key === " ")) { key.preventDefault(); hooks.select(trade.id, true); }
  });
  return row;
}

export function updateRow(trade) {
  const row = $("trades").querySelector(`tr[data-trade-id="${trade.id}"]`);
  if (!row) return;
  const cell = (field) => row.querySelector(`[data-field="${field}"]`);
  const symbol = el("span", "symbol", trade.tradingsymbol);
  symbol.title = trade.tradingsymbol;
  cell("symbol").replaceChildren(symbol, el("span", "muted strategy", trade.strategy));
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
  cell("exit").textContent = money(trade.exit_price);
  cell("exit_reason").textContent = exitReason(trade) || "—";
  const pnl = cell("pnl");
  pnl.textContent = signed(trade.pnl);
  pnl.className = ("num " + tone(trade.pnl)).trim();
  pnl.title = chargesText(trade);
  const badge = el("span", `state state-${trade.state}`, trade.state.replace("_", " "));
  if (trade.reason) badge.title = trade.reason;
  cell("status").replaceChildren(badge);
  row.dataset.state = trade.state;
  row.classList.toggle("finished", FINISHED.has(trade.state));
  row.classList.toggle("unprotected", trade.state === "UNPROTECTED");
  row.querySelector("button.close").hidden = !CLOSABLE.has(trade.state);
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

/** Two taps: the first arms `button` for three seconds, the second calls `act()`. */
export function armed(button, label, act) {
  if (!button.classList.contains("armed")) {
    button.classList.add("armed");
    button.textContent = "Confirm";
    button.disarm = setTimeout(() => { button.classList.remove("armed"); button.textContent = label; }, 3000);
    return;
  }
  clearTimeout(button.disarm);
  button.classList.remove("armed");
  button.disabled = true;
  Promise.resolve(act()).finally(() => { button.disabled = false; button.textContent = label; });
}

function closeTrade(id, button) {
  armed(button, "Close", async () => {
    button.textContent = "Closing…";
    const reply = await post(`/trades/${id}/close`).catch(() => null);
    if (!reply) hooks.note(`close #${id}: the service did not answer`);
    else if (!reply.ok) hooks.note(`close #${id}: ${await reasonOf(reply)}`);
  });
}
