// Membership of the federation: the members, and the applications waiting for consent. A
// coordinator consents, objects (with a reason) or withdraws the neighborhood's objection.

import { get, post, seg } from "../api.js";
import { action, badge, empty, field, h, put } from "../dom.js";
import { plural, when } from "../format.js";
import { form } from "./account.js";

const TONE = { founder: "accent", admitted: "good", applicant: "warn", retired: "muted", outsider: "muted" };

export async function mount(ctx, _route, root) {
  const head = h("p", { class: "muted" });
  const applications = h("div", { class: "list" });
  const members = h("div", { class: "table-wrap" });
  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "Membership"), head),
    h("section", { "aria-labelledby": "apps-title", class: "stack" }, h("h2", { id: "apps-title" }, "Applications"), applications),
    h("section", { "aria-labelledby": "members-title", class: "card" }, h("h2", { id: "members-title" }, "Members"), members),
  );
  const refresh = async () => {
    const m = await get("/membership");
    head.textContent = m.charter
      ? `Federation ${m.federation}: an application is decided by consent (quorum ${m.quorum_percent}%), objections with a reason.`
      : "This federation has no charter on this node: its founders are its members.";
    const apps = m.members.filter((x) => x.status === "applicant");
    put(applications, apps.length ? apps.map((a) => applicationCard(ctx, m, a)) : empty("No application waits for an answer."));
    const rows = m.members.filter((x) => x.status !== "applicant");
    put(
      members,
      rows.length
        ? h(
            "table",
            {},
            h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Neighborhood"), h("th", { scope: "col" }, "Status"))),
            h("tbody", {}, rows.map((x) => h("tr", {}, h("td", {}, x.slug, x.slug === m.me ? " (us)" : ""), h("td", {}, badge(TONE[x.status] || "muted", x.status))))),
          )
        : empty("No members known yet."),
    );
  };
  await refresh();
  return refresh;
}

function applicationCard(ctx, m, a) {
  const app = a.application || {};
  const ourObjection = a.objections.find((o) => o.member === m.me);
  const consented = a.consents.includes(m.me);
  const card = h(
    "article",
    { class: "card", "aria-label": `Application of ${a.slug}` },
    h("div", { class: "card-head" }, h("h3", {}, app.display_name ? `${app.display_name} (${a.slug})` : a.slug), badge("warn", "applicant")),
    app.about ? h("p", { class: "description" }, app.about) : null,
    app.reason ? h("p", {}, h("strong", {}, "Why they apply: "), app.reason) : null,
    h(
      "p",
      { class: "meta" },
      app.at ? h("span", {}, `Applied ${when(app.at)}`) : null,
      app.area ? h("span", {}, `Area ${app.area}`) : null,
      h("span", {}, `${plural(a.consents.length, "consent")} of ${a.needed} needed`),
      consented ? h("span", {}, "We consented") : null,
    ),
    a.objections.length
      ? h("ul", { class: "pledges", "aria-label": "Objections" }, a.objections.map((o) => h("li", { class: "pledge" }, h("strong", {}, o.member), ` objects: ${o.reason || "(no reason shown)"}`)))
      : null,
  );
  if (ctx.coordinator) {
    const answer = async (what, body, done) => {
      try {
        await post(`/membership/${seg(a.slug)}/${what}`, body);
        ctx.fail(null);
        ctx.say(done);
        ctx.refresh();
      } catch (error) {
        ctx.fail(error);
      }
    };
    const buttons = h("div", { class: "actions" });
    if (!consented) buttons.append(action("Consent", () => answer("consent", {}, `You consented to ${a.slug}.`), { label: `Consent to ${a.slug}` }));
    if (ourObjection) {
      buttons.append(action("Withdraw objection", () => answer("withdraw", {}, "Our objection is withdrawn."), { label: `Withdraw our objection to ${a.slug}` }));
    } else {
      const opener = h(
        "button",
        {
          type: "button",
          class: "danger",
          "aria-label": `Object to ${a.slug}`,
          onclick: () => {
            if (card.querySelector("form.inline")) return;
            const reason = h("textarea", { name: "reason", required: true, maxlength: 280, rows: 2 });
            const close = () => {
              f.remove();
              opener.focus();
            };
            const f = form(
              ctx,
              { class: "inline stack", "aria-label": `Object to ${a.slug}` },
              [
                field("Reason for objecting", reason, "Every member sees it."),
                h("div", { class: "actions" }, h("button", { type: "submit", class: "danger" }, "Send objection"), h("button", { type: "button", class: "secondary", onclick: close }, "Cancel")),
              ],
              async (data) => {
                await post(`/membership/${seg(a.slug)}/object`, { reason: data.get("reason").trim() });
                f.remove();
                ctx.fail(null);
                ctx.say("Our objection is sent.");
                ctx.refresh();
              },
            );
            card.append(f);
            reason.focus();
          },
        },
        "Object",
      );
      buttons.append(opener);
    }
    card.append(buttons);
  }
  return card;
}
