// Small helpers shared by the desk's modules. Prices arrive as integer paise; rupees only on screen.

export const $ = (id) => document.getElementById(id);

const rupees = new Intl.NumberFormat("en-IN", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

export const money = (paise) => (paise === null || paise === undefined ? "—" : rupees.format(paise / 100));

/** A P&L with its sign: "+12.00", "-40.00", "0.00", or "—". */
export const signed = (paise) =>
  paise === null || paise === undefined ? "—" : (paise > 0 ? "+" : "") + money(paise);

/** "profit", "loss" or "" for a P&L, to colour it. */
export const tone = (paise) => (paise > 0 ? "profit" : paise < 0 ? "loss" : "");

export const clock = (ms) => new Date(ms).toLocaleTimeString("en-GB", { hour12: false });

/** Today's trading day in India (IST, UTC+5:30, no daylight saving) as YYYY-MM-DD. */
export function istDay(ms = Date.now()) {
  return new Date(ms + 330 * 60_000).toISOString().slice(0, 10);
}

/** An element with a class and text, or children. */
export function el(name, className, content) {
  const element = document.createElement(name);
  if (className) element.className = className;
  if (Array.isArray(content)) element.append(...content);
  else if (content !== undefined && content !== null) element.textContent = content;
  return element;
}

/** The first error reason of a tickguard error body, or the status. */
export async function reasonOf(reply) {
  const body = await reply.json().catch(() => null);
  const error = body && (body.error || (body.errors && body.errors[0]));
  if (error && error.reason) return error.reason;
  return `HTTP ${reply.status}`;
}

let unauthorised = () => {};

/** What to do when the service answers 401 (the session ended): set once by the page. */
export function onUnauthorised(handler) {
  unauthorised = handler;
}

/** A JSON POST with the session cookie; a 401 signs the page out. */
export async function post(path, body) {
  const reply = await fetch(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}),
  });
  if (reply.status === 401) unauthorised();
  return reply;
}

/** A GET with the session cookie: the reply, or null when the service could not be reached. */
export async function get(path) {
  const reply = await fetch(path, { headers: { Accept: "application/json" } }).catch(() => null);
  if (reply && reply.status === 401) unauthorised();
  return reply;
}

const CHARGE_NAMES = [["brokerage", "brokerage"], ["stt", "STT"], ["exchange_txn", "exchange"], ["sebi", "SEBI"],
  ["stamp", "stamp"], ["gst", "GST"]];

/** A trade's charges and net P&L as a tooltip line ("" until it has charges). */
export function chargesText(trade) {
  const charges = trade.charges;
  if (!charges) return trade.charges_why ? `no charges: ${trade.charges_why}` : "";
  const parts = CHARGE_NAMES.filter(([key]) => charges[key]).map(([key, name]) => `${name} ${charges[key + "_rupees"]}`);
  const open = trade.open_quantity ? " (what is open as an exit at the last price)" : "";
  return `charges ${charges.total_rupees}${open}: ${parts.join(", ")} · net ${trade.net_pnl_rupees ?? "—"}`;
}
