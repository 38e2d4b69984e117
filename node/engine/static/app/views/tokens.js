// API tokens on one's own account page: for scripts (`Authorization: Bearer …`). A token
// carries its account's role, is shown once, and ends with a password change or a reset.

import { get, post, seg } from "../api.js";
import { field, h } from "../dom.js";
import { timeText } from "../format.js";
import { form } from "./account.js";

/** The API tokens card: make one (shown once, with a copy button), list and revoke. */
export async function tokensCard(ctx) {
  const list = h("ul", { class: "plain" });
  const shown = h("div", { "aria-live": "polite" });
  const refresh = async () => {
    const tokens = await get("/auth/tokens");
    list.replaceChildren(
      ...(tokens.length ? tokens : [null]).map((t) =>
        t === null
          ? h("li", { class: "muted" }, "No API token.")
          : h(
              "li",
              { class: "row" },
              h("span", {}, `${t.label} · made ${timeText(t.created_at)}`),
              h(
                "button",
                {
                  type: "button",
                  class: "secondary",
                  "aria-label": `Revoke token ${t.label}`,
                  onclick: async () => {
                    try {
                      await post(`/auth/tokens/${seg(t.id)}/revoke`);
                      ctx.say("Token revoked.");
                      await refresh();
                    } catch (error) {
                      ctx.fail(error);
                    }
                  },
                },
                "Revoke",
              ),
            ),
      ),
    );
  };
  const label = h("input", { name: "label", required: true, maxlength: 80, autocomplete: "off" });
  const card = h(
    "section",
    { class: "card", "aria-labelledby": "tok-title" },
    h("h2", { id: "tok-title" }, "API tokens"),
    h("p", { class: "muted" }, "For scripts: send it as “Authorization: Bearer <token>”. It can do what you can."),
    list,
    form(ctx, { class: "stack", "aria-label": "Make an API token" }, [field("What it is for", label), h("button", { type: "submit", class: "secondary" }, "Make a token")], async (data, el) => {
      const made = await post("/auth/tokens", { label: data.get("label").trim() });
      el.reset();
      const code = h("code", { class: "secret" }, made.token);
      shown.replaceChildren(
        h("p", {}, "Your new token, shown only now: "),
        code,
        h(
          "button",
          { type: "button", class: "secondary", onclick: () => navigator.clipboard && navigator.clipboard.writeText(made.token).then(() => ctx.say("Token copied.")) },
          "Copy token",
        ),
      );
      await refresh();
    }),
    shown,
  );
  await refresh();
  return card;
}
