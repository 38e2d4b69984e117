// The observer's dashboard: vanilla JS modules, no dependencies, no build step.
//
// Data comes from the observer's JSON API (federation/dashboard.py). `/api/live` pushes the
// summary whenever the observer stores events; each push re-fetches the other views.
// Routes: `#/` is the overview, `#/n/<slug>` a neighborhood's page.

import { balanceBars, seriesCharts } from "./charts.js";
import {
  $,
  duration,
  empty,
  h,
  hours,
  int,
  money,
  percent,
  plural,
  put,
  setCurrency,
  setText,
} from "./dom.js";
import { flowGraph } from "./graph.js";
import { go, hoodLink, hoodName, nameFlag, state, tickTimes, when } from "./state.js";
import {
  aidList,
  alertList,
  applicantsList,
  findingsList,
  goodsTable,
  hoodFlows,
  hoodsTable,
  hoursTable,
  membershipBadge,
  needsTable,
  offersTable,
  poolsTable,
  rejectedNote,
} from "./views.js";

const URGENCIES = ["critical", "high", "normal", "low"];
const POLL_MS = 30_000; // when live updates stall (say, behind a buffering proxy), poll
const QUIET_S = 86_400; // a neighborhood silent this long is worth a look
const TICK_MS = 15_000; // how often "5 min ago" is brought up to date between updates

// ---- data ---------------------------------------------------------------------------------

async function getJSON(path) {
  const response = await fetch(path, { headers: { accept: "application/json" } });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function takeSummary(summary) {
  // Keep the newest: a fetched summary may arrive after a pushed one.
  if (!state.summary || summary.updated_at >= state.summary.updated_at) {
    state.summary = summary;
    state.summaryAt = Date.now();
    setCurrency(summary.currency);
  }
}

async function loadAll(withSummary) {
  const route = currentRoute();
  const [summary, hoods, flows, goods, market, series, aid, audit, membership, pools, hours] =
    await Promise.all([
      withSummary ? getJSON("/api/summary") : null,
      getJSON("/api/neighborhoods"),
      getJSON("/api/flows"),
      getJSON("/api/goods"),
      getJSON("/api/market"),
      getJSON("/api/timeseries"),
      getJSON("/api/aid"),
      getJSON("/api/audit"),
      getJSON("/api/membership"),
      getJSON("/api/pools"),
      getJSON("/api/hours"),
    ]);
  if (summary) takeSummary(summary);
  Object.assign(state, { hoods, flows, goods, market, series, aid, audit, membership, pools, hours });
  // Only a neighborhood the observer knows is fetched: no 404 for a mistyped address.
  const known = route.view === "hood" && hoods.some((x) => x.slug === route.slug);
  state.hood = known ? await getJSON(`/api/neighborhoods/${encodeURIComponent(route.slug)}`) : null;
}

let inFlight = null;
let again = false;

/** Re-fetch every view. Calls made while one runs fold into one more run after it. */
function refresh({ withSummary = false } = {}) {
  if (inFlight) {
    again = true;
    return inFlight;
  }
  inFlight = (async () => {
    let summaryToo = withSummary;
    do {
      again = false;
      try {
        await loadAll(summaryToo);
        state.loadedAt = Date.now();
        showLoadError(null);
      } catch (error) {
        showLoadError(error);
      }
      summaryToo = false;
    } while (again);
    render();
  })().finally(() => {
    inFlight = null;
  });
  return inFlight;
}

function showLoadError(error) {
  const el = $("load-error");
  el.hidden = !error;
  el.textContent = error ? `Could not load the latest data (${error.message}); retrying.` : "";
}

function connectLive() {
  if (!("EventSource" in window)) {
    setLive("off", "polling");
    return;
  }
  const source = new EventSource("/api/live");
  source.addEventListener("open", () => setLive("on", "live"));
  source.addEventListener("error", () => {
    // The browser reconnects by itself, unless it gave up (CLOSED): then open a new one.
    setLive("off", "reconnecting…");
    if (source.readyState === EventSource.CLOSED) setTimeout(connectLive, 3000);
  });
  source.addEventListener("update", (event) => {
    setLive("on", "live");
    try {
      takeSummary(JSON.parse(event.data));
    } catch (error) {
      showLoadError(error);
      return;
    }
    renderSummary();
    refresh();
  });
}

function setLive(mode, text) {
  $("live").className = `live ${mode}`;
  setText("live-text", text);
}

// ---- routing ------------------------------------------------------------------------------

function currentRoute() {
  const match = /^#\/n\/([^/]+)$/.exec(location.hash);
  if (!match) return { view: "overview" };
  try {
    return { view: "hood", slug: decodeURIComponent(match[1]) };
  } catch {
    return { view: "overview" }; // a malformed address
  }
}

window.addEventListener("hashchange", () => {
  const route = currentRoute();
  if (route.view === "hood" && state.hood && state.hood.slug !== route.slug) state.hood = null;
  render();
  window.scrollTo(0, 0);
  if (route.view === "hood") refresh();
});

/** The flow graph's drawing width: the column it sits in, up to 640 px. */
function graphWidth() {
  const viewport = document.documentElement.clientWidth;
  return viewport < 980 ? Math.max(300, Math.min(640, viewport - 56)) : 640;
}

let drawnWidth = graphWidth();
let resizeTimer = 0;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    if (graphWidth() !== drawnWidth) render();
  }, 150);
});

