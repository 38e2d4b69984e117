// Pooled purchases (PROTOCOL.md §19), the market's "Pools" sub-page: the pools of the
// federation (open ones first), one pool's commitments, shares and settlements, and for a
// coordinator every step: open a pool, commit / change / withdraw (quantity + tolerance),
// the organizer's next step (box fill, close, cancel, delivered) and a participant's receipt.
// Amounts are integer cents on the API, shown in the federation's currency (format.js);
// quantities are whole units of the pool's unit.

import { ApiError, get, post, seg } from "../api.js";
import { action, badge, empty, field, h, newId, put, safeText, select } from "../dom.js";
import { currencyName, fromNow, int, money, plural, quantity, unitName, when, words } from "../format.js";
import { form, moneyIn, moneyInput, signed } from "./account.js";

// protocol/offers.py UNITS (PROTOCOL.md §10), the everyday ones first (as the market's forms).
const UNITS = ["piece", "dozen", "gram", "kilogram", "millilitre", "litre", "minute", "hour"];
const OPEN = new Set(["open", "box_fill"]);
const STATE_TONE = { open: "good", box_fill: "info", closing: "warn", closed: "info", delivered: "good", cancelled: "muted", unknown: "muted" };
const STATE_TEXT = { open: "open", box_fill: "box fill", closing: "closing", closed: "closed", delivered: "delivered", cancelled: "cancelled", unknown: "unknown" };
// The organizer's next steps by the pool's state (PROTOCOL.md §19), which the lifecycle
// table (protocol/pools.py) allows from the organizer's own: none once the pool is
// cancelled (by the organizer, or closed below its minimum) or delivered; delivered only
// once the shares are known (closed, not closing).
const ORGANIZER_STEPS = { open: ["box-fill", "close", "cancel"], box_fill: ["close", "cancel"], closing: ["cancel"], closed: ["deliver", "cancel"] };
const STEP_TEXT = { "box-fill": "Start box fill", close: "Close pool", cancel: "Cancel pool", deliver: "Mark delivered", receive: "Confirm received" };
const STEP_DONE = {
  "box-fill": "Box fill started: only raises that fill the open case now.",
  close: "The pool is closed: the shares follow from the commitments counted.",
  cancel: "The pool is cancelled: nothing settles.",
  deliver: "Marked delivered.",
  receive: "Receipt confirmed: our share settles.",
};
// Plain words for a resident (docs/APP.md, "Pools"): what tolerance and box fill mean.
const TOLERANCE_TEXT =
  "Tolerance is how many more units a neighborhood would also take if that completes a case. It never buys a case alone: it only tops up a case that commitments began.";
const BOX_FILL_TEXT = "Box fill: no new neighborhood may join; those in may only raise their commitments, to fill the open case before the pool closes.";
const BOX_FILL_HINT = "Start box fill: no new neighborhood may join after it; those in may only raise their commitments, to fill the open case.";
const CLOSES_IN = [
  ["3600", "1 hour"],
  ["86400", "1 day"],
  ["259200", "3 days"],
  ["604800", "1 week"],
];

/** The pools sub-page: `#/market/pools`, or one pool at `#/market/pools/<organizer>/<pool>`. */
export async function poolsPage(ctx, body, route) {
  const [, organizer, pool] = (route.arg || "").split("/");
  if (organizer && pool) return poolPage(ctx, body, organizer, pool);
  const open = h("div", { class: "list" });
  const rest = h("div", { class: "list" });
  if (ctx.coordinator) body.append(openPoolForm(ctx));
  body.append(
    h("section", { class: "stack", "aria-labelledby": "po" }, h("h2", { id: "po" }, "Open pools"), open),
    h("section", { class: "stack", "aria-labelledby": "pc" }, h("h2", { id: "pc" }, "Closed pools"), rest),
  );
  return async () => {
    const pools = await get("/pools");
    pools.sort((a, b) => (a.closes_at || 0) - (b.closes_at || 0));
    const now = pools.filter((p) => OPEN.has(p.state));
    const done = pools.filter((p) => !OPEN.has(p.state)).reverse();
    put(open, now.length ? now.map((p) => poolCard(ctx, p, false)) : empty("No open pool in the federation."));
    put(rest, done.length ? done.slice(0, 30).map((p) => poolCard(ctx, p, false)) : empty("None yet."));
  };
}

