// The time bank in hours (PROTOCOL.md §20): a resident's hour balance and entries, hours
// given recorded by the giver and confirmed (or declined) by the one who received them; for a
// coordinator every resident's balance, crediting a resident from the co-op, and hours
// signed over to another neighborhood. The federation's hour balances per neighborhood are
// everyone's to see. Hours are integer quarter hours on the API (an hour is 4), typed in
// quarter steps ("1.5", "2.25") and shown as the CLI writes them ("1.5 h"): format.js
// `readHours`, `hours`. Hours are never credit and never converted.

import { get, post, seg } from "../api.js";
import { action, badge, empty, field, h, newId, put } from "../dom.js";
import { hours, readHours, when } from "../format.js";
import { form } from "./account.js";

const COOP = "@coop"; // the co-op's own account: a coordinator credits a resident from it
const STATE_TONE = { pending: "warn", confirmed: "good", declined: "muted" };

function who(name) {
  return name === COOP ? "the co-op" : name;
}

/** How an entry reads for `me`: "to rosa", "from ben", "credited by the co-op" (a
 * coordinator's credit is an entry from the resident to @coop, confirmed at once). */
function withWhom(e, me) {
  if (e.receiver === COOP) return "credited by the co-op";
  return e.giver === me ? `to ${who(e.receiver)}` : `from ${who(e.giver)}`;
}

/** Hours typed in a form's field, as quarter hours; a sentence saying why not otherwise
 * (`not_quarter_hours`: refused before anything is sent). */
function quartersOf(data, name) {
  const { quarters, error } = readHours(data.get(name) || "");
  if (error) throw new Error(`Hours: ${error}`);
  return quarters;
}

function hoursInput(name = "hours") {
  return h("input", { name, inputmode: "decimal", autocomplete: "off", required: true, placeholder: "1.5" });
}

const HOURS_HINT = "In quarter hours: 1, 1.25, 1.5, 1.75, 2 …";

export async function mount(ctx, _route, root) {
  const figures = h("section", { class: "figures", "aria-label": "Your hours" });
  const waiting = h("div", { class: "list" });
  const entries = h("div", {});
  const residents = h("div", { class: "table-wrap" });
  const hoods = h("div", {});
  const residentChoice = { names: [] };
  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "Hours"), h("p", { class: "muted" }, "The time bank: an hour of help is an hour, whatever the help. Hours are not credit.")),
    figures,
    h("section", { class: "stack", "aria-labelledby": "hw" }, h("h2", { id: "hw" }, "Waiting for your confirmation"), waiting),
    recordForm(ctx),
    h("section", { class: "card", "aria-labelledby": "he" }, h("h2", { id: "he" }, "Your entries"), entries),
  );
  if (ctx.coordinator) {
    root.append(
      h("section", { class: "card stack", "aria-labelledby": "hr" }, h("h2", { id: "hr" }, "Residents' hours"), residents, creditForm(ctx, residentChoice)),
    );
  }
  root.append(
    h(
      "section",
      { class: "card stack", "aria-labelledby": "hn" },
      h("h2", { id: "hn" }, "Hours between neighborhoods"),
      hoods,
      ctx.coordinator ? transferForm(ctx) : null,
    ),
  );
  const fig = (title, quarters, sub, tone) => h("article", { class: "card figure" }, h("h2", {}, title), h("p", { class: `big ${tone || ""}` }, hours(quarters)), sub ? h("p", { class: "muted small" }, sub) : null);
  const refresh = async () => {
    const calls = [get("/hours/me"), get("/hours/neighborhoods")];
    if (ctx.coordinator) calls.push(get("/hours/residents"));
    const [me, federation, everyone] = await Promise.all(calls);
    // GET /hours/me: {name, balance, debt_cap, available, entries}, quarter hours.
    const cap = me.debt_cap;
    put(
      figures,
      fig("Your hours", me.balance, "given minus received", me.balance < 0 ? "warn" : "good"),
      fig("Debt cap", cap, "how far below zero you may go"),
    );
    const mine = me.entries || [];
    const asked = mine.filter((e) => e.state === "pending" && e.receiver === ctx.me.name);
    put(waiting, asked.length ? asked.map((e) => entryCard(ctx, e)) : empty("Nothing waits for you."));
    put(entries, mine.length ? entriesList(ctx, mine) : empty("No hours given or received yet."));
    put(hoods, neighborhoodsTable(ctx, federation));
    if (everyone) {
      // GET /hours/residents: {residents: [{name, display_name, disabled, balance, given,
      // received}] (with @coop, the co-op), ledger_sum, debt_cap}.
      const people = everyone.residents || [];
      residentChoice.names = people.filter((r) => r.name !== COOP && !r.disabled).map((r) => r.name);
      residentChoice.update?.();
      put(
        residents,
        people.length
          ? h(
              "table",
              {},
              h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Resident"), h("th", { scope: "col", class: "num" }, "Hours"))),
              h(
                "tbody",
                {},
                people.map((r) => h("tr", {}, h("td", {}, r.name === COOP ? "the co-op" : r.display_name && r.display_name !== r.name ? `${r.display_name} (${r.name})` : r.name), h("td", { class: `num ${r.balance < 0 ? "warn" : ""}` }, hours(r.balance)))),
              ),
            )
          : empty("No resident has an account yet."),
      );
    }
  };
  await refresh();
  return refresh;
}

