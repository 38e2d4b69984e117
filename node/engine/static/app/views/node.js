// The node itself (coordinators): bus, readiness, head, outbox, rejections, followed
// neighborhoods, refusals at the API's doors and forks, from `GET /status`.

import { get } from "../api.js";
import { empty, h, put } from "../dom.js";
import { int } from "../format.js";

function figure(title, value, tone, sub, id) {
  return h("article", { class: "card figure" }, h("h2", {}, title), h("p", { class: `big ${tone || ""}`, "data-testid": id }, value), sub ? h("p", { class: "muted small" }, sub) : null);
}

function table(head, rows, none) {
  if (!rows.length) return empty(none);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, head.map((x, i) => h("th", { scope: "col", class: i ? "num" : null }, x)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => h("td", { class: i ? "num" : null }, c))))),
    ),
  );
}

export async function mount(_ctx, _route, root) {
  const meta = h("p", { class: "muted small" });
  const figures = h("section", { class: "figures", "aria-label": "This node at a glance" });
  const panels = h("div", { class: "grid" });
  root.append(h("div", { class: "page-head" }, h("h1", {}, "Node"), meta), figures, panels, h("p", { class: "small" }, h("a", { href: "/schema" }, "API reference"), " · ", h("a", { href: "/status" }, "status (JSON)")));
  const refresh = async () => {
    const s = await get("/status");
    meta.textContent = `${s.display_name} (${s.slug}) · federation ${s.net.slice(0, 8)}… · API ${s.api_url}`;
    const rejected = Object.entries(s.rejected || {}).sort((a, b) => b[1] - a[1]);
    const total = rejected.reduce((sum, [, n]) => sum + n, 0);
    const authors = Object.entries(s.authors || {}).sort();
    put(
      figures,
      figure("Bus", s.bus_connected ? "connected" : "not connected", s.bus_connected ? "good" : "bad", s.bus_refused || s.stream_missing || s.bus_url || "embedded nats-server", "bus"),
      figure("Ready to sign", s.ready_to_sign ? "yes" : "not yet", s.ready_to_sign ? "good" : "bad", s.ready_to_sign ? "its own head is confirmed" : s.not_ready || "confirming its own head", "ready"),
      figure("Own head", int(s.own_head), "", "events this neighborhood has signed", "head"),
      figure(
        "Outbox",
        int(s.outbox_depth),
        s.outbox_depth === 0 ? "good" : "warn",
        s.publish_refused ? `the bus refuses: ${s.publish_refused.code} (${s.publish_refused.reason})` : `waiting for the bus; ${int(s.published)} published since start`,
        "outbox",
      ),
      figure("Rejections", int(total), total === 0 ? "good" : "warn", "events from others refused", "rejected-total"),
      figure("Events stored", int(s.events_stored), "", `from ${authors.length} neighborhoods; ${int(s.buffered)} waiting beyond a gap`, "stored"),
    );
    const doors = Object.entries(s.http_refused || {}).sort((a, b) => b[1] - a[1]);
    put(
      panels,
      h("section", { class: "card", "aria-labelledby": "rej-t" }, h("h2", { id: "rej-t" }, "Rejected events, by reason"), table(["reason", "events"], rejected.map(([k, n]) => [k, int(n)]), "No event has been rejected.")),
      h("section", { class: "card", "aria-labelledby": "auth-t" }, h("h2", { id: "auth-t" }, "Neighborhoods followed"), table(["neighborhood", "latest event"], authors.map(([a, n]) => [a, int(n)]), "None yet.")),
      h("section", { class: "card", "aria-labelledby": "doors-t" }, h("h2", { id: "doors-t" }, "Refused at the API's doors"), table(["reason", "requests"], doors.map(([k, n]) => [k, int(n)]), "Nothing refused since the node started.")),
      h("section", { class: "card", "aria-labelledby": "forks-t" }, h("h2", { id: "forks-t" }, "Forks detected"), table(["neighborhood", "seq"], (s.forks || []).map((f) => [f.author, int(f.seq)]), "None: every log is a single chain.")),
    );
  };
  await refresh();
  return refresh;
}
