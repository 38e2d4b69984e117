// The federation's market, as this neighborhood sees it: offers (with what remains),
// needs and their matches, pooled purchases (views/pools.js), trades (the ones waiting for
// our answer first), the balance and a statement of settled trades. Coordinators sign: post,
// propose, answer; residents read.
// Amounts are integer cents on the API, shown in the currency of GET /app/info (its symbol or
// name, its minor_units decimals: format.js).

import { get, post, seg } from "../api.js";
import { action, badge, empty, field, h, newId, put, safeText, select } from "../dom.js";
import { amount, currencyName, currencySymbol, fromNow, int, money, parseMoney, quantity, unitName, when, words } from "../format.js";
import { form, moneyIn, moneyInput, signed } from "./account.js";
import { poolsPage } from "./pools.js";

const SUBS = [
  ["offers", "Offers"],
  ["needs", "Needs"],
  ["pools", "Pools"],
  ["trades", "Trades"],
  ["balance", "Balance"],
];
const CATEGORIES = ["produce", "bakery", "dairy-eggs", "prepared-food", "household-goods", "repair", "transport", "care", "skills", "other"];
// protocol/offers.py UNITS (PROTOCOL.md §10), the everyday ones first.
const UNITS = ["piece", "dozen", "gram", "kilogram", "millilitre", "litre", "minute", "hour"];
const DELIVERY = [["pickup", "Pickup"], ["delivery", "Delivery"], ["either", "Either"]];
const STATE_TONE = { proposed: "warn", accepted: "info", shipped: "info", settled: "good", declined: "muted", cancelled: "muted", expired: "muted", disputed: "bad", cancel_requested: "warn" };
const OPEN_TRADE = new Set(["proposed", "accepted", "shipped", "cancel_requested"]);

export async function mount(ctx, route, root) {
  const sub = SUBS.some(([s]) => s === route.sub) ? route.sub : "offers";
  const waiting = h("span", { class: "count", hidden: true });
  const body = h("div", { class: "stack" });
  root.append(
    h("h1", {}, "Market"),
    h(
      "nav",
      { "aria-label": "Market" },
      h(
        "ul",
        { class: "subtabs" },
        SUBS.map(([s, label]) => h("li", {}, h("a", { href: `#/market/${s}`, "aria-current": s === sub ? "page" : null }, label, s === "trades" ? waiting : null))),
      ),
    ),
    body,
  );
  const page = { offers: offersPage, needs: needsPage, pools: poolsPage, trades: tradesPage, balance: balancePage }[sub];
  const refresh = await page(ctx, body, route);
  const all = async () => {
    await refresh();
    const trades = await get("/trades");
    const n = trades.filter((t) => yourMove(ctx, t).length).length;
    waiting.hidden = n === 0;
    waiting.textContent = String(n);
    waiting.setAttribute("aria-label", `${n} waiting for your answer`);
  };
  await all();
  return all;
}

// ---- helpers ----------------------------------------------------------------------------------

function inlineForm(ctx, card, opener, label, children, submit, onSend) {
  if (card.querySelector("form.inline")) {
    card.querySelector("form.inline input, form.inline textarea")?.focus();
    return;
  }
  const close = () => {
    f.remove();
    opener.focus();
    ctx.refresh();
  };
  const f = form(
    ctx,
    { class: "inline stack", "aria-label": label },
    [...children, h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, submit), h("button", { type: "button", class: "secondary", onclick: close }, "Cancel"))],
    async (data) => {
      await onSend(data);
      close();
    },
  );
  card.append(f);
  f.querySelector("input, textarea, select")?.focus();
}

// ---- offers -----------------------------------------------------------------------------------

