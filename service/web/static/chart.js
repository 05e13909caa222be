// The selected trade's price line with its entry, stop, target, trail and exit levels: hand-written
// SVG (no library), drawn in the element's own pixels so text keeps its shape at any width.

import { $, clock, get, money } from "./util.js";
import { state } from "./state.js";

const MAX_POINTS = 2000;  // points kept per trade, as many as GET /trades/{id}/prices holds
const SVG = "http://www.w3.org/2000/svg";

function svgElement(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

const FOLLOW_MS = 2000;   // how often the line of a trade stopped on its underlying is read again

/** The instrument the trade's stop watches when it is not the trade's own (an option on its underlying). */
const basisOf = (trade) => (trade && trade.spec && trade.spec.basis) || null;

/** A point for the trade's line from a row or a `prices` message (the trade's own price: not for a
 * trade whose line is its underlying's, which is read from the service instead). */
export function addPoint(trade, at) {
  if (trade.ltp === null || trade.ltp === undefined || basisOf(trade)) return;
  const points = state.series.get(trade.id) || [];
  const last = points[points.length - 1];
  const point = { t: at, ltp: trade.ltp, stop: trade.stop, target: trade.target };
  if (last && last.ltp === point.ltp && last.stop === point.stop && last.target === point.target) return;
  if (last && at < last.t) point.t = last.t;
  points.push(point);
  if (points.length > MAX_POINTS) points.splice(0, points.length - MAX_POINTS);
  state.series.set(trade.id, points);
}

/** The trade's recent prices from the service (once per trade), before the live ones the feed brought. */
export async function loadPrices(tradeId) {
  if (state.fetchedPrices.has(tradeId)) return;
  state.fetchedPrices.add(tradeId);
  const reply = await get(`/trades/${tradeId}/prices`);
  if (!reply || !reply.ok) {
    if (!reply || reply.status >= 500) state.fetchedPrices.delete(tradeId);  // try again on the next choice
    return;
  }
  const body = await reply.json();
  state.levels.set(tradeId, body.levels || {});
  const live = state.series.get(tradeId) || [];
  const firstLive = live.length ? live[0].t : Infinity;
  const earlier = (body.points || []).filter(([at]) => at < firstLive).map(([t, ltp]) => ({ t, ltp }));
  state.series.set(tradeId, [...earlier, ...live].slice(-MAX_POINTS));
  if (state.selected === tradeId) drawChart();
}

/** Read on the line of a selected open trade stopped on its underlying: the feed carries only its own price. */
async function follow() {
  const trade = state.trades.get(state.selected);
  if (!trade || !basisOf(trade) || !state.fetchedPrices.has(trade.id) || !state.socket) return;
  const points = state.series.get(trade.id) || [];
  const since = points.length ? points[points.length - 1].t : 0;
  const reply = await get(`/trades/${trade.id}/prices?since_ms=${since}`);
  if (!reply || !reply.ok) return;
  const body = await reply.json();
  state.levels.set(trade.id, body.levels || {});
  const held = state.series.get(trade.id) || [];
  const last = held.length ? held[held.length - 1].t : -Infinity;
  held.push(...(body.points || []).filter(([at]) => at > last).map(([t, ltp]) => ({ t, ltp })));
  state.series.set(trade.id, held.slice(-MAX_POINTS));
  if (state.selected === trade.id) drawChart();
}

setInterval(follow, FOLLOW_MS);

/** Forget the prices read for trades no longer held, and re-read after a reconnect. */
export function forgetPrices() {
  state.fetchedPrices.clear();
  for (const id of [...state.series.keys()]) if (!state.trades.has(id)) state.series.delete(id);
}

// Stop and target are on the basis price already; entry and exit are the trade's own unless the
// service gave them on its underlying.
function levelsOf(trade) {
  const fetched = state.levels.get(trade.id) || {};
  const own = !basisOf(trade);
  return [
    ["entry", own ? trade.entry_price ?? fetched.entry : fetched.entry],
    ["target", trade.target ?? fetched.target],
    ["trail", fetched.trail_activation],
    ["exit", own ? trade.exit_price ?? fetched.exit : fetched.exit],
  ].filter(([, value]) => value !== null && value !== undefined);
}

export function drawChart() {
  const svg = $("chart");
  const trade = state.trades.get(state.selected);
  let points = (trade && state.series.get(trade.id)) || [];
  svg.replaceChildren();
  const on = basisOf(trade) ? " · on its underlying" : "";
  $("chart-title").textContent = trade ? `${trade.tradingsymbol} · #${trade.id} · ${trade.side}${on}` : "Price";
  svg.dataset.tradeId = trade ? trade.id : "";
  svg.dataset.stop = trade && trade.stop !== null ? trade.stop : "";
  svg.dataset.target = trade && trade.target !== null ? trade.target : "";
  svg.dataset.points = points.length;
  if (!points.length) {
    svg.removeAttribute("viewBox");
    svg.append(svgElement("text", { x: "50%", y: "50%", "text-anchor": "middle", class: "empty" },
      trade ? "waiting for prices…" : "select a trade"));
    return;
  }
  const width = Math.max(svg.clientWidth, 200), height = Math.max(svg.clientHeight, 120);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const left = 8, right = 66, top = 14, bottom = 20;
  if (points.length === 1) points = [points[0], { ...points[0], t: points[0].t + 1 }];  // one price: a level
  const levels = levelsOf(trade);
  const stops = points.map((p) => p.stop).filter((v) => v !== null && v !== undefined);
  if (trade.stop !== null && trade.stop !== undefined) stops.push(trade.stop);
  const values = [...points.map((p) => p.ltp), ...stops, ...levels.map(([, v]) => v)];
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
  svg.append(svgElement("text", { x: left, y: height - 4, class: "axis" }, clock(t0)));
  svg.append(svgElement("text", { x: width - right, y: height - 4, class: "axis", "text-anchor": "end" }, clock(t1)));

  const labels = [];
  for (const [key, value] of levels) {
    svg.append(svgElement("line", { x1: left, x2: width - right, y1: y(value), y2: y(value), class: `level ${key}`,
      "data-line": key, "data-value": value }));
    labels.push({ key, value, y: y(value) });
  }
  const stopPath = stepPath(points, trade.stop, x, y, width - right);
  if (stopPath) {
    svg.append(svgElement("path", { d: stopPath, class: "stop", "data-line": "stop", "data-value": trade.stop ?? "" }));
    if (trade.stop !== null && trade.stop !== undefined) labels.push({ key: "stop", value: trade.stop, y: y(trade.stop) });
  }
  const line = points.map((p, i) => `${i ? "L" : "M"}${x(p.t)},${y(p.ltp)}`).join("");
  const shown = basisOf(trade) ? points[points.length - 1].ltp : trade.ltp;
  svg.append(svgElement("path", { d: line, class: "ltp", "data-line": "ltp", "data-value": shown ?? "" }));
  placeLabels(svg, labels, left + 4, top, height - bottom);
}

// The stop as steps through time; points read before the feed carried a stop take the first one known.
function stepPath(points, current, x, y, end) {
  const known = points.find((p) => p.stop !== null && p.stop !== undefined);
  let first = known ? known.stop : current;
  if (first === null || first === undefined) return "";
  let d = "";
  for (const p of points) {
    const v = p.stop ?? first;
    d += d ? `H${x(p.t)}V${y(v)}` : `M${x(p.t)},${y(v)}`;
    first = v;
  }
  if (current !== null && current !== undefined && current !== first) d += `H${end}V${y(current)}`;
  return d + `H${end}`;
}

// Level labels at the left, nudged apart so that close levels stay readable.
function placeLabels(svg, labels, x, top, bottom) {
  labels.sort((a, b) => a.y - b.y);
  let previous = top - 14;
  for (const label of labels) {
    label.at = Math.min(Math.max(label.y - 3, previous + 13), bottom);
    previous = label.at;
  }
  for (const label of labels) {
    const names = { trail: "trail from" };
    svg.append(svgElement("text", { x, y: label.at, class: `label label-${label.key}`, "data-label": label.key },
      `${names[label.key] || label.key} ${money(label.value)}`));
  }
}
