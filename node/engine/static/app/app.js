// The neighborhood's web app: plain ES modules, no build step, no dependencies, served by
// the node at `/` under its Content-Security-Policy (no inline script or style).
//
// app.js is the shell: who is signed in (`GET /auth/me`), the neighborhood (`GET
// /app/info`), the tabs for that role, the hash router, messages (an aria-live region) and
// live updates (`GET /live`: each `update` re-fetches the current view, debounced).

import { ApiError, get, setCsrf, whenSignedOut } from "./api.js";
import { $, h, liveRefresh, put } from "./dom.js";
import { setCurrency } from "./format.js";
import { icon } from "./icons.js";
import { go, href, parse } from "./router.js";
import * as accountViews from "./views/account.js";
import * as accountsView from "./views/accounts.js";
import * as alertsView from "./views/alerts.js";
import * as helpView from "./views/help.js";
import * as hoursView from "./views/hours.js";
import * as marketView from "./views/market.js";
import * as membershipView from "./views/membership.js";
import * as nodeView from "./views/node.js";

const DEBOUNCE_MS = 400;
const POLL_MS = 20_000; // without live updates (an older node, a buffering proxy): poll

const TABS = [
  { name: "help", label: "Help", icon: "help", view: helpView },
  { name: "market", label: "Market", icon: "market", view: marketView },
  { name: "hours", label: "Hours", icon: "clock", view: hoursView },
  { name: "alerts", label: "Alerts", icon: "alert", view: alertsView },
  { name: "membership", label: "Members", icon: "members", view: membershipView, title: "Membership" },
  { name: "account", label: "Me", title: "Your account", icon: "person", view: accountViews },
  { name: "accounts", label: "Accounts", icon: "people", view: accountsView, coordinator: true },
  { name: "node", label: "Node", icon: "node", view: nodeView, coordinator: true },
];
const PUBLIC = new Set(["sign-in", "join", "reset"]);

const ctx = {
  me: null, // {name, display_name, role, csrf, contact}
  info: null, // {slug, display_name, currency, role}
  get coordinator() {
    return this.me !== null && this.me.role === "coordinator";
  },
  get slug() {
    return this.info ? this.info.slug : "";
  },
  root: null,
  say,
  fail,
  refresh: () => schedule(),
  go: goOn,
  signedIn,
  signedOut,
};

// ---- messages -------------------------------------------------------------------------------

let sayTimer = 0;
let carry = false; // a confirmation said just before the app moves on (goOn) follows it

/** While a message shows, the page gets room below (app.css `with-message`) so its end
 *  can scroll clear of it. */
function makeRoom() {
  document.body.classList.toggle("with-message", $("status").classList.contains("shown") || !$("error").hidden);
}

/** A short confirmation, read out by screen readers (role=status). */
function say(text) {
  const box = $("status");
  box.textContent = text;
  box.classList.add("shown");
  makeRoom();
  clearTimeout(sayTimer);
  sayTimer = setTimeout(unsay, 6000);
}

function unsay() {
  const box = $("status");
  clearTimeout(sayTimer);
  box.classList.remove("shown");
  box.textContent = "";
  makeRoom();
}

/** Move to a page as the app's own next step: the confirmation just said goes along
 *  ("Your call for help is sent" on the list of calls). A person's own navigation (a tab,
 *  a link) clears it, so it never covers the new page. */
function goOn(path) {
  carry = true;
  go(path);
}

/** An error in words (role=alert); null clears it. */
function fail(error) {
  const box = $("error");
  if (!error) {
    box.hidden = true;
    box.replaceChildren();
    makeRoom();
    return;
  }
  const text = error instanceof ApiError || error instanceof Error ? error.message : String(error);
  put(
    box,
    h("span", {}, text),
    h("button", { type: "button", class: "link-button", onclick: () => fail(null) }, "Dismiss"),
  );
  box.hidden = false;
  makeRoom();
}

// ---- who is here ----------------------------------------------------------------------------

async function loadMe() {
  ctx.me = await get("/auth/me");
  setCsrf(ctx.me.csrf);
}

async function loadInfo() {
  ctx.info = await get("/app/info");
  setCurrency(ctx.info.currency);
  $("hood-name").textContent = ctx.info.display_name || ctx.info.slug;
}

function signedIn(me) {
  ctx.me = me;
  setCsrf(me.csrf);
  const then = wanted && !PUBLIC.has(parse(wanted).name) ? wanted : "help";
  wanted = "";
  start()
    .catch(fail)
    .then(() => goOn(then));
}

function signedOut() {
  ctx.me = null;
  setCsrf("");
  stopLive();
  $("tabs").hidden = true;
  $("who").hidden = true;
  go("sign-in");
}

let wanted = ""; // the page asked for before signing in

whenSignedOut(() => {
  if (ctx.me === null) return;
  wanted = location.hash;
  signedOut();
  fail(new Error("Please sign in (your session ended)."));
});

// ---- tabs -----------------------------------------------------------------------------------

function tabsFor() {
  return TABS.filter((t) => !t.coordinator || ctx.coordinator);
}