// ---- rendering ----------------------------------------------------------------------------

function render() {
  renderSummary();
  const route = currentRoute();
  $("overview").hidden = route.view !== "overview";
  $("hood-page").hidden = route.view !== "hood";
  drawnWidth = graphWidth();
  const federation = state.summary ? state.summary.federation : "coopnet";
  if (route.view === "overview") {
    renderOverview();
    document.title = `${federation} · coopnet observer`;
  } else {
    renderHoodPage(route.slug);
    document.title = `${hoodName(route.slug)} · ${federation}`;
  }
}

function setTone(id, tone) {
  const card = $(id);
  card.classList.remove("good", "warn", "bad");
  if (tone) card.classList.add(tone);
}

function renderSummary() {
  const sum = state.summary;
  if (!sum) return;
  setText("federation-name", sum.federation);
  const progress = sum.caught_up ? "caught up" : `catching up (stream seq ${int(sum.stream_seq)})`;
  const net = `net ${sum.net.slice(0, 12)}…`;
  setText("federation-meta", `observed by ${sum.observer} · ${net} · ${progress}`);
  put($("updated-at"), "updated ", when(sum.updated_at));

  const applicants = state.membership ? state.membership.by_status.applicant || 0 : 0;
  setText("hoods-count", int(sum.neighborhoods));
  setText(
    "hoods-sub",
    plural(sum.members, "member") + (applicants ? ` · ${plural(applicants, "applicant")}` : ""),
  );

  const silence = sum.oldest_silence_s;
  setText("events-count", int(sum.events));
  setText(
    "events-sub",
    silence === null ? "none yet" : `all heard from within ${duration(silence)}`,
  );
  setTone("card-events", silence !== null && silence > QUIET_S ? "warn" : "");

  const trades = sum.trades;
  setText("trades-settled", int(trades.settled));
  setText("trades-count", int(trades.count));
  const disputed = trades.disputed ? ` · ${int(trades.disputed)} disputed` : "";
  setText("trades-sub", ` · ${int(trades.open)} open${disputed}`);
  setTone("card-trades", trades.disputed ? "warn" : "");
  setText("volume", money(trades.volume));

  const balanced = sum.ledger_sum === 0;
  setText("ledger-sum", balanced ? `✓ ${money(0)}` : `✗ ${money(sum.ledger_sum)}`);
  setText(
    "ledger-sub",
    balanced
      ? "balances sum to 0 ✓"
      : `ALARM: balances sum to ${money(sum.ledger_sum)}, not 0`,
  );
  setTone("card-ledger", balanced ? "good" : "bad");

  const needs = sum.needs_met_share;
  setText("needs-met", percent(needs));
  const needsNote = "of posted needs met by federation trade";
  setText("needs-sub", needs === null ? "no needs posted yet" : needsNote);

  const waiting = sum.aid.open_by_urgency;
  const open = URGENCIES.reduce((n, u) => n + (waiting[u] || 0), 0);
  const alerts = sum.aid.alerts_open.length;
  const parts = URGENCIES.filter((u) => waiting[u]).map((u) => `${int(waiting[u])} ${u}`);
  if (!parts.length) parts.push("none waiting");
  if (alerts) parts.push(plural(alerts, "alert"));
  setText("aid-open", int(open));
  setText("aid-sub", parts.join(" · "));
  setTone("card-aid", waiting.critical ? "bad" : open || alerts ? "warn" : "");

  const { critical, warning } = sum.audit;
  setText("audit-critical", critical ? `${int(critical)} critical` : "✓ 0 critical");
  setText("audit-sub", warning ? plural(warning, "warning") : "no warnings");
  setTone("card-audit", critical ? "bad" : warning ? "warn" : "good");

  const alarms = [];
  if (critical) alarms.push(`${plural(critical, "critical audit finding")}: records are in doubt.`);
  if (!balanced) alarms.push(`The ledger does not sum to zero (${money(sum.ledger_sum)}).`);
  const full = (sum.quota && sum.quota.full) || [];
  const near = (sum.quota && sum.quota.near) || [];
  if (full.length) alarms.push(`At its bus quota, its events refused: ${full.join(", ")}.`);
  if (near.length) alarms.push(`Near its bus quota: ${near.join(", ")}.`);
  const banner = $("critical-banner");
  const onOverview = currentRoute().view === "overview";
  const key = `${alarms.join(" ")}|${onOverview}`;
  if (banner.dataset.key === key) return; // unchanged: not announced again
  banner.dataset.key = key;
  banner.hidden = alarms.length === 0;
  put(
    banner,
    h("strong", {}, "⚠ "),
    alarms.join(" "),
    " ",
    critical && onOverview
      ? h(
          "button",
          { type: "button", class: "link", onclick: () => $("audit-panel").scrollIntoView() },
          "See the findings",
        )
      : null,
  );
}