// ---- a resident's own entries -----------------------------------------------------------------

function entryCard(ctx, e) {
  const title = `${hours(e.quarters)} from ${who(e.giver)}`;
  const card = h(
    "article",
    { class: "card", "aria-label": `Hours: ${title}`, "data-testid": `entry-${e.id}` },
    h("div", { class: "card-head" }, h("h3", {}, title), h("div", { class: "badges" }, badge(STATE_TONE[e.state] || "muted", e.state))),
    e.what ? h("p", { class: "description" }, e.what) : null,
    h("p", { class: "meta" }, h("span", {}, `Recorded ${when(e.created_at)}`)),
  );
  const decide = (step, done) => async () => {
    try {
      await post(`/hours/entries/${seg(e.id)}/${step}`);
      ctx.fail(null);
      ctx.say(done);
      ctx.refresh();
    } catch (error) {
      ctx.fail(error);
    }
  };
  card.append(
    h(
      "div",
      { class: "actions" },
      action("Confirm", decide("confirm", `Confirmed: ${title}.`), { cls: "primary", label: `Confirm ${title}` }),
      action("Decline", decide("decline", `Declined: ${title}.`), { cls: "danger", label: `Decline ${title}` }),
    ),
  );
  return card;
}

/** A resident's entries, newest first: one line each (a list, so it fits a phone). */
function entriesList(ctx, mine) {
  const rows = [...mine].sort((a, b) => (b.created_at || 0) - (a.created_at || 0));
  return h(
    "ul",
    { class: "pledges", "aria-label": "Your entries" },
    rows.map((e) => {
      const gave = e.giver === ctx.me.name;
      const tone = e.state === "confirmed" ? (gave ? "good" : "warn") : "muted";
      return h(
        "li",
        { class: "pledge", "data-testid": `entry-row-${e.id}` },
        h("strong", { class: tone }, `${gave ? "+" : "−"}${hours(e.quarters)}`),
        h("span", {}, withWhom(e, ctx.me.name)),
        e.what ? h("span", {}, `· ${e.what}`) : null,
        h("span", { class: "muted small" }, when(e.created_at)),
        badge(STATE_TONE[e.state] || "muted", e.state),
      );
    }),
  );
}

function recordForm(ctx) {
  let entryId = newId("e");
  const f = form(
    ctx,
    { class: "stack", "aria-label": "Record hours you gave" },
    [
      field("Who received your help (their account name)", h("input", { name: "receiver", required: true, autocapitalize: "none", spellcheck: "false", maxlength: 64 })),
      h("div", { class: "row" }, field("Hours", hoursInput(), HOURS_HINT), field("What you did", h("input", { name: "what", required: true, maxlength: 280 }))),
      h("button", { type: "submit", class: "primary" }, "Record hours"),
    ],
    async (data, el) => {
      const quarters = quartersOf(data, "hours");
      const receiver = data.get("receiver").trim();
      await post("/hours/entries", { receiver, quarters, what: data.get("what").trim(), entry: entryId });
      entryId = newId("e");
      el.reset();
      ctx.fail(null);
      ctx.say(`Recorded ${hours(quarters)} given to ${receiver}: waiting for their confirmation.`);
      ctx.refresh();
    },
  );
  return h("section", { class: "card stack", "aria-labelledby": "hg" }, h("h2", { id: "hg" }, "Record hours you gave"), f);
}

// ---- a coordinator's --------------------------------------------------------------------------

