// Signing in, joining from an invitation link, resetting a password from a link (public
// pages), and one's own account: who, change password, sign out.

import { ApiError, post } from "../api.js";
import { field, h, put } from "../dom.js";
import { amount, readMoney, timeText } from "../format.js";
import { passkeySignIn, passkeysCard } from "./passkeys.js";
import { tokensCard } from "./tokens.js";

const MIN_PASSWORD = 10;

function passwordPair(labelNew = "New password") {
  const first = h("input", { type: "password", name: "password", autocomplete: "new-password", required: true, minlength: MIN_PASSWORD });
  const again = h("input", { type: "password", name: "password2", autocomplete: "new-password", required: true, minlength: MIN_PASSWORD });
  return {
    fields: [
      field(labelNew, first, `At least ${MIN_PASSWORD} characters.`),
      field("Repeat the password", again),
    ],
    value() {
      if (first.value !== again.value) {
        again.setCustomValidity("The two passwords differ.");
        again.reportValidity();
        return null;
      }
      again.setCustomValidity("");
      return first.value;
    },
    reset() {
      again.setCustomValidity("");
    },
  };
}

/** A form whose submit runs `run`, its button disabled meanwhile, errors said in words. */
export function form(ctx, attrs, children, run) {
  const el = h("form", { novalidate: false, ...attrs }, children);
  el.addEventListener("input", () => {
    for (const i of el.querySelectorAll("input")) i.setCustomValidity("");
  });
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    const buttons = el.querySelectorAll("button[type=submit]");
    buttons.forEach((b) => (b.disabled = true));
    try {
      await run(new FormData(el), el);
    } catch (error) {
      ctx.fail(error);
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  });
  return el;
}

/** Run `call` (an API step), then say `done`, clear the error and refresh; or say its error. */
export async function signed(ctx, call, done) {
  try {
    await call();
    ctx.fail(null);
    ctx.say(done);
    ctx.refresh();
  } catch (error) {
    ctx.fail(error);
  }
}

/** An amount field in the currency, filled with `cents` when given. No `pattern`:
 * `moneyIn` says in words what is wrong (too many decimals, not a number). */
export function moneyInput(name, cents, required = true) {
  return h("input", { name, inputmode: "decimal", autocomplete: "off", required, value: cents === null || cents === undefined ? "" : amount(cents).replaceAll(",", "") });
}

/** The amount typed in the form's field `name`, in integer cents (null when empty); an
 * Error naming `label` when it does not read as an amount (format.js readMoney). */
export function moneyIn(data, name, label) {
  const raw = String(data.get(name) || "").trim();
  if (!raw) return null;
  const { cents: value, error } = readMoney(raw);
  if (error) throw new Error(`${label}: ${error}`);
  return value;
}

function signIn(ctx) {
  const name = h("input", { name: "name", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: "false" });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  return h(
    "section",
    { class: "narrow" },
    h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, "Sign in with the name and password of your neighborhood account."),
    form(
      ctx,
      { class: "card stack", "aria-label": "Sign in" },
      [field("Name", name), field("Password", password), h("button", { type: "submit", class: "primary wide" }, "Sign in"), passkeySignIn(ctx)],
      async (data) => {
        const me = await post("/auth/sign-in", { name: data.get("name").trim(), password: data.get("password") });
        ctx.fail(null);
        ctx.say(`Signed in as ${me.display_name || me.name}.`);
        ctx.signedIn(me);
      },
    ),
    h("p", { class: "muted small" }, "No account yet? Ask a coordinator of your co-op for an invitation link. Forgot your password? A coordinator can send you a reset link."),
  );
}

async function invitation(ctx, token, kind) {
  try {
    const found = await post("/auth/invitation", { invitation: token });
    if (found.kind !== kind) throw new ApiError(400, "invitation_not_valid", `This is a ${found.kind} link, not a ${kind} link.`);
    return found;
  } catch (error) {
    ctx.fail(error);
    return null;
  }
}