let drawnGraph = "";

/** Flows with the goods each carried (GET /api/goods), for the graph's arrows. */
function withGoods(flows) {
  return flows.map((f) => ({
    ...f,
    goods: state.goods.filter((g) => g.from === f.from && g.to === f.to),
  }));
}

function renderOverview() {
  // Redrawn only when what it shows changed, so focus and pointing survive an update.
  const shown = state.hoods.map((x) => [x.slug, x.display_name, x.membership, x.balance]);
  const graphKey = JSON.stringify([drawnWidth, shown, state.flows, state.goods]);
  if (graphKey !== drawnGraph) {
    const graph = flowGraph(state.hoods, withGoods(state.flows), {
      id: "flow-graph",
      width: drawnWidth,
      onSelect: go,
    });
    put($("flow-graph-box"), graph);
    drawnGraph = graphKey;
  }
  put($("series"), seriesCharts(state.series));
  put($("balances"), balanceBars(state.hoods, hoodLink));
  renderAid();
  put($("audit-list"), findingsList(state.audit));
  put($("rejected"), rejectedNote(state.summary && state.summary.rejected));
  put($("hoods-table"), hoodsTable(state.hoods));
  put($("goods-table"), goodsTable(state.goods));
  put($("offers-table"), offersTable(state.market));
  put($("needs-table"), needsTable(state.market));
  renderPools();
  renderHours();
  const m = state.membership;
  if (m) {
    const counts = Object.entries(m.by_status).sort((a, b) => b[1] - a[1]);
    const note = counts.map(([status, n]) => `${int(n)} ${status}`).join(" · ");
    setText("membership-note", note ? `Membership: ${note}` : "");
    put($("applicants"), applicantsList(m.applicants));
  }
}

/** Pooled purchases (GET /api/pools): what they bought and saved, and each pool. */
function renderPools() {
  const pools = state.pools;
  if (!pools) return;
  const t = pools.totals;
  const stats = [`${plural(t.count, "pool")}`];
  if (t.open) stats.push(`${int(t.open)} open`);
  if (t.closed) stats.push(`${int(t.closed)} closed`);
  if (t.delivered) stats.push(`${int(t.delivered)} delivered: ${plural(t.cases_bought, "case")}`);
  if (t.cancelled) stats.push(`${int(t.cancelled)} cancelled`);
  if (t.saved) stats.push(`pooling saved ${money(t.saved)} (against the single-unit prices organizers declared)`);
  setText("pools-stats", t.count ? stats.join(" · ") : "Co-ops buying together by the case.");
  put($("pools-table"), poolsTable(pools));
}

/** Hours between neighborhoods (GET /api/hours): given and received, as hours. */
function renderHours() {
  const x = state.hours;
  if (!x) return;
  const sum = state.summary ? state.summary.hours_ledger_sum : 0;
  const moved = `${hours(x.quarters)} signed over in ${plural(x.transfers, "transfer")}`;
  const stats = x.transfers
    ? `${moved}; the hour ledger sums to ${hours(sum)}${sum === 0 ? " ✓" : " ✗"}`
    : "Time given and received, an hour for an hour, in its own ledger.";
  setText("hours-stats", stats);
  put($("hours-table"), hoursTable(x.neighborhoods));
}

function renderAid() {
  const aid = state.aid;
  if (!aid) return;
  const stats = [`${plural(aid.requests, "call")} reached the federation`];
  if (aid.fulfilled) stats.push(`${int(aid.fulfilled)} fulfilled`);
  if (aid.median_minutes_to_fulfil !== null) {
    const median = aid.median_minutes_to_fulfil;
    stats.push(`median ${median} min to fulfil (90% within ${aid.p90_minutes_to_fulfil})`);
  }
  if (aid.escalated_after_waiting_share !== null) {
    stats.push(`${percent(aid.escalated_after_waiting_share)} escalated after waiting`);
  }
  setText("aid-stats", stats.join(" · "));
  put($("alerts"), alertList(aid.alerts_open));
  put($("aid-list"), aidList(aid.open));
}

// ---- a neighborhood's page ----------------------------------------------------------------

