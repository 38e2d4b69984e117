// Passkeys (WebAuthn): sign in with this device's authenticator, and add or remove passkeys
// on one's own account. Browsers allow passkeys at a name (localhost, the node's domain),
// never at an IP address: there the buttons are not shown.

import { get, post, seg } from "../api.js";
import { h } from "../dom.js";
import { timeText } from "../format.js";

/** Whether this browser, at this address, can use passkeys. */
export function passkeysHere() {
  const pk = window.PublicKeyCredential;
  const ip = /^[\d.]+$|^\[?[0-9a-f:]+\]?$/i.test(location.hostname);
  return Boolean(pk && pk.parseCreationOptionsFromJSON && pk.parseRequestOptionsFromJSON && !ip);
}

/** The "Sign in with a passkey" button of the sign-in page, or nothing. */
export function passkeySignIn(ctx) {
  if (!passkeysHere()) return null;
  return h(
    "button",
    {
      type: "button",
      class: "secondary wide",
      onclick: async () => {
        try {
          const started = await post("/auth/passkey/options");
          const options = PublicKeyCredential.parseRequestOptionsFromJSON(started.options);
          const credential = await navigator.credentials.get({ publicKey: options });
          const me = await post("/auth/passkey/sign-in", { ceremony: started.ceremony, credential: credential.toJSON() });
          ctx.fail(null);
          ctx.say(`Signed in as ${me.display_name || me.name}.`);
          ctx.signedIn(me);
        } catch (error) {
          ctx.fail(error);
        }
      },
    },
    "Sign in with a passkey",
  );
}

/** The Passkeys card of one's own account page. */
export async function passkeysCard(ctx) {
  if (!passkeysHere()) {
    return h(
      "section",
      { class: "card", "aria-labelledby": "pk-title" },
      h("h2", { id: "pk-title" }, "Passkeys"),
      h("p", { class: "muted" }, "Open the app at the node's name (for example http://localhost…) to add a passkey: browsers allow them only there."),
    );
  }
  const list = h("ul", { class: "plain" });
  const card = h(
    "section",
    { class: "card", "aria-labelledby": "pk-title" },
    h("h2", { id: "pk-title" }, "Passkeys"),
    h("p", { class: "muted" }, "Sign in with this phone's or computer's screen lock instead of your password."),
    list,
  );
  const refresh = async () => {
    const keys = await get("/auth/passkeys");
    list.replaceChildren(
      ...(keys.length ? keys : [null]).map((k) =>
        k === null
          ? h("li", { class: "muted" }, "No passkey yet.")
          : h(
              "li",
              { class: "row" },
              h("span", {}, `${k.label} · added ${timeText(k.created_at)}`),
              h(
                "button",
                {
                  type: "button",
                  class: "secondary",
                  "aria-label": `Remove passkey ${k.label}`,
                  onclick: async () => {
                    try {
                      await post(`/auth/passkeys/${seg(k.id)}/remove`);
                      ctx.say("Passkey removed.");
                      await refresh();
                    } catch (error) {
                      ctx.fail(error);
                    }
                  },
                },
                "Remove",
              ),
            ),
      ),
    );
  };
  card.append(
    h(
      "button",
      {
        type: "button",
        class: "primary",
        onclick: async () => {
          try {
            const started = await post("/auth/passkeys/options");
            const options = PublicKeyCredential.parseCreationOptionsFromJSON(started.options);
            const credential = await navigator.credentials.create({ publicKey: options });
            await post("/auth/passkeys", { ceremony: started.ceremony, credential: credential.toJSON(), label: navigator.platform || "passkey" });
            ctx.say("Passkey added: you can sign in with it now.");
            await refresh();
          } catch (error) {
            ctx.fail(error);
          }
        },
      },
      "Add a passkey",
    ),
  );
  await refresh();
  return card;
}
