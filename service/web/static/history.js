// Finished trades, a page at a time, filtered by day, strategy, account and state
// (GET /trades?…&before=), and the day's CSV (GET /trades.csv?day=).

import { $, chargesText, clock, el, get, istDay, money, reasonOf, signed, tone } from "./util.js";
import { exitReason } from "./state.js";

let next = null;

function query(before) {
  const params = new URLSearchParams({ limit: $("history-rows").value });
  for (const key of ["day", "strategy", "account", "state"]) {
    const value = $(`history-${key}`).value.trim();
    if (value) params.set(key, value);
  }
  if (before !== null && before !== undefined) params.set("before", String(before));
  return params;
}

function csvLink() {
  const day = $("history-day").value || istDay();
  $("csv").href = `/trades.csv?day=${encodeURIComponent(day)}`;
  $("csv").setAttribute("download", `tickguard-trades-${day}.csv`);
}

function row(trade) {
  const tr = el("tr");
  tr.dataset.tradeId = trade.id;
  const cell = (field, text, className = "") => {
    const td = el("td", className, text);
    td.dataset.field = field;
    return td;
  };
  const symbol = el("span", "symbol", trade.tradingsymbol);
  symbol.title = trade.tradingsymbol;
  const reason = exitReason(trade);
  tr.append(
    cell("id", `#${trade.id}`, "num"),
    cell("created", trade.created_ms ? clock(trade.created_ms) : "—"),
    cell("symbol", [symbol, el("span", "muted strategy", trade.strategy)]),
    cell("account", trade.account),
    cell("side", trade.side, `side-${trade.side}`),
    cell("qty", String(trade.filled || trade.quantity || "—"), "num"),
    cell("entry", money(trade.entry_price), "num"),
    cell("exit", money(trade.exit_price), "num"),
    cell("exit_reason", reason || "—"),
    cell("pnl", signed(trade.realised_pnl), ("num " + tone(trade.realised_pnl)).trim()),
    cell("net", signed(trade.net_pnl), ("num " + tone(trade.net_pnl)).trim()),
    cell("status", [el("span", `state state-${trade.state}`, trade.state.replace("_", " "))]),
  );
  tr.cells[tr.cells.length - 2].title = chargesText(trade);
  for (const td of tr.cells) td.dataset.label = $("history").tHead.rows[0].cells[td.cellIndex].textContent;
  return tr;
}

/** Load the first page for the filters as they stand, or (`more`) the next older page. */
export async function loadHistory(more = false) {
  csvLink();
  const body = $("history").tBodies[0];
  if (!more) { body.replaceChildren(); next = null; }
  $("history-note").textContent = "loading…";
  const reply = await get(`/trades?${query(more ? next : null)}`);
  if (!reply || !reply.ok) {
    $("history-note").textContent = reply ? await reasonOf(reply) : "the service did not answer";
    return;
  }
  const page = await reply.json();
  for (const trade of page.trades) body.append(row(trade));
  next = page.next ?? null;
  $("history-more").hidden = next === null;
  $("history-note").textContent = body.rows.length ? `${body.rows.length} trades` : "No trades for these filters.";
}

export function startHistory() {
  $("history-day").value = istDay();
  csvLink();
  $("history-day").addEventListener("change", csvLink);
  $("history-form").addEventListener("submit", (submit) => { submit.preventDefault(); loadHistory(); });
  $("history-more").addEventListener("click", () => loadHistory(true));
}
