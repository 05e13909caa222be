// Every alert received — accepted, duplicate or refused — with its source, body (secrets masked by the
// service), decision and reason (GET /alerts?status=&source=&before=).

import { $, clock, el, get, reasonOf } from "./util.js";

const PAGE = 50;
let next = null;

function item(alert) {
  const li = el("li", `alert status-${alert.status}`);
  li.dataset.alertId = alert.id;
  li.dataset.status = alert.status;
  const field = (name, text, className = "") => {
    const span = el(name === "received" ? "time" : "span", className, text);
    span.dataset.field = name;
    return span;
  };
  const trades = (alert.trade_ids || []).map((id) => `#${id}`).join(" ");
  const body = typeof alert.body === "string" ? alert.body : JSON.stringify(alert.body);
  li.append(
    field("received", clock(alert.received_ms)),
    field("status", alert.status, `decision decision-${alert.status}`),
    field("source", alert.source || "—", "source"),
    field("reason", alert.reason || (alert.status === "accepted" ? "accepted" : "—"), "reason"),
    field("trades", trades, "muted"),
    field("body", body ?? "", "body"),
  );
  return li;
}

/** Load the first page for the filters as they stand, or (`more`) the next older page. */
export async function loadAlerts(more = false) {
  const list = $("alerts");
  if (!more) { list.replaceChildren(); next = null; }
  const params = new URLSearchParams({ limit: String(PAGE) });
  for (const key of ["status", "source"]) {
    const value = $(`alerts-${key}`).value.trim();
    if (value) params.set(key, value);
  }
  if (more && next !== null) params.set("before", String(next));
  $("alerts-note").textContent = "loading…";
  const reply = await get(`/alerts?${params}`);
  if (!reply || !reply.ok) {
    $("alerts-note").textContent = !reply ? "the service did not answer"
      : reply.status === 404 ? "this service does not list alerts" : await reasonOf(reply);
    return;
  }
  const page = await reply.json();
  for (const alert of page.alerts) list.append(item(alert));
  next = page.next ?? null;
  $("alerts-more").hidden = next === null;
  $("alerts-note").textContent = list.children.length ? "" : "No alerts for these filters.";
}

export function startAlerts() {
  $("alerts-form").addEventListener("submit", (submit) => { submit.preventDefault(); loadAlerts(); });
  $("alerts-more").addEventListener("click", () => loadAlerts(true));
}