function card(title, big, sub, tone = "") {
  return h(
    "article",
    { class: `card ${tone}` },
    h("h2", {}, title),
    h("p", { class: "big" }, big),
    h("p", { class: "sub" }, sub),
  );
}

function panel(title, ...content) {
  const head = h("div", { class: "panel-head" }, h("h2", {}, title));
  return h("section", { class: "panel" }, head, content);
}

/** The open market (GET /api/market) of one neighborhood: its own offers and needs. */
function hoodMarket(slug) {
  const m = state.market || { offers: [], needs: [] };
  const offers = m.offers.filter((o) => o.seller === slug);
  const needs = m.needs.filter((n) => n.buyer === slug);
  return { offers, needs, offers_total: offers.length, needs_total: needs.length };
}

function renderHoodPage(slug) {
  const page = $("hood-page");
  const back = h("p", { class: "back" }, h("a", { href: "#/" }, "← Federation overview"));
  const x = state.hood;
  if (!x || x.slug !== slug) {
    const unknown = state.loadedAt > 0 && !state.hoods.some((row) => row.slug === slug);
    put(
      page,
      back,
      h("h2", { class: "hood-title" }, slug),
      empty(unknown ? `The observer has seen no neighborhood “${slug}”.` : "Loading…"),
    );
    return;
  }
  let standing = "even";
  // Trades and pooled purchases settle on the same ledger (PROTOCOL.md §12, §19).
  if (x.balance > 0) standing = "in credit: was paid more than it paid";
  if (x.balance < 0) standing = "in debit: paid more than it was paid";
  const aid = state.aid || { open: [], alerts_open: [] };
  put(
    page,
    back,
    h(
      "div",
      { class: "hood-head" },
      h("h2", { class: "hood-title" }, h("bdi", {}, x.display_name)),
      membershipBadge(x.membership),
      nameFlag(x),
      h("span", { class: "muted" }, `${x.slug} · area ${x.area || "–"}`),
    ),
    h(
      "section",
      { class: "cards", "aria-label": `${x.display_name} at a glance` },
      card("Balance", money(x.balance), standing, x.balance > 0 ? "good" : ""),
      card("Sold", money(x.volume_sold), `in ${plural(x.trades_sold, "settled trade")}`),
      card("Bought", money(x.volume_bought), `in ${plural(x.trades_bought, "settled trade")}`),
      card("Offers open", int(x.offers_open), "on the federation's market"),
      card("Events", int(x.events), `head at seq ${int(x.head)}`),
      card(
        "Last heard",
        when(x.last_event_at),
        x.last_event_at === null ? "no events yet" : "its latest event, by its clock",
        x.liveness_s !== null && x.liveness_s > QUIET_S ? "warn" : "",
      ),
      card("Calls for help", int(x.aid_requested), "raised to the federation"),
      card(
        "Hours",
        hours(x.hours_balance),
        `given ${hours(x.hours_given)} · received ${hours(x.hours_received)}`,
        x.hours_balance > 0 ? "good" : "",
      ),
      card(
        "Pooled purchases",
        money(x.pool_paid),
        x.pool_earned ? `paid · ${money(x.pool_earned)} paid to it` : "paid for pooled shares",
      ),
      card("Help given", int(x.aid_pledges_accepted), "pledges accepted by others"),
    ),
    h(
      "div",
      { class: "grid two" },
      panel(
        "Trade with other neighborhoods",
        h(
          "div",
          { class: "graph-box" },
          flowGraph(state.hoods, withGoods(state.flows), { focus: slug, width: drawnWidth, onSelect: go }),
        ),
      ),
      h(
        "div",
        { class: "stack" },
        panel("Its open offers", h("div", { class: "table-wrap" }, offersTable(hoodMarket(slug)))),
        panel("Its open needs", h("div", { class: "table-wrap" }, needsTable(hoodMarket(slug)))),
      ),
    ),
    panel(
      "Settled trade, by partner",
      h("div", { class: "table-wrap" }, hoodFlows(slug, x.flows, x.goods)),
    ),
    h(
      "div",
      { class: "grid two" },
      panel(
        "Open calls for help and alerts",
        alertList(aid.alerts_open.filter((a) => a.author === slug)),
        aidList(aid.open.filter((r) => r.requester === slug), { showRequester: false }),
      ),
      h(
        "section",
        { class: "panel", id: "hood-audit" },
        h("div", { class: "panel-head" }, h("h2", {}, "Audit findings")),
        findingsList(x.findings, { showAuthor: false }),
      ),
    ),
  );
}

// ---- start --------------------------------------------------------------------------------

refresh({ withSummary: true });
connectLive();
setInterval(tickTimes, TICK_MS);
setInterval(() => {
  if (Date.now() - state.loadedAt > POLL_MS) refresh({ withSummary: true });
}, POLL_MS / 3);
