// The node's status page: reads GET /status every few seconds and shows it to a person.
// Every value reaches the page as a text node (never parsed as markup), and the page runs
// under the API's Content-Security-Policy: no inline script or style.

const REFRESH_MS = 5000;
const $ = (id) => document.getElementById(id);
const number = new Intl.NumberFormat();

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function setText(id, text) {
  $(id).textContent = String(text);
}

function flag(id, good, yes, no) {
  setText(id, good ? yes : no);
  $(id).className = `big ${good ? "good" : "bad"}`;
}

/** A two-column table from [key, value] rows; `empty` when there are none. */
function table(container, head, rows, empty) {
  const box = $(container);
  box.replaceChildren();
  if (rows.length === 0) {
    box.append(el("p", empty, "muted"));
    return;
  }
  const t = el("table");
  const tr = el("tr");
  for (const h of head) tr.append(el("th", h));
  t.append(el("thead"));
  t.tHead.append(tr);
  const body = el("tbody");
  for (const row of rows) {
    const r = el("tr");
    row.forEach((cell, i) => r.append(el("td", cell, i > 0 ? "num" : undefined)));
    body.append(r);
  }
  t.append(body);
  box.append(t);
}

function show(s) {
  document.title = `${s.display_name} · coopnet node`;
  setText("name", s.display_name);
  setText("meta", `${s.slug} · federation ${s.net.slice(0, 8)}… · API ${s.api_url}`);

  flag("bus", s.bus_connected, "connected", "not connected");
  setText("bus-sub", s.bus_refused || s.stream_missing || s.bus_url || "embedded nats-server");
  flag("ready", s.ready_to_sign, "yes", "not yet");
  setText("ready-sub", s.ready_to_sign ? "its own head is confirmed" : s.not_ready || "confirming its own head");
  setText("head", number.format(s.own_head));
  setText("outbox", number.format(s.outbox_depth));
  $("outbox").className = `big ${s.outbox_depth === 0 ? "good" : "warn"}`;
  setText("outbox-sub", s.publish_refused
    ? `the bus refuses: ${s.publish_refused.code} (${s.publish_refused.reason})`
    : `own events waiting for the bus; ${number.format(s.published)} published since start`);

  const rejected = Object.entries(s.rejected || {}).sort((a, b) => b[1] - a[1]);
  const total = rejected.reduce((sum, [, n]) => sum + n, 0);
  setText("rejected-total", number.format(total));
  $("rejected-total").className = `big ${total === 0 ? "good" : "warn"}`;
  table("rejected", ["reason", "events"], rejected.map(([k, n]) => [k, number.format(n)]),
    "No event has been rejected.");

  setText("stored", number.format(s.events_stored));
  const authors = Object.entries(s.authors || {}).sort();
  setText("stored-sub", `from ${authors.length} neighborhood${authors.length === 1 ? "" : "s"}; ${number.format(s.buffered)} waiting beyond a gap`);
  table("authors", ["neighborhood", "latest event"], authors.map(([a, n]) => [a, number.format(n)]),
    "None yet.");

  const doors = Object.entries(s.http_refused || {}).sort((a, b) => b[1] - a[1]);
  table("doors", ["reason", "requests"], doors.map(([k, n]) => [k, number.format(n)]),
    "Nothing refused since the node started.");
  table("forks", ["neighborhood", "seq"], (s.forks || []).map((f) => [f.author, number.format(f.seq)]),
    "None: every log is a single chain.");

  setText("updated", `updated ${new Date().toLocaleTimeString()}`);
  $("load-error").hidden = true;
}

async function refresh() {
  try {
    const response = await fetch("/status", { headers: { accept: "application/json" } });
    if (!response.ok) throw new Error(`GET /status answered ${response.status}`);
    show(await response.json());
  } catch (error) {
    $("load-error").textContent = `Cannot read this node's status: ${error.message}`;
    $("load-error").hidden = false;
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}

refresh();