async function poolPage(ctx, body, organizer, pool) {
  const holder = h("div", { class: "stack" });
  body.append(h("p", {}, h("a", { href: "#/market/pools" }, "All pools")), holder);
  return async () => {
    let p;
    try {
      p = await get(`/pools/${seg(organizer)}/${seg(pool)}`);
    } catch (error) {
      // A pool this node does not know (a mistyped link, another federation's): the API's
      // 404 in words, and the way back; any other error is the page's.
      if (!(error instanceof ApiError) || error.status !== 404) throw error;
      put(holder, h("section", { class: "card stack", "aria-labelledby": "pn" }, h("h2", { id: "pn" }, "No such pool"), h("p", {}, `${error.message.charAt(0).toUpperCase()}${error.message.slice(1)}.`), h("p", {}, h("a", { href: "#/market/pools" }, "Back to the pools"))));
      return;
    }
    put(holder, poolCard(ctx, p, true), sharesTable(ctx, p), settlementsTable(ctx, p));
  };
}

// ---- what a pool says -------------------------------------------------------------------------

function sharesOf(p) {
  return Array.isArray(p.shares) ? p.shares : [];
}

function ourShare(ctx, p) {
  return sharesOf(p).find((s) => s.participant === ctx.slug) || null;
}

function supplierText(p) {
  if (p.supplier) return p.supplier_offer ? `${p.supplier} (offer ${p.supplier_offer})` : p.supplier;
  return `${p.supplier_name} (outside the federation)`;
}

/** How the open case fills: committed units Q, tolerance T, full cases, the open case, and
 * the cases the pool would buy if it closed now (PROTOCOL.md §19: tolerance only completes a
 * case quantities began). */
function filling(p) {
  const s = p.case_size;
  let q = 0;
  let t = 0;
  for (const share of sharesOf(p)) {
    q += share.quantity;
    t += share.tolerance;
  }
  let cases = Math.min(Math.floor((q + t) / s), Math.ceil(q / s));
  if (p.max_cases) cases = Math.min(cases, p.max_cases);
  return { q, t, full: Math.floor(q / s), inOpen: q % s, cases, units: cases * s };
}

/** "If it closed now: …", in plain words: the cases and units bought, and what of the
 * commitments would not be bought (or how much tolerance would top up the last case). */
function ifClosedNow(p, f) {
  const head = `If it closed now: ${plural(f.cases, "case")}`;
  if (f.cases < p.min_cases) return `${head}, below the minimum of ${plural(p.min_cases, "case")}: the pool would be cancelled and nothing bought`;
  const bought = `${head} (${quantity(f.units, p.unit)})`;
  if (f.units < f.q) return `${bought}; ${quantity(f.q - f.units, p.unit)} committed would not be bought`;
  if (f.units > f.q) return `${bought}; ${quantity(f.units - f.q, p.unit)} of them from tolerance`;
  return bought;
}

function fillMeter(p) {
  const f = filling(p);
  const label = `Open case of ${p.item}: ${int(f.inOpen)} of ${int(p.case_size)}`;
  return h(
    "div",
    { class: "fill" },
    h("progress", { max: p.case_size, value: f.inOpen, "aria-label": label }),
    h(
      "p",
      { class: "meta" },
      h("span", {}, f.t ? `${quantity(f.q, p.unit)} committed, and up to ${int(f.t)} more to complete a case (tolerance)` : `${quantity(f.q, p.unit)} committed`),
      h("span", {}, `${plural(f.full, "full case")}, open case ${int(f.inOpen)} of ${int(p.case_size)}`),
      h("span", {}, ifClosedNow(p, f)),
    ),
    p.state === "box_fill" ? h("p", { class: "hint" }, BOX_FILL_TEXT) : null,
    h("details", { class: "explain" }, h("summary", {}, "What is tolerance?"), h("p", { class: "hint" }, TOLERANCE_TEXT)),
  );
}

