// "Call 4 Help": the neighborhood's calls for help and the federation's escalated ones.
// `#/help` lists them (pledge, accept, confirm, withdraw, escalate); `#/help/ask` is the form
// to ask: on a phone, "Ask for help" → a category → "Send" is three taps.

import { get, post, seg } from "../api.js";
import { action, badge, choices, empty, field, h, newId, put, select } from "../dom.js";
import { fromNow, int, plural, when, words } from "../format.js";
import { form, signed } from "./account.js";

export const CATEGORIES = [
  ["food", "Food"],
  ["shelter", "Shelter"],
  ["transport", "Transport"],
  ["medical-supplies", "Medical supplies"],
  ["childcare", "Childcare"],
  ["eldercare", "Eldercare"],
  ["safety", "Safety"],
  ["utilities", "Utilities"],
  ["repair", "Repair"],
  ["other", "Other"],
];
const CATEGORY_NAME = Object.fromEntries(CATEGORIES);
const URGENCIES = [
  ["critical", "Critical"],
  ["high", "High"],
  ["normal", "Normal"],
  ["low", "Low"],
];
const URGENCY_TONE = { critical: "bad", high: "warn", normal: "info", low: "muted" };
const WITHIN = [
  ["60", "1 hour"],
  ["180", "3 hours"],
  ["720", "12 hours"],
  ["1440", "1 day"],
  ["4320", "3 days"],
  ["10080", "1 week"],
];
const OPEN = new Set(["open", "partly_pledged", "pledged"]);

export async function mount(ctx, route, root) {
  if (route.sub === "ask") return mountAsk(ctx, root);
  const list = h("div", { class: "list", "aria-live": "off" });
  const showClosed = h("input", { type: "checkbox", name: "closed" });
  root.append(
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, "Call 4 Help"),
      h("p", { class: "muted" }, "Ask your neighbors for help, or answer a call. A call stays in your neighborhood first; if it is not met in time, the whole federation is asked."),
    ),
    h("a", { class: "button primary huge", href: "#/help/ask" }, "Ask for help"),
    h(
      "div",
      { class: "section-head" },
      h("h2", { id: "calls-title" }, "Open calls"),
      h("label", { class: "inline-check" }, showClosed, " Show closed"),
    ),
    list,
  );
  const refresh = async () => {
    const requests = await get(`/aid/requests${showClosed.checked ? "?all=true" : ""}`);
    put(list, requests.length ? requests.map((r) => requestCard(ctx, r)) : empty("No open calls for help right now."));
  };
  showClosed.addEventListener("change", () => {
    document.getElementById("calls-title").textContent = showClosed.checked ? "All calls" : "Open calls";
    refresh().catch(ctx.fail);
  });
  await refresh();
  return refresh;
}

/** Who asked or pledged, as the API gives it to a coordinator: an account's name, or
 * {name, display_name, contact}. */
function person(who) {
  if (typeof who === "string") return who;
  const name = who.display_name && who.display_name !== who.name ? `${who.display_name} (${who.name})` : who.name;
  return who.contact ? `${name}, ${who.contact}` : name;
}

function mayAct(ctx, r) {
  return r.requester === ctx.slug && (ctx.coordinator || r.mine === true);
}

function requestCard(ctx, r) {
  const ours = r.requester === ctx.slug;
  const title = `${CATEGORY_NAME[r.category] || words(r.category)}${ours ? "" : ` · ${r.requester}`}`;
  const card = h(
    "article",
    { class: `card request urgency-${r.urgency}`, "aria-label": `Call for help: ${title}, ${r.urgency}` },
    h(
      "div",
      { class: "card-head" },
      h("h3", {}, title),
      h("div", { class: "badges" }, badge(URGENCY_TONE[r.urgency] || "muted", r.urgency), r.escalated ? badge("info", "federation-wide") : null, badge(OPEN.has(r.state) ? "good" : "muted", r.state), r.mine ? badge("accent", "yours") : null),
    ),
    h("p", { class: "description" }, r.description),
    h(
      "p",
      { class: "meta" },
      h("span", {}, "Needed by ", h("time", { datetime: new Date(r.needed_by).toISOString() }, when(r.needed_by)), ` (${fromNow(r.needed_by)})`),
      h("span", {}, `${plural(r.quantity, "needed", "needed")} · ${int(r.pledged || 0)} pledged${r.accepted ? ` · ${int(r.accepted)} accepted` : ""}`),
      h("span", {}, `Asked ${fromNow(r.raised_at)}${r.area ? ` · area ${r.area}` : ""}`),
      r.asked_by ? h("span", {}, `Asked by ${person(r.asked_by)}`) : null,
    ),
  );
  if (r.pledges && r.pledges.length) {
    card.append(
      h(
        "ul",
        { class: "pledges", "aria-label": "Pledges" },
        r.pledges.map((p) => pledgeItem(ctx, r, p)),
      ),
    );
  }
  const buttons = h("div", { class: "actions" });
  if (r.state === "open" || r.state === "partly_pledged") {
    buttons.append(h("button", { type: "button", class: "primary", onclick: (e) => openPledge(ctx, r, card, e.currentTarget) }, "Pledge help"));
  }
  if (mayAct(ctx, r) && OPEN.has(r.state)) {
    const rid = seg(r.request);
    buttons.append(
      action("Confirm fulfilled", async () => {
        await signed(ctx, () => post(`/aid/requests/${rid}/fulfil`), "Marked as fulfilled. Thank you!");
      }),
    );
    if (!r.escalated) {
      buttons.append(
        action("Ask the federation", async () => {
          await signed(ctx, () => post(`/aid/requests/${rid}/escalate`), "The whole federation is asked now.");
        }),
      );
    }
    buttons.append(
      action(
        "Withdraw call",
        async () => {
          if (!confirm("Withdraw this call for help?")) return;
          await signed(ctx, () => post(`/aid/requests/${rid}/withdraw`), "The call is withdrawn.");
        },
        { cls: "danger" },
      ),
    );
  }
  if (buttons.childElementCount) card.append(buttons);
  return card;
}