function creditForm(ctx, residentChoice) {
  let entryId = newId("c");
  const name = h("input", { name: "resident", required: true, autocapitalize: "none", spellcheck: "false", maxlength: 64, list: "hours-residents" });
  const list = h("datalist", { id: "hours-residents" });
  residentChoice.update = () => put(list, residentChoice.names.map((n) => h("option", { value: n })));
  const f = form(
    ctx,
    { class: "stack", "aria-label": "Credit a resident" },
    [
      field("Resident", name),
      list,
      h("div", { class: "row" }, field("Hours", hoursInput(), HOURS_HINT), field("For what", h("input", { name: "what", required: true, maxlength: 280 }))),
      h("button", { type: "submit", class: "primary" }, "Credit hours"),
    ],
    async (data, el) => {
      const quarters = quartersOf(data, "hours");
      const resident = data.get("resident").trim();
      await post("/hours/credit", { resident, quarters, what: data.get("what").trim(), entry: entryId });
      entryId = newId("c");
      el.reset();
      ctx.fail(null);
      ctx.say(`Credited ${hours(quarters)} to ${resident} from the co-op.`);
      ctx.refresh();
    },
  );
  return h("details", { class: "more" }, h("summary", {}, "Credit a resident"), f);
}

function transferForm(ctx) {
  let transferId = newId("h");
  const f = form(
    ctx,
    { class: "stack", "aria-label": "Transfer hours to another neighborhood" },
    [
      h("div", { class: "row" }, field("To (neighborhood)", h("input", { name: "to", required: true, autocapitalize: "none", spellcheck: "false", maxlength: 32 })), field("Hours", hoursInput(), HOURS_HINT)),
      field("For our call for help (its id, optional)", h("input", { name: "request", maxlength: 40 })),
      h("button", { type: "submit", class: "primary" }, "Transfer hours"),
    ],
    async (data, el) => {
      const quarters = quartersOf(data, "hours");
      const to = data.get("to").trim();
      const body = { to, quarters, transfer: transferId };
      const request = data.get("request").trim();
      if (request) body.request = request;
      await post("/hours/transfers", body);
      transferId = newId("h");
      el.reset();
      ctx.fail(null);
      ctx.say(`${hours(quarters)} signed over to ${to}.`);
      ctx.refresh();
    },
  );
  return h("details", { class: "more" }, h("summary", {}, "Transfer hours to another neighborhood"), f);
}

/** GET /hours/neighborhoods: {neighborhood (us), balance, hours_limit, available,
 * neighborhoods: [{neighborhood, balance, given, received}], ledger_sum, breaches,
 * transfers}, quarter hours. */
function neighborhoodsTable(ctx, federation) {
  const rows = federation.neighborhoods || [];
  const ours = h(
    "p",
    { class: "meta" },
    h("span", {}, `Our balance: ${hours(federation.balance)}`),
    h("span", {}, `Hours limit: ${hours(federation.hours_limit)}`),
    h("span", {}, `We may still sign over: ${hours(federation.available)}`),
  );
  const over = federation.breaches && federation.breaches.length ? h("p", { class: "error-box" }, `Over the hours limit: ${federation.breaches.join(", ")}`) : null;
  if (!rows.length) return [ours, over, empty("No hours have moved between neighborhoods yet.")];
  // On a phone, a card per neighborhood (app.css `table.cards`): nothing cut, no sideways scroll.
  const table = h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Table of hours by neighborhood" },
    h(
      "table",
      { class: "cards" },
      h(
        "thead",
        {},
        h("tr", {}, h("th", { scope: "col" }, "Neighborhood"), h("th", { scope: "col", class: "num" }, "Given"), h("th", { scope: "col", class: "num" }, "Received"), h("th", { scope: "col", class: "num" }, "Balance")),
      ),
      h(
        "tbody",
        {},
        rows.map((r) =>
          h(
            "tr",
            {},
            h("td", {}, r.neighborhood === ctx.slug ? `${r.neighborhood} (us)` : r.neighborhood),
            h("td", { class: "num", "data-label": "Given" }, hours(r.given)),
            h("td", { class: "num", "data-label": "Received" }, hours(r.received)),
            h("td", { class: `num ${r.balance < 0 ? "warn" : ""}`, "data-label": "Balance" }, hours(r.balance)),
          ),
        ),
      ),
    ),
  );
  return [ours, over, table];
}