function poolCard(ctx, p, detail) {
  const ours = p.organizer === ctx.slug;
  const mine = ourShare(ctx, p);
  const title = `${p.item} from ${p.organizer}`;
  const casePrice = p.case_size * p.unit_price;
  const card = h(
    "article",
    { class: "card", "aria-label": `Pool: ${title}`, "data-testid": `pool-${p.organizer}-${p.pool}` },
    h(
      "div",
      { class: "card-head" },
      h(detail ? "h2" : "h3", {}, detail ? title : h("a", { href: `#/market/pools/${seg(p.organizer)}/${seg(p.pool)}`, "aria-label": `Details of the pool: ${title}` }, title)),
      h("div", { class: "badges" }, badge(STATE_TONE[p.state] || "muted", STATE_TEXT[p.state] || words(p.state)), ours ? badge("accent", "ours") : null, mine && !ours && mine.quantity > 0 ? badge("info", "we take part") : null),
    ),
    h("p", { class: "description" }, `Cases of ${quantity(p.case_size, p.unit)} at ${money(p.unit_price)} per ${unitName(p.unit)}: ${money(casePrice)} a case`),
    h(
      "p",
      { class: "meta" },
      h("span", {}, `Supplier: ${supplierText(p)}`),
      p.single_unit_price ? h("span", {}, `${money(p.single_unit_price)} per ${unitName(p.unit)} bought alone`) : null,
      h("span", {}, `Minimum ${plural(p.min_cases, "case")}${p.max_cases ? `, at most ${int(p.max_cases)}` : ""}`),
      OPEN.has(p.state) ? h("span", {}, `Closes ${when(p.closes_at)} (${fromNow(p.closes_at)})`) : null,
      !OPEN.has(p.state) && p.cases ? h("span", {}, `Bought ${plural(p.cases, "case")}`) : null,
    ),
    OPEN.has(p.state) ? fillMeter(p) : null,
    mine ? h("p", { class: "meta" }, h("span", {}, ourLine(p, mine))) : null,
  );
  if (!ctx.coordinator) return card;
  const buttons = h("div", { class: "actions" });
  const path = (step) => `/pools/${seg(p.organizer)}/${seg(p.pool)}/${step}`;
  if (OPEN.has(p.state)) {
    const has = mine && mine.quantity + mine.tolerance > 0;
    const opener = h(
      "button",
      { type: "button", class: ours ? "secondary" : "primary", "aria-label": `${has ? "Change our commitment" : "Commit"} to the pool: ${title}`, onclick: () => commitForm(ctx, card, opener, p, mine) },
      has ? "Change commitment" : "Commit",
    );
    buttons.append(opener);
    if (has && p.state === "open") {
      buttons.append(
        action(
          "Withdraw",
          async () => {
            if (!confirm(safeText(`Withdraw our commitment to the pool of ${p.item}?`))) return;
            await signed(ctx, () => post(path("commit"), { quantity: 0, tolerance: 0 }), "Our commitment is withdrawn.");
          },
          { cls: "danger", label: `Withdraw our commitment to the pool: ${title}` },
        ),
      );
    }
  }
  if (ours) {
    const steps = ORGANIZER_STEPS[p.state] || [];
    if (steps.includes("box-fill")) card.append(h("p", { class: "hint" }, BOX_FILL_HINT));
    for (const step of steps) {
      buttons.append(
        action(
          STEP_TEXT[step],
          async () => {
            if (step === "cancel" && !confirm(safeText(`Cancel the pool of ${p.item}? Nothing will settle.`))) return;
            await signed(ctx, () => post(path(step)), STEP_DONE[step]);
          },
          { cls: step === "cancel" ? "danger" : "", label: `${STEP_TEXT[step]}: ${title}` },
        ),
      );
    }
  }
  if (p.state === "delivered" && mine && mine.share > 0 && !mine.received) {
    buttons.append(action(STEP_TEXT.receive, () => signed(ctx, () => post(path("receive")), STEP_DONE.receive), { cls: "primary", label: `Confirm received: ${title}` }));
  }
  if (buttons.childElementCount) card.append(buttons);
  return card;
}

