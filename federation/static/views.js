// Lists and tables: calls for help, alerts, audit findings, neighborhoods, flows, applicants.

import { ago, badge, empty, h, int, money, plural, shortId } from "./dom.js";
import { go, hoodLink, hoodName, nameFlag, observerNow, relative } from "./state.js";

const ALERT_ORDER = ["danger", "warning", "info"];

/** Open alerts (summary.aid.alerts_open), the most severe first. */
export function alertList(alerts) {
  if (!alerts.length) return null;
  const rank = (a) => (ALERT_ORDER.includes(a.severity) ? ALERT_ORDER.indexOf(a.severity) : 9);
  const sorted = [...alerts].sort((a, b) => rank(a) - rank(b) || b.raised_at - a.raised_at);
  return h(
    "ul",
    { class: "items alerts" },
    sorted.map((a) =>
      h(
        "li",
        { class: `item alert ${a.severity}` },
        h(
          "div",
          { class: "item-head" },
          badge(a.severity, `${a.severity} alert`),
          h("strong", {}, `${a.kind} · area ${a.area}`),
          h(
            "span",
            { class: "muted small" },
            "from ",
            hoodLink(a.author),
            ` · ${relative(a.raised_at)}`,
          ),
        ),
        a.advice ? h("p", {}, a.advice) : null,
      ),
    ),
  );
}

/** Open calls for help (GET /api/aid `open`: most urgent first, then soonest needed). */
export function aidList(requests, { showRequester = true } = {}) {
  if (!requests.length) return empty("No open calls for help. ✓");
  return h(
    "ul",
    { class: "items" },
    requests.map((r) =>
      h(
        "li",
        { class: `item aid ${r.urgency}` },
        h(
          "div",
          { class: "item-head" },
          badge(r.urgency),
          h("strong", {}, r.category),
          h(
            "span",
            { class: "muted small" },
            showRequester ? ["from ", hoodLink(r.requester), " · "] : null,
            `area ${r.area}`,
          ),
        ),
        r.description ? h("p", {}, r.description) : null,
        h(
          "div",
          { class: "progress-row small" },
          h("progress", {
            max: r.quantity,
            value: Math.min(r.pledged, r.quantity),
            "aria-label": "pledged",
          }),
          h("span", {}, `${int(r.pledged)} pledged for ${int(r.quantity)} needed`),
          h("span", {}, `${int(r.accepted)} accepted`),
          h(
            "span",
            { class: r.needed_by < observerNow() ? "late" : "muted" },
            `needed ${relative(r.needed_by)}`,
          ),
        ),
      ),
    ),
  );
}

/** Audit findings (GET /api/audit), already most severe first. */
export function findingsList(findings, { showAuthor = true } = {}) {
  if (!findings.length) return empty("No findings: every record checks out. ✓");
  const shown = 6;
  return h(
    "ul",
    { class: "items" },
    findings.map((f) =>
      h(
        "li",
        { class: `item finding ${f.severity}` },
        h(
          "div",
          { class: "item-head" },
          badge(f.severity),
          h("strong", {}, f.title),
          showAuthor && f.author
            ? h("span", { class: "muted small" }, "by ", hoodLink(f.author))
            : null,
        ),
        h("p", {}, f.detail),
        f.evidence.length
          ? h(
              "p",
              { class: "evidence small muted" },
              "evidence: ",
              f.evidence.slice(0, shown).map((id) => h("code", { title: id }, shortId(id))),
              f.evidence.length > shown ? ` and ${int(f.evidence.length - shown)} more` : "",
            )
          : null,
      ),
    ),
  );
}

/** Events refused by code (summary.rejected), as chips. */
export function rejectedNote(rejected) {
  const codes = Object.entries(rejected || {}).filter(([, n]) => n > 0);
  if (!codes.length) return null;
  codes.sort((a, b) => b[1] - a[1]);
  return h(
    "p",
    { class: "small muted rejected" },
    "Refused by the rules: ",
    codes.map(([code, n]) => h("span", { class: "chip" }, `${code} ${int(n)}`)),
  );
}

