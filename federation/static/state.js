// What the dashboard last heard from the observer, and the names and links built from it.

import { duration, h } from "./dom.js";

export const state = {
  summary: null, // GET /api/summary, or the latest `update` pushed by /api/live
  hoods: [], // GET /api/neighborhoods
  flows: [], // GET /api/flows
  series: null, // GET /api/timeseries
  aid: null, // GET /api/aid
  audit: [], // GET /api/audit
  membership: null, // GET /api/membership
  hood: null, // GET /api/neighborhoods/{slug}, on a neighborhood's page
  loadedAt: 0, // when every view was last fetched (the browser's clock)
};

/** The observer's clock (times in the data are the observer's and the authors', not ours). */
export function observerNow() {
  return state.summary ? state.summary.updated_at : Date.now();
}

/** A moment relative to the observer's clock: "in 40 min" or "12 min ago". */
export function relative(atMs) {
  const seconds = (atMs - observerNow()) / 1000;
  return seconds >= 0 ? `in ${duration(seconds)}` : `${duration(-seconds)} ago`;
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
