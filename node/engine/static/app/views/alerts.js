// Crisis alerts across the federation: open ones first, the most severe first. A
// coordinator raises one for the neighborhood and resolves the neighborhood's own.

import { get, post, seg } from "../api.js";
import { action, badge, choices, empty, field, h, newId, put } from "../dom.js";
import { fromNow, when } from "../format.js";
import { form } from "./account.js";

const KINDS = [
  ["storm", "Storm"],
  ["outage", "Power outage"],
  ["flood", "Flood"],
  ["heat", "Heat"],
  ["cold", "Cold"],
  ["fire", "Fire"],
  ["water", "Water"],
  ["other", "Other"],
];
const KIND_NAME = Object.fromEntries(KINDS);
const SEVERITIES = [
  ["danger", "Danger"],
  ["warning", "Warning"],
  ["info", "Info"],
];
const TONE = { danger: "bad", warning: "warn", info: "info" };

export async function mount(ctx, _route, root) {
  const list = h("div", { class: "list" });
  const showResolved = h("input", { type: "checkbox", name: "resolved" });
  root.append(h("div", { class: "page-head" }, h("h1", {}, "Alerts"), h("p", { class: "muted" }, "Storms, outages, floods: what neighborhoods of the federation warn about.")));
  if (ctx.coordinator) root.append(raiseForm(ctx));
  root.append(
    h("div", { class: "section-head" }, h("h2", {}, "Alerts in the federation"), h("label", { class: "inline-check" }, showResolved, " Show resolved")),
    list,
  );
  const refresh = async () => {
    const alerts = await get(`/alerts${showResolved.checked ? "?all=true" : ""}`);
    put(list, alerts.length ? alerts.map((a) => alertCard(ctx, a)) : empty("No open alerts."));
  };
  showResolved.addEventListener("change", () => refresh().catch(ctx.fail));
  await refresh();
  return refresh;
}

function alertCard(ctx, a) {
  const resolved = a.resolved_at !== null && a.resolved_at !== undefined;
  const title = `${KIND_NAME[a.kind] || a.kind} · ${a.author}`;
  const card = h(
    "article",
    { class: `card alert-card ${a.severity}${resolved ? " resolved" : ""}`, "aria-label": `Alert: ${title}, ${a.severity}` },
    h("div", { class: "card-head" }, h("h3", {}, title), h("div", { class: "badges" }, badge(TONE[a.severity] || "muted", a.severity), resolved ? badge("muted", "resolved") : badge("good", "open"))),
    a.advice ? h("p", { class: "description" }, a.advice) : null,
    h(
      "p",
      { class: "meta" },
      h("span", {}, `Raised ${when(a.raised_at)} (${fromNow(a.raised_at)})`),
      a.area ? h("span", {}, `Area ${a.area}`) : null,
      resolved ? h("span", {}, `Resolved ${when(a.resolved_at)}`) : null,
    ),
  );
  if (!resolved && ctx.coordinator && a.author === ctx.slug) {
    card.append(
      h(
        "div",
        { class: "actions" },
        action(
          "Resolve",
          async () => {
            try {
              await post(`/alerts/${seg(a.alert)}/resolve`);
              ctx.fail(null);
              ctx.say("The alert is resolved.");
              ctx.refresh();
            } catch (error) {
              ctx.fail(error);
            }
          },
          { label: `Resolve the ${KIND_NAME[a.kind] || a.kind} alert` },
        ),
      ),
    );
  }
  return card;
}

function raiseForm(ctx) {
  let alertId = newId("a");
  const advice = h("textarea", { name: "advice", maxlength: 1000, rows: 3 });
  const kind = h("select", { name: "kind" }, KINDS.map(([v, t]) => h("option", { value: v }, t)));
  const f = form(
    ctx,
    { class: "stack" },
    [
      field("Kind", kind),
      choices("Severity", "severity", SEVERITIES, "warning"),
      field("Advice (optional)", advice, "What people should do. Sent to the whole federation."),
      h("button", { type: "submit", class: "primary" }, "Raise alert"),
    ],
    async (data, el) => {
      await post("/alerts", { alert: alertId, kind: data.get("kind"), severity: data.get("severity"), advice: advice.value.trim() });
      alertId = newId("a");
      el.reset();
      ctx.fail(null);
      ctx.say("The alert is raised for the federation.");
      ctx.refresh();
    },
  );
  return h("details", { class: "card more" }, h("summary", {}, "Raise an alert"), f);
}