function ourLine(p, mine) {
  const wanted = `${quantity(mine.quantity, p.unit)} + ${int(mine.tolerance)} tolerance`;
  if (OPEN.has(p.state) || p.state === "closing") return `Our commitment: ${wanted}`;
  if (p.state === "cancelled") return `We had committed ${wanted}; nothing settles`;
  const share = `Our share: ${quantity(mine.share, p.unit)}, ${money(mine.share * p.unit_price)}`;
  return mine.received ? `${share} (received)` : share;
}

// ---- commit ---------------------------------------------------------------------------------

function commitForm(ctx, card, opener, p, mine) {
  if (card.querySelector("form.inline")) {
    card.querySelector("form.inline input")?.focus();
    return;
  }
  const qty = h("input", { name: "quantity", type: "number", inputmode: "numeric", min: 0, required: true, value: mine ? mine.quantity : p.case_size });
  const tol = h("input", { name: "tolerance", type: "number", inputmode: "numeric", min: 0, required: true, value: mine ? mine.tolerance : 0 });
  const total = h("p", { class: "hint", "aria-live": "polite" });
  const update = () => {
    const n = Number(qty.value) + Number(tol.value);
    total.textContent = Number.isInteger(n) && n >= 0 ? `Up to ${money(n * p.unit_price)} held until we confirm receipt (less if the pool buys us less)` : "";
  };
  qty.addEventListener("input", update);
  tol.addEventListener("input", update);
  update();
  const close = () => {
    f.remove();
    opener.focus();
    ctx.refresh();
  };
  const f = form(
    ctx,
    { class: "inline stack", "aria-label": `Commit to the pool of ${p.item}` },
    [
      h(
        "div",
        { class: "row" },
        field(`Quantity (${unitName(p.unit, 2)})`, qty),
        field(`Tolerance (${unitName(p.unit, 2)})`, tol, "How many more we would also take, only to complete a case (never a case alone)."),
      ),
      total,
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Send commitment"), h("button", { type: "button", class: "secondary", onclick: close }, "Cancel")),
    ],
    async (data) => {
      await post(`/pools/${seg(p.organizer)}/${seg(p.pool)}/commit`, { quantity: Number(data.get("quantity")), tolerance: Number(data.get("tolerance")) });
      ctx.fail(null);
      ctx.say(`Committed to the pool of ${p.item}.`);
      close();
    },
  );
  card.append(f);
  qty.focus();
}

// ---- open a pool ----------------------------------------------------------------------------