async function offersPage(ctx, body) {
  const list = h("div", { class: "grid" });
  if (ctx.coordinator) body.append(postOfferForm(ctx));
  body.append(h("h2", {}, "Offers in the federation"), list);
  return async () => {
    const offers = await get("/offers");
    offers.sort((a, b) => (a.author === ctx.slug) - (b.author === ctx.slug) || a.item.localeCompare(b.item));
    put(list, offers.length ? offers.map((o) => offerCard(ctx, o)) : empty("No open offers."));
  };
}

function offerCard(ctx, o) {
  const ours = o.author === ctx.slug;
  const card = h(
    "article",
    { class: "card", "aria-label": `Offer: ${o.item} from ${o.author}` },
    h("div", { class: "card-head" }, h("h3", {}, o.item), h("div", { class: "badges" }, badge("muted", words(o.category)), ours ? badge("accent", "ours") : null)),
    h("p", { class: "description" }, `${money(o.unit_price)} per ${unitName(o.unit)}`),
    h(
      "p",
      { class: "meta" },
      h("span", {}, `From ${o.author}`),
      h("span", {}, `${quantity(o.remaining, o.unit)} left of ${quantity(o.quantity, o.unit)}`),
      o.min_order > 1 ? h("span", {}, `Minimum ${quantity(o.min_order, o.unit)}`) : null,
      h("span", {}, `${words(o.delivery)} · area ${o.area}`),
      h("span", {}, `Until ${when(o.available_until)}`),
    ),
  );
  if (!ctx.coordinator) return card;
  const buttons = h("div", { class: "actions" });
  if (!ours) {
    const opener = h("button", { type: "button", class: "primary", "aria-label": `Propose a trade for ${o.item} from ${o.author}`, onclick: () => proposeForm(ctx, card, opener, o) }, "Propose a trade");
    buttons.append(opener);
  } else {
    buttons.append(
      action(
        "Withdraw offer",
        async () => {
          if (!confirm(safeText(`Withdraw the offer of ${o.item}?`))) return;
          await signed(ctx, () => post(`/offers/${seg(o.offer)}/withdraw`), "The offer is withdrawn.");
        },
        { cls: "danger", label: `Withdraw the offer of ${o.item}` },
      ),
    );
  }
  card.append(buttons);
  return card;
}

function proposeForm(ctx, card, opener, o) {
  const tradeId = newId("t");
  const qty = h("input", { name: "quantity", type: "number", inputmode: "numeric", min: o.min_order || 1, max: o.remaining, required: true, value: o.min_order || 1 });
  const price = moneyInput("unit_price", o.unit_price);
  const expires = select("expires", [["3600", "1 hour"], ["86400", "1 day"], ["259200", "3 days"]], "86400");
  const total = h("p", { class: "hint", "aria-live": "polite" });
  const update = () => {
    const p = parseMoney(price.value);
    const n = Number(qty.value);
    total.textContent = p !== null && n > 0 ? `Total ${money(p * n)}` : "";
  };
  qty.addEventListener("input", update);
  price.addEventListener("input", update);
  update();
  inlineForm(
    ctx,
    card,
    opener,
    `Propose a trade for ${o.item}`,
    [field(`Quantity (${unitName(o.unit, 2)}, ${int(o.remaining)} left)`, qty), field(`Price per ${unitName(o.unit)} (${currencyName()})`, price), total, field("The proposal expires after", expires)],
    "Send proposal",
    async (data) => {
      await post("/trades", {
        trade: tradeId,
        seller: o.author,
        offer: o.offer,
        quantity: Number(data.get("quantity")),
        unit_price: moneyIn(data, "unit_price", "Price"),
        expires_in_s: Number(data.get("expires")),
      });
      ctx.fail(null);
      ctx.say(`Trade proposed to ${o.author}.`);
    },
  );
}

function categorySelect() {
  return select("category", CATEGORIES.map((c) => [c, words(c)]), "produce");
}

