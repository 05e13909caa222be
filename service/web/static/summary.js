// The strip across the top: the day's P&L, open trades, exits by reason, unprotected trades, halts and
// the market stream's health (GET /desk/summary, then the feed's `summary` messages).

import { $, clock, get, signed, tone } from "./util.js";
import { state } from "./state.js";
import { renderStale } from "./feed.js";

function show(stat, text, className = "", title = "") {
  const box = document.querySelector(`#summary [data-stat="${stat}"]`);
  const value = box.querySelector(".value");
  value.textContent = text;
  value.className = ("value " + className).trim();
  box.title = title;
  return box;
}

export function applySummary(summary) {
  state.summary = summary;
  $("summary").dataset.day = summary.day || "";
  show("realised", signed(summary.realised_pnl), tone(summary.realised_pnl), `realised today (${summary.day})`);
  show("open_pnl", signed(summary.open_pnl), tone(summary.open_pnl), "open trades at their last price");
  const uncharged = summary.uncharged ? ` (${summary.uncharged} trade(s) outside the charges schedule left out)` : "";
  show("net", signed(summary.net_pnl), tone(summary.net_pnl),
    summary.net_pnl === null || summary.net_pnl === undefined ? "waiting for a price of every open trade"
      : `realised + open − charges ${summary.charges_rupees ?? ""}${uncharged}`);
  show("open_trades", String(summary.open_trades ?? "—"));
  const unprotected = summary.unprotected ?? 0;
  show("unprotected", String(summary.unprotected ?? "—"), unprotected > 0 ? "loss" : "",
    "open trades tickguard could not protect with a stop").classList.toggle("alarm", unprotected > 0);
  const exits = Object.entries(summary.exits_by_reason || {}).filter(([, n]) => n > 0);
  show("exits", exits.length ? exits.map(([reason, n]) => `${reason} ${n}`).join(" · ") : "none");
  const halted = haltedNames(summary.halts || {});
  show("halted", halted.length ? halted.join(" · ") : "none", halted.length ? "loss" : "",
    [summary.halts && summary.halts.reason, ...Object.values((summary.halts || {}).accounts || {}),
      ...Object.values((summary.halts || {}).strategies || {})].filter((r) => typeof r === "string" && r).join("\n"));
  const stream = summary.stream || {};
  const last = stream.last_tick_ms ? `last tick ${clock(stream.last_tick_ms)}` : "no tick yet";
  const box = show("stream", stream.state || "—", { live: "profit", down: "loss" }[stream.state] || "",
    [last, stream.reason].filter(Boolean).join(" · "));
  box.dataset.state = stream.state || "";
  $("summary").dataset.source = "service";
  renderStale();
}

function haltedNames(halts) {
  const names = [];
  if (halts.operator) names.push("all entries");
  for (const [scope, groups] of [["account", halts.accounts], ["strategy", halts.strategies]]) {
    for (const [key, value] of Object.entries(groups || {})) {
      // a halt's reason, `true`, or a group `{halted, …}` of GET /halt
      if (value && (typeof value !== "object" || value.halted)) names.push(`${scope} ${key}`);
    }
  }
  return names;
}

/** Read the summary once (on each snapshot); the feed keeps it current after that. */
export async function refreshSummary() {
  const reply = await get("/desk/summary");
  if (reply && reply.ok) return applySummary(await reply.json());
  if (reply && reply.status === 404) {
    $("summary").dataset.source = "none";
    $("summary").title = "this service does not report a day summary";
  }
}
