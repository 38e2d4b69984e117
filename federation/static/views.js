// Lists and tables: calls for help, alerts, audit findings, neighborhoods, flows, goods,
// the open market, pooled purchases, hours between neighborhoods, applicants.

import { badge, empty, h, hours, int, money, plural, price, quantity, shortId } from "./dom.js";
import { go, hoodLink, hoodName, nameFlag, observerNow, when } from "./state.js";

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
            " · ",
            when(a.raised_at),
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
            "needed ",
            when(r.needed_by),
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

/**
 * A table that becomes a list of cards on a phone (style.css `table.stacked`): each cell
 * carries its column's name. `columns`: [label, class]; `rows`: {attrs, cells}.
 */
function stackedTable(cls, columns, rows) {
  return h(
    "table",
    { class: `stacked ${cls}` },
    h(
      "thead",
      {},
      h("tr", {}, columns.map(([label, c]) => h("th", { class: c, scope: "col" }, label))),
    ),
    h(
      "tbody",
      {},
      rows.map(({ attrs = {}, cells }) =>
        h(
          "tr",
          attrs,
          cells.map((cell, i) =>
            h("td", { class: columns[i][1], "data-label": columns[i][0] }, cell),
          ),
        ),
      ),
    ),
  );
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
  return stackedTable(
    "hoods",
    HOOD_COLUMNS,
    hoods.map((x) => ({
      attrs: { "data-slug": x.slug, onclick: (event) => event.target.closest("a") || go(x.slug) },
      cells: [
        [
          hoodLink(x.slug),
          h("span", { class: "muted small" }, ` ${x.slug}`),
          nameFlag(x) && " ",
          nameFlag(x),
        ],
        membershipBadge(x.membership),
        int(x.events),
        when(x.last_event_at),
        int(x.offers_open),
        [money(x.volume_sold), h("span", { class: "cell-sub" }, plural(x.trades_sold, "trade"))],
        [
          money(x.volume_bought),
          h("span", { class: "cell-sub" }, plural(x.trades_bought, "trade")),
        ],
        signed(x.balance),
        int(x.aid_requested),
      ],
    })),
  );
}

/** What moved, in words: "eggs: 8 pieces · kale: 2 pieces". */
function goodsText(goods) {
  if (!goods.length) return "–";
  return goods.map((g) => `${g.item}: ${quantity(g.quantity, g.unit)}`).join(" · ");
}

/** A neighborhood's settled trade with each other one, largest first, with the goods. */
export function hoodFlows(slug, flows, goods = []) {
  if (!flows.length) return empty("No settled trade yet.");
  const rows = [...flows].sort((a, b) => b.volume - a.volume);
  const columns = [["", ""], ["With", ""], ["Goods", "goods"], ["Trades", "num"], ["Value", "num"]];
  return stackedTable(
    "flows",
    columns,
    rows.map((f) => {
      const sold = f.from === slug;
      const moved = goods.filter((g) => g.from === f.from && g.to === f.to);
      return {
        attrs: { "data-from": f.from, "data-to": f.to },
        cells: [
          sold ? "sold to" : "bought from",
          hoodLink(sold ? f.to : f.from),
          goodsText(moved),
          int(f.trades),
          money(f.volume),
        ],
      };
    }),
  );
}

/** GET /api/goods: what settled trade moved between neighborhoods, largest value first. */
export function goodsTable(goods) {
  if (!goods.length) return empty("No goods have moved yet: no trade settled.");
  const columns = [
    ["Item", ""],
    ["Quantity", "num"],
    ["From", ""],
    ["To", ""],
    ["Trades", "num"],
    ["Value", "num"],
  ];
  return stackedTable(
    "goods",
    columns,
    goods.map((g) => ({
      attrs: { "data-from": g.from, "data-to": g.to },
      cells: [
        h("strong", {}, g.item),
        quantity(g.quantity, g.unit),
        hoodLink(g.from),
        hoodLink(g.to),
        int(g.trades),
        money(g.volume),
      ],
    })),
  );
}

function more(shown, total, what) {
  return total > shown
    ? h("p", { class: "muted small" }, `Showing ${int(shown)} of ${plural(total, what)}.`)
    : null;
}

