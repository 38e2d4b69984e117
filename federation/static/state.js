// What the dashboard last heard from the observer, and the names and links built from it.

import { duration, exactTime, h, isoTime } from "./dom.js";

export const state = {
  summary: null, // GET /api/summary, or the latest `update` pushed by /api/live
  hoods: [], // GET /api/neighborhoods
  flows: [], // GET /api/flows
  series: null, // GET /api/timeseries
  aid: null, // GET /api/aid
  audit: [], // GET /api/audit
  membership: null, // GET /api/membership
  hood: null, // GET /api/neighborhoods/{slug}, on a neighborhood's page
  goods: [], // GET /api/goods
  market: null, // GET /api/market
  pools: null, // GET /api/pools
  hours: null, // GET /api/hours
  loadedAt: 0, // when every view was last fetched (the browser's clock)
  summaryAt: 0, // when the summary in `summary` arrived (the browser's clock)
};

/** The observer's clock (times in the data are the observer's and the authors', not ours):
 * its time in the latest summary, plus what has passed here since it arrived. */
export function observerNow() {
  if (!state.summary) return Date.now();
  return state.summary.updated_at + Math.max(0, Date.now() - state.summaryAt);
}

/** A moment relative to the observer's clock: "in 40 min", "12 min ago", "just now". */
export function relative(atMs) {
  if (isoTime(atMs) === null) return "no end";
  const seconds = (atMs - observerNow()) / 1000;
  if (Math.abs(seconds) < 2) return "just now";
  return seconds >= 0 ? `in ${duration(seconds)}` : `${duration(-seconds)} ago`;
}

/**
 * Every time on every page, one way: how long ago (or how soon) as the text, the exact
 * moment ("2026-12-01 14:05", the reader's time zone) as the title, ISO 8601 in `datetime`.
 * `tickTimes` keeps the text current between updates.
 */
export function when(atMs, { never = "never" } = {}) {
  if (atMs === null || atMs === undefined) return h("span", { class: "muted" }, never);
  return h(
    "time",
    { datetime: isoTime(atMs), title: exactTime(atMs), "data-at": String(atMs) },
    relative(atMs),
  );
}

/** Bring the text of every time shown up to date with the observer's clock. */
export function tickTimes() {
  for (const el of document.querySelectorAll("time[data-at]")) {
    el.textContent = relative(Number(el.dataset.at));
  }
}

export function hoodName(slug) {
  const hood = state.hoods.find((x) => x.slug === slug);
  return hood ? hood.display_name : slug;
}

export function hoodHref(slug) {
  return `#/n/${encodeURIComponent(slug)}`;
}

export function hoodLink(slug) {
  // <bdi>: a name in a right-to-left script keeps to itself, whatever stands beside it.
  return h("a", { href: hoodHref(slug) }, h("bdi", {}, hoodName(slug)));
}

/** A warning beside a name that imitates another's or hid invisible characters (§18), or
 * null. The API's `display_name` already carries the slug of an imitating name. */
export function nameFlag(hood) {
  if (!hood || !hood.name_warning) return null;
  const text = hood.imitates ? `⚠ looks like ${hoodName(hood.imitates)}` : "⚠ hidden characters";
  return h(
    "span",
    { class: "badge warning name-warning", title: hood.name_warning, role: "note" },
    text,
  );
}

export function go(slug) {
  location.hash = hoodHref(slug);
}