function renderTabs(current) {
  const nav = $("tabs");
  put(
    nav,
    h(
      "ul",
      {},
      tabsFor().map((t) =>
        h(
          "li",
          {},
          h(
            "a",
            { href: href(t.name), "aria-current": t.name === current ? "page" : null },
            icon(t.icon),
            h("span", {}, t.label),
          ),
        ),
      ),
    ),
  );
  nav.hidden = false;
  const who = $("who");
  who.textContent = ctx.me.display_name || ctx.me.name;
  who.setAttribute("aria-label", `Your account: ${who.textContent} (${ctx.me.role})`);
  who.hidden = false;
}

// ---- routing --------------------------------------------------------------------------------

let current = null; // {name, refresh}
let pending = null; // an error to show on the page a redirect leads to
let mountSeq = 0;

async function show() {
  const route = parse();
  const seq = ++mountSeq;
  const main = $("view");
  ctx.root = main;
  fail(pending);
  pending = null;
  if (!carry) unsay();
  carry = false;
  if (PUBLIC.has(route.name) || ctx.me === null) {
    $("tabs").hidden = ctx.me === null;
    const page = PUBLIC.has(route.name) ? route.name : "sign-in";
    if (page !== route.name) {
      go("sign-in");
      return;
    }
    current = null;
    put(main);
    await accountViews.mountPublic(ctx, route);
    focusHeading(main);
    return;
  }
  let tab = tabsFor().find((t) => t.name === route.name);
  if (!tab) {
    const known = TABS.find((t) => t.name === route.name);
    if (known && route.name) pending = new Error(`The ${known.title || known.label} page is for coordinators.`);
    go("help");
    return;
  }
  renderTabs(tab.name);
  document.title = `${tab.title || tab.label} · ${ctx.info ? ctx.info.display_name : "coopnet"}`;
  put(main, h("p", { class: "loading" }, "Loading…"));
  const root = h("div", { class: "page" });
  let refresh;
  try {
    refresh = await tab.view.mount(ctx, route, root);
  } catch (error) {
    if (seq !== mountSeq) return;
    put(main, h("h1", { tabindex: "-1" }, tab.title || tab.label), h("p", { class: "empty" }, "This page could not be loaded."));
    fail(error);
    return;
  }
  if (seq !== mountSeq) return; // another route was asked for meanwhile
  put(main, root);
  current = { name: tab.name, root, refresh: refresh || null };
  focusHeading(main);
}

let firstShow = true;

/** After a navigation, focus the new page's heading (a screen reader announces it, and
 *  the next Tab starts inside the page); on the first load, leave focus where it is. */
function focusHeading(main) {
  const h1 = main.querySelector("h1");
  if (h1) {
    h1.setAttribute("tabindex", "-1");
    if (!firstShow) h1.focus({ preventScroll: true });
  }
  firstShow = false;
  window.scrollTo(0, 0);
}

// ---- refresh: live updates, debounced; held while a person fills in a form in the list ----

let timer = 0;
let running = false;
let again = false;

function schedule(delay = DEBOUNCE_MS) {
  clearTimeout(timer);
  timer = setTimeout(runRefresh, delay);
}

async function runRefresh() {
  if (!current || !current.refresh) return;
  if (running) {
    again = true;
    return;
  }
  // A form a person has opened inside a list (a pledge, a reason) is not swept away.
  if (current.root.querySelector("form.inline")) {
    schedule(2000);
    return;
  }
  running = true;
  liveRefresh(true);
  try {
    await current.refresh();
  } catch (error) {
    fail(error);
  } finally {
    liveRefresh(false);
    running = false;
    // A form opened while it ran kept its list as it was: look again once it is closed.
    if (current && current.root.querySelector("form.inline")) again = true;
    if (again) {
      again = false;
      schedule();
    }
  }
}

let source = null;
let pollTimer = 0;

function setLive(mode, text) {
  const live = $("live");
  live.hidden = false;
  live.className = `live ${mode}`;
  $("live-text").textContent = text;
}

function startLive() {
  stopLive();
  if (!("EventSource" in window)) {
    setLive("off", "polling");
    pollTimer = setInterval(() => schedule(0), POLL_MS);
    return;
  }
  // Requests kept in the neighborhood are no events (nothing on the bus): a slow poll too.
  pollTimer = setInterval(() => schedule(0), POLL_MS * 3);
  source = new EventSource("/live");
  source.addEventListener("open", () => setLive("on", "live"));
  source.addEventListener("update", () => {
    setLive("on", "live");
    schedule();
  });
  source.addEventListener("error", () => {
    setLive("off", "reconnecting…");
    if (source && source.readyState === EventSource.CLOSED) {
      setTimeout(() => ctx.me && startLive(), 5000);
    }
  });
}

function stopLive() {
  if (source) source.close();
  source = null;
  clearInterval(pollTimer);
}

// ---- start ----------------------------------------------------------------------------------

async function start() {
  await loadInfo();
  startLive();
}

async function boot() {
  window.addEventListener("hashchange", show);
  const route = parse();
  if (route.name === "join" || route.name === "reset") {
    await show(); // a link from an invitation: no session needed, none asked for
    return;
  }
  try {
    await loadMe();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      ctx.me = null;
      wanted = location.hash;
      if (route.name !== "sign-in") go("sign-in");
      else await show();
      return;
    }
    put($("view"), h("h1", {}, "coopnet"), h("p", { class: "empty" }, "The app could not start."));
    fail(error);
    return;
  }
  try {
    await start();
  } catch (error) {
    fail(error);
  }
  if (!route.name || route.name === "sign-in") go("help");
  else await show();
}

boot();
