// Building the page safely, and formatting numbers for people.
//
// Every string from the API reaches the page as a text node or an attribute value: `h` and
// `s` never parse markup, so nothing the federation publishes can become HTML. And every
// string goes through `safeText` first (PROTOCOL.md §18): no bidi override, isolate or
// zero-width character from an event can reverse or hide the text beside it.

const HIDDEN = /\p{Cf}/gu; // format characters: bidi controls, zero-width, soft hyphen
const CONTROLS = /[\p{Cc}\u2028\u2029]/gu; // controls, line and paragraph separators

/** Text fit to show: format characters removed, controls as spaces (as protocol/text.py). */
export function safeText(text) {
  return String(text).replace(HIDDEN, "").replace(CONTROLS, " ");
}

const SVG_NS = "http://www.w3.org/2000/svg";

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "style") {
      // Through the CSSOM, never a style attribute: the Content-Security-Policy (no
      // 'unsafe-inline') refuses inline styles, not properties set this way.
      for (const [name, v] of Object.entries(value)) el.style.setProperty(name, String(v));
    } else {
      el.setAttribute(key, value === true ? "" : safeText(value));
    }
  }
}

function fill(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : safeText(child)); // a string becomes a text node
  }
  return el;
}

/** An HTML element: h("p", {class: "x"}, "text", h("b", {}, "bold")); null children skipped. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  return fill(el, children);
}

/** An SVG element, the same way. */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  return fill(el, children);
}

/** Replace an element's children (skipping null, which replaceChildren would print). */
export function put(el, ...children) {
  el.replaceChildren();
  return fill(el, children);
}

export function $(id) {
  return document.getElementById(id);
}

export function setText(id, text) {
  $(id).textContent = safeText(text);
}

export function badge(kind, text = kind) {
  return h("span", { class: `badge ${kind}` }, text);
}

export function empty(text) {
  return h("p", { class: "empty" }, text);
}

// ---- numbers and times ----------------------------------------------------------------------

const intFormat = new Intl.NumberFormat("en-US");

export function int(n) {
  return n === null || n === undefined ? "–" : intFormat.format(n);
}

// The federation's currency (GET /api/summary `currency`); credits until the summary is in.
let currency = { code: "CRD", name: "credits", symbol: "", minor_units: 2 };

export function setCurrency(named) {
  if (named) currency = named;
}

/** Integer cents (the currency's minor unit) as "1,234.50", exactly (no floating point on
 * the way), with as many decimals as the currency's `minor_units`. */
export function amount(cents) {
  if (cents === null || cents === undefined) return "–";
  const sign = cents < 0 ? "−" : "";
  const abs = Math.abs(cents);
  const digits = currency.minor_units;
  const scale = 10 ** digits;
  const units = `${sign}${intFormat.format(Math.floor(abs / scale))}`;
  return digits ? `${units}.${String(abs % scale).padStart(digits, "0")}` : units;
}

/** Integer cents in the federation's currency, for people, as the CLI writes them
 * (node/engine/money.py): "1,234.50 credits", or "£1,234.50" for a currency with a symbol. */
export function money(cents) {
  if (cents === null || cents === undefined) return "–";
  const number = amount(cents);
  if (!currency.symbol) return `${number} ${currency.name}`;
  return number.startsWith("−")
    ? `−${currency.symbol}${number.slice(1)}`
    : `${currency.symbol}${number}`;
}

/** A price per unit: "0.35 credits a piece". */
export function price(cents, unit) {
  return `${money(cents)} a ${unitName(1, unit)}`;
}

// Units as people say them, one and many: the eight of protocol/offers.py UNITS (PROTOCOL.md
// §10); a unit not listed (a newer node's) is shown as it is.
const UNITS = {
  gram: ["gram", "grams"],
  kilogram: ["kilogram", "kilograms"],
  millilitre: ["millilitre", "millilitres"],
  litre: ["litre", "litres"],
  piece: ["piece", "pieces"],
  dozen: ["dozen", "dozen"],
  minute: ["minute", "minutes"],
  hour: ["hour", "hours"],
};

function unitName(n, unit) {
  const names = UNITS[unit];
  return names ? names[n === 1 ? 0 : 1] : unit;
}

/** A quantity with its unit: "12 pieces", "1 dozen", "500 grams". */
export function quantity(n, unit) {
  return `${int(n)} ${unitName(n, unit)}`;
}

/** Integer quarter hours (PROTOCOL.md §20) as hours, the way protocol/hours.py
 * `hours_text` writes them: 6 → "1.5 h", 9 → "2.25 h", 4 → "1 h", −1 → "−0.25 h". */
export function hours(quarters) {
  if (quarters === null || quarters === undefined) return "–";
  const sign = quarters < 0 ? "−" : "";
  const abs = Math.abs(quarters);
  const part = ["", ".25", ".5", ".75"][abs % 4];
  return `${sign}${intFormat.format(Math.floor(abs / 4))}${part} h`;
}

export function percent(share) {
  return share === null || share === undefined ? "–" : `${Math.round(share * 100)}%`;
}

/** Seconds, for people: "8 s", "4 min", "2.5 h", "3.0 d". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

// The last moment a Date can name: a time beyond it (an offer without end) is "no end".
const LAST_MS = 8.64e15;

/** The exact moment, in the reader's time zone: "2026-12-01 14:05" (the title of every
 * time the page shows; the text says how long ago, state.js `when`). */
export function exactTime(ms) {
  if (ms === null || ms === undefined) return "–";
  if (Math.abs(ms) > LAST_MS) return "no end";
  const d = new Date(ms);
  const two = (n) => String(n).padStart(2, "0");
  const day = `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
  return `${day} ${two(d.getHours())}:${two(d.getMinutes())}`;
}

/** The same moment in ISO 8601 UTC, for a <time datetime> attribute (null if none). */
export function isoTime(ms) {
  if (ms === null || ms === undefined || Math.abs(ms) > LAST_MS) return null;
  return new Date(ms).toISOString();
}

export function plural(n, one, many = `${one}s`) {
  return `${int(n)} ${n === 1 ? one : many}`;
}

/** An event id (64 hex digits) shortened for reading; the full id goes in a tooltip. */
export function shortId(id) {
  return id.length > 12 ? `${id.slice(0, 10)}…` : id;
}