function postOfferForm(ctx) {
  let offerId = newId("o");
  const f = form(
    ctx,
    { class: "stack" },
    [
      field("Item", h("input", { name: "item", required: true, maxlength: 80 })),
      field("Category", categorySelect()),
      h("div", { class: "row" }, field("Quantity", h("input", { name: "quantity", type: "number", inputmode: "numeric", min: 1, required: true, value: 1 })), field("Unit", select("unit", UNITS.map((u) => [u, unitName(u)]), "piece"))),
      h("div", { class: "row" }, field(`Price per unit (${currencyName()})`, moneyInput("unit_price", null)), field("Minimum order", h("input", { name: "min_order", type: "number", inputmode: "numeric", min: 1, value: 1 }))),
      h("div", { class: "row" }, field("Available for (days)", h("input", { name: "days", type: "number", inputmode: "numeric", min: 1, max: 3650, value: 7 })), field("Delivery", select("delivery", DELIVERY, "pickup"))),
      field("Terms (optional)", h("textarea", { name: "terms", maxlength: 280, rows: 2 })),
      h("button", { type: "submit", class: "primary" }, "Post offer"),
    ],
    async (data, el) => {
      await post("/offers", {
        offer: offerId,
        item: data.get("item").trim(),
        category: data.get("category"),
        quantity: Number(data.get("quantity")),
        unit: data.get("unit"),
        unit_price: moneyIn(data, "unit_price", "Price"),
        min_order: Number(data.get("min_order") || 1),
        available_days: Number(data.get("days") || 7),
        delivery: data.get("delivery"),
        terms: data.get("terms").trim(),
      });
      offerId = newId("o");
      el.reset();
      ctx.fail(null);
      ctx.say("The offer is posted to the federation.");
      ctx.refresh();
    },
  );
  return h("details", { class: "card more" }, h("summary", {}, "Post an offer"), f);
}

// ---- needs and matches ------------------------------------------------------------------------

async function needsPage(ctx, body) {
  const ours = h("div", { class: "list" });
  const others = h("div", { class: "grid" });
  if (ctx.coordinator) body.append(postNeedForm(ctx));
  body.append(h("h2", {}, "Our needs and the offers that fit"), ours, h("h2", {}, "Needs of other neighborhoods"), others);
  return async () => {
    const [needs, matches] = await Promise.all([get("/needs"), get("/match")]);
    const mine = needs.filter((n) => n.author === ctx.slug);
    put(ours, mine.length ? mine.map((n) => needCard(ctx, n, matches[n.need] || [])) : empty("This neighborhood has no open need."));
    const rest = needs.filter((n) => n.author !== ctx.slug);
    put(others, rest.length ? rest.map((n) => needCard(ctx, n, null)) : empty("No other neighborhood has an open need."));
  };
}

function needCard(ctx, n, matches) {
  const ours = n.author === ctx.slug;
  const card = h(
    "article",
    { class: "card", "aria-label": `Need: ${n.item} of ${n.author}` },
    h("div", { class: "card-head" }, h("h3", {}, n.item), h("div", { class: "badges" }, badge("muted", words(n.category)), ours ? badge("accent", "ours") : null)),
    h(
      "p",
      { class: "meta" },
      ours ? null : h("span", {}, `Of ${n.author}`),
      h("span", {}, quantity(n.quantity, n.unit)),
      h("span", {}, n.max_unit_price === null ? "any price" : `up to ${money(n.max_unit_price)} per ${unitName(n.unit)}`),
      h("span", {}, `Needed by ${when(n.needed_by)} (${fromNow(n.needed_by)})`),
    ),
  );
  if (matches !== null) {
    card.append(
      matches.length
        ? h(
            "ul",
            { class: "pledges", "aria-label": `Offers that fit ${n.item}` },
            matches.map((m) => {
              const li = h("li", { class: "pledge" }, h("span", {}, h("strong", {}, m.item), ` from ${m.author}: ${quantity(m.remaining, m.unit)} at ${money(m.unit_price)} per ${unitName(m.unit)}`));
              if (ctx.coordinator) {
                const opener = h(
                  "button",
                  { type: "button", class: "small-button", "aria-label": `Propose a trade for ${m.item} from ${m.author}`, onclick: () => proposeForm(ctx, card, opener, { ...m, quantity: m.remaining, min_order: 1 }) },
                  "Propose",
                );
                li.append(opener);
              }
              return li;
            }),
          )
        : h("p", { class: "muted small" }, "No offer in the federation fits yet."),
    );
  }
  if (ours && ctx.coordinator) {
    card.append(
      h(
        "div",
        { class: "actions" },
        action(
          "Withdraw need",
          async () => {
            if (!confirm(safeText(`Withdraw the need for ${n.item}?`))) return;
            await signed(ctx, () => post(`/needs/${seg(n.need)}/withdraw`), "The need is withdrawn.");
          },
          { cls: "danger", label: `Withdraw the need for ${n.item}` },
        ),
      ),
    );
  }
  return card;
}

