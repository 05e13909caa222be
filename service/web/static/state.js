// What the page holds: one object, shared by the desk's modules.

export const state = {
  trades: new Map(),       // id -> trade row as the feed sends it
  series: new Map(),       // id -> [{t, ltp, stop, target}] price points for the chart
  fetchedPrices: new Set(),// trade ids whose recent prices were read from GET /trades/{id}/prices
  levels: new Map(),       // id -> levels of GET /trades/{id}/prices (trail_activation …)
  seenEvents: new Set(),   // event row ids already logged
  selected: null,
  halted: false,
  plugins: [],             // the engine's plug-ins as the snapshot lists them, kept current by events
  summary: null,           // the last GET /desk/summary or feed `summary`
  socket: null,
  attempt: 0,
  retryTimer: null,
  staleSince: null,        // ms since when LTP and P&L are not live (the feed dropped), else null
  signedIn: false,
  operator: null,
  role: null,              // "trader" | "viewer"; null when the service names no role (a trader's rights)
};

export const FINISHED = new Set(["CLOSED", "REJECTED", "EXPIRED"]);
export const CLOSABLE = new Set(["PENDING_ENTRY", "OPEN", "UNPROTECTED"]);

/** The reason a trade closed: the row's `exit_reason`, or for a closed row of an older service its `reason`. */
export function exitReason(trade) {
  if (trade.exit_reason) return trade.exit_reason;
  return trade.state === "CLOSED" && trade.reason ? trade.reason : null;
}