export function membershipBadge(status) {
  return badge(`m-${status}`, status);
}

function signed(cents) {
  return h("span", { class: cents > 0 ? "pos" : cents < 0 ? "neg" : "" }, money(cents));
}

const HOOD_COLUMNS = [
  ["Neighborhood", ""],
  ["Membership", ""],
  ["Events", "num"],
  ["Last heard", "num"],
  ["Offers open", "num"],
  ["Sold", "num"],
  ["Bought", "num"],
  ["Balance", "num"],
  ["Calls for help", "num"],
];

/** GET /api/neighborhoods as a table; a row opens that neighborhood's page. */
export function hoodsTable(hoods) {
  if (!hoods.length) return empty("No neighborhood has published yet.");
  return h(
    "table",
    { class: "hoods" },
    h(
      "thead",
      {},
      h("tr", {}, HOOD_COLUMNS.map(([label, cls]) => h("th", { class: cls, scope: "col" }, label))),
    ),
    h(
      "tbody",
      {},
      hoods.map((x) =>
        h(
          "tr",
          { "data-slug": x.slug, onclick: (event) => event.target.closest("a") || go(x.slug) },
          h(
            "td",
            {},
            hoodLink(x.slug),
            h("span", { class: "muted small" }, ` ${x.slug}`),
            nameFlag(x) && " ",
            nameFlag(x),
          ),
          h("td", {}, membershipBadge(x.membership)),
          h("td", { class: "num" }, int(x.events)),
          h("td", { class: "num" }, ago(x.liveness_s)),
          h("td", { class: "num" }, int(x.offers_open)),
          h("td", { class: "num" }, `${int(x.trades_sold)} · ${money(x.volume_sold)}`),
          h("td", { class: "num" }, `${int(x.trades_bought)} · ${money(x.volume_bought)}`),
          h("td", { class: "num" }, signed(x.balance)),
          h("td", { class: "num" }, int(x.aid_requested)),
        ),
      ),
    ),
  );
}

/** A neighborhood's settled trade with each other one, largest first. */
export function hoodFlows(slug, flows) {
  if (!flows.length) return empty("No settled trade yet.");
  const rows = [...flows].sort((a, b) => b.volume - a.volume);
  const th = (label, cls = "") => h("th", { class: cls, scope: "col" }, label);
  return h(
    "table",
    { class: "flows" },
    h("thead", {}, h("tr", {}, th("Goods"), th("With"), th("Trades", "num"), th("Volume", "num"))),
    h(
      "tbody",
      {},
      rows.map((f) => {
        const sold = f.from === slug;
        return h(
          "tr",
          {},
          h("td", {}, sold ? "supplied to →" : "← bought from"),
          h("td", {}, hoodLink(sold ? f.to : f.from)),
          h("td", { class: "num" }, int(f.trades)),
          h("td", { class: "num" }, money(f.volume)),
        );
      }),
    ),
  );
}

/** Applicants and how far their consent has come (GET /api/membership). */
export function applicantsList(applicants) {
  if (!applicants.length) return null;
  return h(
    "div",
    { class: "applicants" },
    h("h3", {}, "Applying to join"),
    h(
      "ul",
      { class: "items" },
      applicants.map((a) =>
        h(
          "li",
          { class: "item" },
          h(
            "div",
            { class: "item-head" },
            membershipBadge("applicant"),
            h("strong", {}, hoodName(a.slug)),
            h(
              "span",
              { class: "muted small" },
              `${plural(a.consents.length, "consent")} of ${int(a.needed)} needed`,
              a.objections.length
                ? ` · objected to by ${a.objections.map(hoodName).join(", ")}`
                : "",
            ),
          ),
        ),
      ),
    ),
  );
}
