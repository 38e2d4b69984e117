// The neighborhood's accounts (coordinators): list, invite (a link to copy), open
// invitations (revoke), change a role, a password-reset link, disable.

import { get, post, seg } from "../api.js";
import { action, badge, choices, empty, field, h, put, safeText, select } from "../dom.js";
import { fromNow, when } from "../format.js";
import { form } from "./account.js";

const ROLES = [
  ["resident", "Resident"],
  ["coordinator", "Coordinator"],
];

/** A link shown in a read-only field with a "Copy link" button. */
function linkBox(ctx, title, link, expires) {
  const input = h("input", { readonly: true, value: link, "aria-label": title });
  input.addEventListener("focus", () => input.select());
  return h(
    "div",
    { class: "card stack link-box", role: "group", "aria-label": title },
    h("h3", {}, title),
    h(
      "div",
      { class: "copy-row" },
      input,
      h(
        "button",
        {
          type: "button",
          class: "primary",
          onclick: async () => {
            try {
              await navigator.clipboard.writeText(link);
              ctx.say("Link copied.");
            } catch {
              input.focus();
              input.select();
              ctx.say("Select the link and copy it (Ctrl+C, or long-press on a phone).");
            }
          },
        },
        "Copy link",
      ),
    ),
    h("p", { class: "hint" }, `Single-use; works until ${when(expires)} (${fromNow(expires)}). Send it privately.`),
  );
}

export async function mount(ctx, _route, root) {
  const links = h("div", { class: "stack" });
  const invitations = h("div");
  const accounts = h("div", { class: "list" });
  const hours = select("hours", [["24", "1 day"], ["72", "3 days"], ["168", "1 week"]], "72");
  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "Accounts"), h("p", { class: "muted" }, "Who may sign in to this neighborhood's app, and as what.")),
    h(
      "section",
      { class: "card", "aria-labelledby": "invite-title" },
      h("h2", { id: "invite-title" }, "Invite someone"),
      form(
        ctx,
        { class: "stack" },
        [choices("Role", "role", ROLES, "resident"), field("The link works for", hours), h("button", { type: "submit", class: "primary" }, "Create invitation link")],
        async (data) => {
          const inv = await post("/accounts/invitations", { role: data.get("role"), expires_in_hours: Number(data.get("hours")) });
          put(links, linkBox(ctx, `Invitation link (${inv.role})`, inv.link, inv.expires_at));
          ctx.fail(null);
          ctx.say("Invitation link created.");
          ctx.refresh();
        },
      ),
      links,
    ),
    h("section", { class: "card", "aria-labelledby": "open-title" }, h("h2", { id: "open-title" }, "Open links"), invitations),
    h("section", { class: "stack", "aria-labelledby": "acc-title" }, h("h2", { id: "acc-title" }, "Accounts"), accounts),
  );
  const act = async (call, done) => {
    try {
      const out = await call();
      ctx.fail(null);
      ctx.say(done);
      ctx.refresh();
      return out;
    } catch (error) {
      ctx.fail(error);
      return null;
    }
  };
  const refresh = async () => {
    const [list, open] = await Promise.all([get("/accounts"), get("/accounts/invitations")]);
    put(
      invitations,
      open.length
        ? h(
            "ul",
            { class: "pledges" },
            open.map((i) =>
              h(
                "li",
                { class: "pledge" },
                h("span", {}, i.kind === "reset" ? `Password reset for ${i.name}` : `Invitation as ${i.role}`, h("span", { class: "muted small" }, ` · until ${when(i.expires_at)}${i.created_by ? ` · by ${i.created_by}` : ""}`)),
                action("Revoke", () => act(() => post(`/accounts/invitations/${seg(i.id)}/revoke`), "Link revoked."), { cls: "small-button danger", label: i.kind === "reset" ? `Revoke the reset link for ${i.name}` : `Revoke the ${i.role} invitation until ${when(i.expires_at)}` }),
              ),
            ),
          )
        : empty("No open invitation or reset link."),
    );
    put(accounts, list.length ? list.map((a) => accountCard(ctx, a, act, links)) : empty("No accounts yet."));
  };
  await refresh();
  return refresh;
}

function accountCard(ctx, a, act, links) {
  const who = a.display_name ? `${a.display_name} (${a.name})` : a.name;
  const card = h(
    "article",
    { class: "card", "aria-label": `Account ${a.name}` },
    h("div", { class: "card-head" }, h("h3", {}, who), h("div", { class: "badges" }, badge(a.role === "coordinator" ? "accent" : "info", a.role), a.disabled ? badge("bad", "disabled") : null, a.name === ctx.me.name ? badge("muted", "you") : null)),
    h(
      "p",
      { class: "meta" },
      a.contact ? h("span", {}, `Contact: ${a.contact}`) : null,
      h("span", {}, `Joined ${when(a.created_at)}`),
      h("span", {}, a.last_sign_in ? `Last sign-in ${fromNow(a.last_sign_in)}` : "Never signed in"),
    ),
  );
  if (!a.disabled) {
    const other = a.role === "coordinator" ? "resident" : "coordinator";
    const name = seg(a.name);
    card.append(
      h(
        "div",
        { class: "actions" },
        action(`Make ${other}`, () => act(() => post(`/accounts/${name}/role`, { role: other }), `${a.name} is now a ${other}.`), { label: `Make ${a.name} a ${other}` }),
        action(
          "Reset link",
          async () => {
            const out = await act(() => post(`/accounts/${name}/reset`), `Reset link for ${a.name} created.`);
            if (out) put(links, linkBox(ctx, `Password reset link for ${a.name}`, out.link, out.expires_at));
            if (out) links.scrollIntoView({ block: "nearest" });
          },
          { label: `Create a password reset link for ${a.name}` },
        ),
        action(
          "Disable",
          async () => {
            if (!confirm(safeText(`Disable the account ${a.name}? Its sessions, tokens and passkeys end.`))) return;
            await act(() => post(`/accounts/${name}/disable`), `${a.name} is disabled.`);
          },
          { cls: "danger", label: `Disable ${a.name}` },
        ),
      ),
    );
  }
  return card;
}