/** GET /api/market `offers`: what co-ops offer now, with what is left of it. */
export function offersTable(market) {
  if (!market || !market.offers.length) return empty("No open offers.");
  const columns = [
    ["Item", ""],
    ["Left", "num"],
    ["Price", "num"],
    ["Seller", ""],
    ["Until", ""],
  ];
  return [
    stackedTable(
      "offers",
      columns,
      market.offers.map((o) => ({
        attrs: { "data-seller": o.seller, "data-offer": o.offer },
        cells: [
          h("strong", {}, o.item),
          quantity(o.left, o.unit),
          price(o.unit_price, o.unit),
          hoodLink(o.seller),
          when(o.until),
        ],
      })),
    ),
    more(market.offers.length, market.offers_total, "open offer"),
  ];
}

/** GET /api/market `needs`: what co-ops want to source inside the federation. */
export function needsTable(market) {
  if (!market || !market.needs.length) return empty("No open needs.");
  const columns = [
    ["Item", ""],
    ["Wanted", "num"],
    ["Up to", "num"],
    ["Buyer", ""],
    ["Needed by", ""],
  ];
  return [
    stackedTable(
      "needs",
      columns,
      market.needs.map((n) => ({
        attrs: { "data-buyer": n.buyer, "data-need": n.need },
        cells: [
          h("strong", {}, n.item),
          quantity(n.quantity, n.unit),
          n.max_unit_price === null ? "any price" : price(n.max_unit_price, n.unit),
          hoodLink(n.buyer),
          when(n.until),
        ],
      })),
    ),
    more(market.needs.length, market.needs_total, "open need"),
  ];
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

// How each pool state reads (PROTOCOL.md §19), and its badge's tone.
const POOL_STATES = {
  unknown: ["not opened yet", "info"],
  open: ["open", "normal"],
  box_fill: ["box fill", "normal"],
  closing: ["closing", "normal"],
  closed: ["closed", "low"],
  delivered: ["delivered", "low"],
  cancelled: ["cancelled", "warning"],
};

function poolBadge(state) {
  const [text, tone] = POOL_STATES[state] || [state, "info"];
  return h("span", { class: `badge pool-state ${tone}`, "data-state": state }, text);
}

/** Who supplies a pool: a member (a link to its page) or a business outside. */
function supplierOf(p) {
  return p.supplier ? hoodLink(p.supplier) : h("span", {}, p.supplier_name || "–");
}

/** GET /api/pools `pools`: each pooled purchase, newest first, with what it bought and
 * what it saved against the supplier's single-unit price. */
export function poolsTable(data) {
  if (!data || !data.pools.length) return empty("No pooled purchase yet.");
  const columns = [
    ["Item", ""],
    ["Organizer", ""],
    ["Supplier", ""],
    ["State", ""],
    ["Cases", "num"],
    ["Price", "num"],
    ["Saved vs. declared single price", "num"],
  ];
  return [
    stackedTable(
      "pools",
      columns,
      data.pools.map((p) => ({
        attrs: { "data-organizer": p.organizer, "data-pool": p.pool, "data-state": p.state },
        cells: [
          [
            h("strong", {}, p.item),
            h("span", { class: "cell-sub" }, `cases of ${quantity(p.case_size, p.unit)}`),
          ],
          hoodLink(p.organizer),
          supplierOf(p),
          [
            poolBadge(p.state),
            h("span", { class: "cell-sub" }, plural(p.participants, "co-op")),
          ],
          p.cases ? int(p.cases) : `${quantity(p.committed, p.unit)} committed`,
          price(p.unit_price, p.unit),
          p.state === "delivered" && p.single_unit_price ? money(p.saved) : "–",
        ],
      })),
    ),
    more(data.pools.length, data.total, "pool"),
  ];
}

/** GET /api/hours `neighborhoods`: hours given and received per neighborhood, as hours,
 *  each with the transfers behind it (`transfers_given`, `transfers_received`): a transfer
 *  is given by one neighborhood and received by another, so each column's transfers add up
 *  to the federation's count ("… in 3 transfers"), never twice it. */
export function hoursTable(rows) {
  if (!rows || !rows.length) return empty("No hours have moved between neighborhoods yet.");
  const columns = [
    ["Neighborhood", ""],
    ["Hours given", "num"],
    ["Hours received", "num"],
    ["Balance", "num"],
  ];
  const moved = (quarters, count) => [hours(quarters), h("span", { class: "cell-sub" }, plural(count, "transfer"))];
  return stackedTable(
    "hours",
    columns,
    rows.map((r) => ({
      attrs: { "data-slug": r.slug },
      cells: [
        hoodLink(r.slug),
        moved(r.given, r.transfers_given),
        moved(r.received, r.transfers_received),
        h("span", { class: r.balance > 0 ? "pos" : r.balance < 0 ? "neg" : "" }, hours(r.balance)),
      ],
    })),
  );
}