function pledgeItem(ctx, r, p) {
  const li = h(
    "li",
    { class: "pledge" },
    h("span", {}, h("strong", {}, p.pledger), ` pledges ${int(p.quantity)} × ${p.what}`),
    p.pledged_by ? h("span", { class: "muted small" }, ` (by ${person(p.pledged_by)})`) : null,
    p.mine ? badge("accent", "yours") : null,
    " ",
    p.accepted ? badge("good", "accepted") : null,
    p.state !== "pledged" ? badge("muted", p.state) : null,
  );
  // Only an escalated request's pledges are accepted one by one (aid.pledge_accepted); a
  // request kept in the neighborhood is met by confirming it.
  if (r.escalated && mayAct(ctx, r) && p.state === "pledged" && !p.accepted && OPEN.has(r.state)) {
    li.append(
      action(
        "Accept",
        async () => {
          await signed(ctx, () => post(`/aid/requests/${seg(r.request)}/accept`, { pledger: p.pledger, pledge: p.pledge }), `Pledge from ${p.pledger} accepted.`);
        },
        { cls: "small-button", label: `Accept the pledge from ${p.pledger}: ${p.what}` },
      ),
    );
  }
  const ourPledge = r.escalated && p.pledger === ctx.slug && p.state === "pledged";
  if (ourPledge && (ctx.coordinator || p.mine === true)) {
    li.append(
      action(
        "Withdraw pledge",
        async () => {
          const path = `/aid/requests/${seg(r.requester)}/${seg(r.request)}/pledges/${seg(p.pledge)}/withdraw`;
          await signed(ctx, () => post(path), "Your pledge is withdrawn.");
        },
        { cls: "small-button danger", label: `Withdraw the pledge ${p.what}` },
      ),
    );
  }
  return li;
}

function openPledge(ctx, r, card, opener) {
  if (card.querySelector("form.inline")) {
    card.querySelector("form.inline input").focus();
    return;
  }
  const still = Math.max(1, r.quantity - (r.pledged || 0));
  const what = h("input", { name: "what", required: true, maxlength: 140, placeholder: "e.g. a hot meal, a lift" });
  const quantity = h("input", { name: "quantity", type: "number", inputmode: "numeric", min: 1, max: 1000000, required: true, value: still });
  const pledgeId = newId("p");
  const close = () => {
    f.remove();
    opener.focus();
    ctx.refresh();
  };
  const f = form(
    ctx,
    { class: "inline stack", "aria-label": "Pledge help" },
    [
      field("What you offer", what),
      field("How many", quantity),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "submit", class: "primary" }, "Send pledge"),
        h("button", { type: "button", class: "secondary", onclick: close }, "Cancel"),
      ),
    ],
    async (data) => {
      const path = `/aid/requests/${seg(r.requester)}/${seg(r.request)}/pledges`;
      await post(path, { what: data.get("what").trim(), quantity: Number(data.get("quantity")), pledge: pledgeId });
      ctx.fail(null);
      ctx.say("Thank you: your pledge is sent.");
      close();
    },
  );
  card.append(f);
  what.focus();
}

function mountAsk(ctx, root) {
  const requestId = newId("r"); // one id per form: a retried "Send" asks once
  const description = h("textarea", { name: "description", required: true, maxlength: 280, rows: 3 });
  let typed = false;
  description.addEventListener("input", () => {
    typed = description.value.trim() !== "";
  });
  const onCategory = (value) => {
    if (!typed) description.value = `Help needed: ${CATEGORY_NAME[value].toLowerCase()}`;
  };
  const quantity = h("input", { name: "quantity", type: "number", inputmode: "numeric", min: 1, max: 1000000, required: true, value: 1 });
  const within = select("within", WITHIN, "1440");
  const federation = h("input", { type: "checkbox", name: "escalate_now" });
  const f = form(
    ctx,
    { class: "stack ask", "aria-labelledby": "ask-title" },
    [
      choices("What do you need help with?", "category", CATEGORIES, null, { cls: "grid-choices", onchange: onCategory }),
      field("Describe what you need", description, "No names, addresses or phone numbers: your co-op connects you with who helps."),
      h(
        "details",
        { class: "more" },
        h("summary", {}, "Urgency, how many, by when (normal, 1, within a day)"),
        choices("How urgent?", "urgency", URGENCIES, "normal"),
        field("How many (people or items)", quantity),
        field("Needed within", within),
        h("label", { class: "inline-check" }, federation, " Ask the whole federation now"),
      ),
      h("button", { type: "submit", class: "primary huge" }, "Send"),
      h("a", { href: "#/help", class: "button secondary" }, "Cancel"),
    ],
    async (data) => {
      const category = data.get("category");
      if (!category) {
        ctx.fail(new Error("Choose what you need help with (a category) first."));
        f.querySelector("input[name=category]").focus();
        return;
      }
      if (!description.value.trim()) onCategory(category);
      await post("/aid/requests", {
        request: requestId,
        category,
        urgency: data.get("urgency") || "normal",
        quantity: Number(data.get("quantity") || 1),
        description: description.value.trim(),
        needed_in_minutes: Number(data.get("within") || 1440),
        escalate_now: data.get("escalate_now") === "on",
      });
      ctx.fail(null);
      ctx.say("Your call for help is sent. Neighbors will see it now.");
      ctx.go("help");
    },
  );
  root.append(h("h1", { id: "ask-title" }, "Ask for help"), f);
  return null;
}
