// The feed's socket (/ws/trades): connect, reconnect with a capped, jittered backoff, and say when
// the prices on screen stopped being live.

import { $, clock } from "./util.js";
import { state } from "./state.js";

export const BACKOFF_FIRST_MS = 250;
export const BACKOFF_CAP_MS = 1500;  // so the page is live again within 2 s of the service answering

/**
 * The wait before reconnect attempt `attempt` (0 for the first): 250 ms doubling per attempt up to
 * 1.5 s, then a uniformly random point in the upper half of that ceiling, so many pages coming back
 * at once do not knock together.
 */
export function backoffDelay(attempt, random = Math.random) {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_FIRST_MS * 2 ** Math.min(Math.max(attempt, 0), 16));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

let handlers = { receive: () => {}, signedOut: () => {} };

export function onFeed(receive, signedOut) {
  handlers = { receive, signedOut };
}

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

export function connect() {
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
  socket.onmessage = (message) => {
    if (state.staleSince !== null) { state.staleSince = null; renderStale(); }
    handlers.receive(JSON.parse(message.data));
  };
  socket.onclose = async () => {
    if (state.socket !== socket) return;  // replaced on purpose
    state.socket = null;
    if (state.staleSince === null) { state.staleSince = Date.now(); renderStale(); }
    if (!opened) {
      const session = await fetch("/session").then((r) => r.json()).catch(() => null);
      if (session && !session.authenticated) return handlers.signedOut();
    }
    retry();
  };
}

function retry() {
  if (!state.signedIn) return;
  const wait = backoffDelay(state.attempt);
  state.attempt += 1;
  setConnection("reconnecting", "offline · retrying");
  state.retryTimer = setTimeout(connect, wait);
}

export function reconnectNow() {
  if (state.signedIn && !state.socket) {
    state.attempt = 0;
    connect();
  }
}

export function disconnect(text) {
  clearTimeout(state.retryTimer);
  if (state.socket) { const socket = state.socket; state.socket = null; socket.close(); }
  state.staleSince = null;
  renderStale();
  setConnection("signed-out", text);
}

/**
 * Grey LTP and P&L and say since when they are stale: since the feed dropped, or — the feed up — since
 * the last tick of a market stream the service reports down. (A stream the service calls stale, quiet
 * past STREAM_STALL_S, is shown in the summary strip; its prices are still the latest there are.)
 */
export function renderStale() {
  const stream = (state.summary && state.summary.stream) || {};
  const down = stream.state === "down";
  const stale = state.staleSince !== null || down;
  const since = state.staleSince !== null ? state.staleSince : stream.last_tick_ms || null;
  const why = state.staleSince !== null ? "offline" : "market data down";
  document.body.classList.toggle("stale", stale);
  const note = $("stale");
  note.hidden = !stale;
  note.textContent = !stale ? "" : since ? `${why}: prices stale since ${clock(since)}` : `${why}: no prices yet`;
  note.title = stale ? "LTP and P&L are greyed: they are not live" : "";
}