function postNeedForm(ctx) {
  let needId = newId("n");
  const f = form(
    ctx,
    { class: "stack" },
    [
      field("Item", h("input", { name: "item", required: true, maxlength: 80 })),
      field("Category", categorySelect()),
      h("div", { class: "row" }, field("Quantity", h("input", { name: "quantity", type: "number", inputmode: "numeric", min: 1, required: true, value: 1 })), field("Unit", select("unit", UNITS.map((u) => [u, unitName(u)]), "piece"))),
      h("div", { class: "row" }, field(`Highest price per unit (${currencyName()}, optional)`, moneyInput("max_unit_price", null, false)), field("Needed within (days)", h("input", { name: "days", type: "number", inputmode: "numeric", min: 1, max: 3650, value: 7 }))),
      h("button", { type: "submit", class: "primary" }, "Post need"),
    ],
    async (data, el) => {
      await post("/needs", {
        need: needId,
        item: data.get("item").trim(),
        category: data.get("category"),
        quantity: Number(data.get("quantity")),
        unit: data.get("unit"),
        max_unit_price: moneyIn(data, "max_unit_price", "Highest price"),
        needed_in_days: Number(data.get("days") || 7),
      });
      needId = newId("n");
      el.reset();
      ctx.fail(null);
      ctx.say("The need is posted to the federation.");
      ctx.refresh();
    },
  );
  return h("details", { class: "card more" }, h("summary", {}, "Post a need"), f);
}

// ---- trades -----------------------------------------------------------------------------------

/** The actions this neighborhood may take on a trade now, most expected first. */
function yourMove(ctx, t) {
  const seller = t.seller === ctx.slug;
  const buyer = t.buyer === ctx.slug;
  if (seller && t.state === "proposed") return ["accept", "decline"];
  if (seller && t.state === "accepted") return ["ship"];
  if (buyer && t.state === "shipped") return ["receive"];
  return [];
}

function otherMoves(ctx, t) {
  const moves = [];
  if (t.buyer === ctx.slug && ["proposed", "accepted", "cancel_requested"].includes(t.state)) moves.push("cancel");
  if (t.seller === ctx.slug && t.state === "accepted") moves.push("cancel");
  if (OPEN_TRADE.has(t.state)) moves.push("dispute");
  return moves;
}

const ACTION_TEXT = { accept: "Accept", decline: "Decline", ship: "Mark shipped", receive: "Confirm received", cancel: "Cancel trade", dispute: "Dispute" };
const ACTION_DONE = { accept: "Trade accepted.", decline: "Trade declined.", ship: "Marked as shipped.", receive: "Receipt confirmed: the trade settles.", cancel: "Trade cancelled.", dispute: "Dispute sent." };

async function offerNames() {
  const offers = await get("/offers?all=true");
  return new Map(offers.map((o) => [`${o.author}/${o.offer}`, o]));
}