function openPoolForm(ctx) {
  let poolId = newId("p");
  const supplierKind = select("supplier_kind", [["member", "A member"], ["outside", "Not a member"]], "member");
  const f = form(
    ctx,
    { class: "stack", "aria-label": "Open a pool" },
    [
      field("Item", h("input", { name: "item", required: true, maxlength: 80 })),
      h("div", { class: "row" }, field("Case size (units a case)", h("input", { name: "case_size", type: "number", inputmode: "numeric", min: 1, required: true, value: 10 })), field("Unit", select("unit", UNITS.map((u) => [u, unitName(u)]), "piece"))),
      h("div", { class: "row" }, field(`Price per unit (${currencyName()})`, moneyInput("unit_price", null, true)), field(`Price of one unit alone (${currencyName()}, optional)`, moneyInput("single_unit_price", null, false))),
      h("div", { class: "row" }, field("Minimum cases", h("input", { name: "min_cases", type: "number", inputmode: "numeric", min: 1, required: true, value: 1 })), field("Maximum cases (0: no cap)", h("input", { name: "max_cases", type: "number", inputmode: "numeric", min: 0, required: true, value: 0 }))),
      h("div", { class: "row" }, field("Supplier is", supplierKind), field("Supplier (neighborhood or name)", h("input", { name: "supplier", required: true, maxlength: 80 }))),
      h("div", { class: "row" }, field("Supplier's offer (optional)", h("input", { name: "supplier_offer", maxlength: 40 })), field("Closes in", select("closes_in_s", CLOSES_IN, "86400"))),
      h("button", { type: "submit", class: "primary" }, "Open pool"),
    ],
    async (data, el) => {
      const member = data.get("supplier_kind") === "member";
      const supplier = data.get("supplier").trim();
      const body = {
        pool: poolId,
        item: data.get("item").trim(),
        unit: data.get("unit"),
        case_size: Number(data.get("case_size")),
        unit_price: moneyIn(data, "unit_price", "Price per unit"),
        single_unit_price: moneyIn(data, "single_unit_price", "Price of one unit alone") || 0,
        min_cases: Number(data.get("min_cases")),
        max_cases: Number(data.get("max_cases") || 0),
        closes_in_s: Number(data.get("closes_in_s")),
      };
      if (member) {
        body.supplier = supplier;
        body.supplier_offer = data.get("supplier_offer").trim();
      } else {
        body.supplier_name = supplier;
      }
      await post("/pools", body);
      poolId = newId("p");
      el.reset();
      ctx.fail(null);
      ctx.say("The pool is open to the federation.");
      ctx.refresh();
    },
  );
  return h("details", { class: "card more" }, h("summary", {}, "Open a pool"), f);
}

// ---- one pool's tables ------------------------------------------------------------------------

function sharesTable(ctx, p) {
  const shares = sharesOf(p);
  const allocated = !OPEN.has(p.state) && p.state !== "closing" && p.state !== "unknown";
  const head = ["Neighborhood", "Committed", ...(allocated ? ["Share", "Received"] : [])];
  return h(
    "section",
    { class: "card", "aria-labelledby": "ps" },
    h("h2", { id: "ps" }, allocated ? "Shares" : "Commitments"),
    h("p", { class: "hint" }, `Committed: quantity + tolerance, in ${unitName(p.unit, 2)}.`),
    shares.length
      ? tableWrap(
          "Table of shares",
          "cards",
          h("thead", {}, h("tr", {}, head.map((t, i) => h("th", { scope: "col", class: i && i < 3 ? "num" : null }, t)))),
          h(
            "tbody",
            {},
            shares.map((s) =>
              h(
                "tr",
                {},
                h("td", {}, s.participant === ctx.slug ? `${s.participant} (us)` : s.participant),
                h("td", { class: "num", "data-label": head[1] }, `${int(s.quantity)} + ${int(s.tolerance)}`),
                allocated ? h("td", { class: "num", "data-label": head[2] }, int(s.share)) : null,
                allocated ? h("td", { "data-label": head[3] }, s.received ? "yes" : "not yet") : null,
              ),
            ),
          ),
        )
      : empty("No commitment yet."),
  );
}

/** A table in a box that scrolls sideways if it must, reachable and named for the keyboard;
 * `cls` "cards": a card per row on a phone (app.css), its cells named by `data-label`. */
function tableWrap(label, cls, ...parts) {
  return h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": label }, h("table", { class: cls }, ...parts));
}

function settlementsTable(ctx, p) {
  const rows = Array.isArray(p.settlements) ? p.settlements : [];
  return h(
    "section",
    { class: "card", "aria-labelledby": "pt" },
    h("h2", { id: "pt" }, "Settlements"),
    rows.length
      ? tableWrap(
          "Table of settlements",
          null,
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Payer"), h("th", { scope: "col" }, "Payee"), h("th", { scope: "col", class: "num" }, "Amount"))),
          h(
            "tbody",
            {},
            rows.map((r) => h("tr", {}, h("td", {}, r.payer === ctx.slug ? `${r.payer} (us)` : r.payer), h("td", {}, r.payee === ctx.slug ? `${r.payee} (us)` : r.payee), h("td", { class: "num" }, money(r.amount)))),
          ),
        )
      : empty(p.state === "delivered" ? "Nothing settled yet." : "Nothing settles before delivery."),
  );
}