async function join(ctx, token) {
  const box = h("section", { class: "narrow" }, h("h1", {}, "Join your neighborhood"));
  const found = await invitation(ctx, token, "join");
  if (!found) {
    box.append(
      h("p", {}, "This invitation link cannot be used: it may have been used already, revoked or expired. Ask a coordinator for a new one."),
      h("p", {}, h("a", { href: "#/sign-in" }, "Go to sign in")),
    );
    return box;
  }
  const pair = passwordPair("Password");
  const name = h("input", { name: "name", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: "false", maxlength: 64, value: found.name || "" });
  const display = h("input", { name: "display_name", autocomplete: "name", maxlength: 80 });
  const contact = h("input", { name: "contact", autocomplete: "tel", maxlength: 140 });
  box.append(
    h("p", {}, "You are invited as a ", h("strong", { "data-testid": "invited-role" }, found.role), ". ", found.expires_at ? `The link works until ${timeText(found.expires_at)}.` : ""),
    form(
      ctx,
      { class: "card stack", "aria-label": "Create your account" },
      [
        field("Name (to sign in)", name, "You sign in with it; neighbors see your display name."),
        field("Display name (optional)", display, "How your neighbors see you."),
        ...pair.fields,
        field("Contact (optional)", contact, "A phone number or how coordinators can reach you. Only coordinators see it."),
        h("button", { type: "submit", class: "primary wide" }, "Create account"),
      ],
      async (data) => {
        const password = pair.value();
        if (password === null) return;
        const body = { invitation: token, name: data.get("name").trim(), password };
        if (data.get("display_name").trim()) body.display_name = data.get("display_name").trim();
        if (data.get("contact").trim()) body.contact = data.get("contact").trim();
        const me = await post("/auth/join", body);
        history.replaceState(null, "", "#/help"); // the token is spent: out of the history
        ctx.say(`Welcome, ${me.display_name || me.name}.`);
        ctx.signedIn(me);
      },
    ),
  );
  return box;
}

async function reset(ctx, token) {
  const box = h("section", { class: "narrow" }, h("h1", {}, "Choose a new password"));
  const found = await invitation(ctx, token, "reset");
  if (!found) {
    box.append(
      h("p", {}, "This reset link cannot be used: it may have been used already or expired. Ask a coordinator for a new one."),
      h("p", {}, h("a", { href: "#/sign-in" }, "Go to sign in")),
    );
    return box;
  }
  const pair = passwordPair();
  box.append(
    h("p", {}, "For the account ", h("strong", {}, found.name), ". Every other session of this account ends."),
    form(
      ctx,
      { class: "card stack", "aria-label": "New password" },
      [...pair.fields, h("button", { type: "submit", class: "primary wide" }, "Set password and sign in")],
      async () => {
        const password = pair.value();
        if (password === null) return;
        const me = await post("/auth/reset", { invitation: token, password });
        history.replaceState(null, "", "#/help");
        ctx.say("Your password is changed.");
        ctx.signedIn(me);
      },
    ),
  );
  return box;
}

/** The pages anyone may see: sign-in, join, reset. */
export async function mountPublic(ctx, route) {
  document.title = "Sign in · coopnet";
  let page;
  if (route.name === "join") page = await join(ctx, route.arg);
  else if (route.name === "reset") page = await reset(ctx, route.arg);
  else page = signIn(ctx);
  put(ctx.root, page);
}

/** Own account: who I am, change password, sign out. */
export async function mount(ctx, _route, root) {
  const me = ctx.me;
  const rows = [
    ["Name", me.name],
    ["Display name", me.display_name || "–"],
    ["Role", me.role],
    ["Contact", me.contact || "–"],
    ["Neighborhood", ctx.info ? `${ctx.info.display_name} (${ctx.info.slug})` : "–"],
  ];
  root.append(
    h("h1", {}, "Your account"),
    h("section", { class: "card" }, h("dl", { class: "facts" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))),
  );
  const current = h("input", { type: "password", name: "current", autocomplete: "current-password", required: true });
  const pair = passwordPair();
  root.append(
    h(
      "section",
      { class: "card", "aria-labelledby": "pw-title" },
      h("h2", { id: "pw-title" }, "Change password"),
      form(
        ctx,
        { class: "stack" },
        [field("Current password", current), ...pair.fields, h("button", { type: "submit", class: "primary" }, "Change password")],
        async (data, el) => {
          const password = pair.value();
          if (password === null) return;
          await post("/auth/password", { current: data.get("current"), new: password });
          el.reset();
          ctx.say("Your password is changed. Your other sessions have ended.");
        },
      ),
    ),
    await passkeysCard(ctx),
    await tokensCard(ctx),
    h(
      "section",
      { class: "card", "aria-labelledby": "out-title" },
      h("h2", { id: "out-title" }, "Sign out"),
      h("p", { class: "muted" }, "Ends this session on this device."),
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          onclick: async () => {
            try {
              await post("/auth/sign-out");
            } catch (error) {
              if (!(error instanceof ApiError) || error.status !== 401) {
                ctx.fail(error);
                return;
              }
            }
            ctx.signedOut();
            ctx.say("Signed out.");
          },
        },
        "Sign out",
      ),
    ),
  );
  return null;
}