async function tradesPage(ctx, body) {
  const waiting = h("div", { class: "list" });
  const open = h("div", { class: "list" });
  const closed = h("div", { class: "list" });
  body.append(
    h("section", { class: "stack", "aria-labelledby": "tw" }, h("h2", { id: "tw" }, "Waiting for our answer"), waiting),
    h("section", { class: "stack", "aria-labelledby": "to" }, h("h2", { id: "to" }, "Waiting for the other side"), open),
    h("section", { class: "stack", "aria-labelledby": "tc" }, h("h2", { id: "tc" }, "Closed trades"), closed),
  );
  return async () => {
    const [trades, names] = await Promise.all([get("/trades"), offerNames()]);
    trades.reverse(); // newest first
    const mine = trades.filter((t) => yourMove(ctx, t).length);
    const theirs = trades.filter((t) => !yourMove(ctx, t).length && OPEN_TRADE.has(t.state));
    const done = trades.filter((t) => !OPEN_TRADE.has(t.state));
    put(waiting, mine.length ? mine.map((t) => tradeCard(ctx, t, names, true)) : empty("Nothing waits for our answer."));
    put(open, theirs.length ? theirs.map((t) => tradeCard(ctx, t, names, false)) : empty("None."));
    put(closed, done.length ? done.slice(0, 30).map((t) => tradeCard(ctx, t, names, false)) : empty("None yet."));
  };
}

function tradeCard(ctx, t, names, urgent) {
  const offer = names.get(`${t.seller}/${t.offer}`);
  const item = offer ? offer.item : t.offer;
  const unit = offer ? offer.unit : "piece";
  const weBuy = t.buyer === ctx.slug;
  const title = weBuy ? `${item} from ${t.seller}` : `${item} to ${t.buyer}`;
  const card = h(
    "article",
    { class: "card", "aria-label": `Trade: ${title}`, "data-testid": `trade-${t.buyer}-${t.trade}` },
    h("div", { class: "card-head" }, h("h3", {}, title), h("div", { class: "badges" }, badge(weBuy ? "info" : "accent", weBuy ? "we buy" : "we sell"), badge(STATE_TONE[t.state] || "muted", t.state))),
    h("p", { class: "description" }, `${quantity(t.quantity, unit)} at ${money(t.unit_price)} per ${unitName(unit)}: ${money(t.total)}`),
    h(
      "p",
      { class: "meta" },
      h("span", {}, `Proposed ${when(t.proposed_at)}`),
      t.state === "proposed" ? h("span", {}, `Expires ${fromNow(t.expires_at)}`) : null,
      h("span", {}, `Buyer: ${t.buyer_state} · seller: ${t.seller_state}`),
    ),
  );
  if (!ctx.coordinator) return card;
  const buttons = h("div", { class: "actions" });
  const path = (a) => `/trades/${seg(t.buyer)}/${seg(t.trade)}/${a}`;
  for (const a of yourMove(ctx, t)) {
    if (a === "decline") {
      const opener = h(
        "button",
        {
          type: "button",
          class: "secondary",
          "aria-label": `Decline the trade: ${title}`,
          onclick: () =>
            inlineForm(ctx, card, opener, "Decline the trade", [field("Reason (optional)", h("input", { name: "reason", maxlength: 280 }))], "Decline", async (data) => {
              await post(path("decline"), { reason: data.get("reason").trim() });
              ctx.fail(null);
              ctx.say(ACTION_DONE.decline);
            }),
        },
        "Decline",
      );
      buttons.append(opener);
    } else {
      buttons.append(action(ACTION_TEXT[a], () => signed(ctx, () => post(path(a)), ACTION_DONE[a]), { cls: urgent ? "primary" : "", label: `${ACTION_TEXT[a]}: ${title}` }));
    }
  }
  for (const a of otherMoves(ctx, t)) {
    const required = a === "dispute";
    const opener = h(
      "button",
      {
        type: "button",
        class: "danger",
        "aria-label": `${ACTION_TEXT[a]}: ${title}`,
        onclick: () =>
          inlineForm(ctx, card, opener, ACTION_TEXT[a], [field(required ? "Reason" : "Reason (optional)", h("input", { name: "reason", maxlength: 280, required }))], ACTION_TEXT[a], async (data) => {
            await post(path(a), { reason: data.get("reason").trim() });
            ctx.fail(null);
            ctx.say(ACTION_DONE[a]);
          }),
      },
      ACTION_TEXT[a],
    );
    buttons.append(opener);
  }
  if (buttons.childElementCount) card.append(buttons);
  return card;
}

// ---- balance and statement -------------------------------------------------------------------

async function balancePage(ctx, body) {
  const figures = h("section", { class: "figures", "aria-label": "Our balance" });
  const statement = h("div", { class: "table-wrap" });
  const ledger = h("div", { class: "table-wrap" });
  body.append(
    figures,
    h("section", { class: "card", "aria-labelledby": "st" }, h("h2", { id: "st" }, "Statement: settled trades"), statement),
    h("section", { class: "card", "aria-labelledby": "lt" }, h("h2", { id: "lt" }, "The federation's ledger"), ledger),
  );
  // "£4.50" for a currency with a symbol; else "4.50" with the currency's name smaller after it.
  const figure = (cents) => (currencySymbol() ? [money(cents)] : [amount(cents), h("span", { class: "unit" }, ` ${currencyName()}`)]);
  const fig = (title, cents, sub, tone) => h("article", { class: "card figure" }, h("h2", {}, title), h("p", { class: `big ${tone || ""}` }, ...figure(cents)), sub ? h("p", { class: "muted small" }, sub) : null);
  return async () => {
    const [b, trades, names] = await Promise.all([get("/balance"), get("/trades?state=settled"), offerNames()]);
    put(
      figures,
      fig("Balance", b.balance, "settled trades, in and out", b.balance < 0 ? "warn" : "good"),
      fig("Committed", b.committed, "open purchases not yet settled"),
      fig("Credit limit", b.credit_limit, "how far below zero we may go"),
      fig("Available", b.available, "what we may still spend", b.available <= 0 ? "bad" : ""),
    );
    if (b.breaches && b.breaches.length) figures.append(h("p", { class: "error-box" }, `Over the credit limit: ${b.breaches.join(", ")}`));
    trades.reverse();
    put(
      statement,
      trades.length
        ? h(
            "table",
            {},
            h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Proposed"), h("th", { scope: "col" }, "Trade"), h("th", { scope: "col", class: "num" }, "Amount"))),
            h(
              "tbody",
              {},
              trades.map((t) => {
                const sold = t.seller === ctx.slug;
                const o = names.get(`${t.seller}/${t.offer}`);
                const what = `${o ? quantity(t.quantity, o.unit) : int(t.quantity)} ${o ? o.item : t.offer} ${sold ? `to ${t.buyer}` : `from ${t.seller}`}`;
                return h("tr", {}, h("td", {}, when(t.proposed_at)), h("td", {}, what), h("td", { class: `num ${sold ? "good" : ""}` }, `${sold ? "+" : "−"}${money(t.total)}`));
              }),
            ),
          )
        : empty("No settled trade yet."),
    );
    const rows = Object.entries(b.ledger || {}).sort((x, y) => y[1] - x[1]);
    put(
      ledger,
      rows.length
        ? h(
            "table",
            {},
            h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Neighborhood"), h("th", { scope: "col", class: "num" }, "Balance"))),
            h("tbody", {}, rows.map(([slug, c]) => h("tr", {}, h("td", {}, slug === ctx.slug ? `${slug} (us)` : slug), h("td", { class: `num ${c < 0 ? "warn" : ""}` }, money(c))))),
          )
        : empty("No settled trade in the federation yet."),
    );
  };
}
