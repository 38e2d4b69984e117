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

/** Integer cents as "1,234.50", exactly (no floating point on the way). */
export function money(cents) {
  if (cents === null || cents === undefined) return "–";
  const sign = cents < 0 ? "−" : "";
  const abs = Math.abs(cents);
  const units = intFormat.format(Math.floor(abs / 100));
  return `${sign}${units}.${String(abs % 100).padStart(2, "0")}`;
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

export function ago(seconds) {
  if (seconds === null || seconds === undefined) return "never";
  return seconds < 2 ? "just now" : `${duration(seconds)} ago`;
}

/** "14:05" (or "2:05 PM"), in the reader's own way of writing times. */
export function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function plural(n, one, many = `${one}s`) {
  return `${int(n)} ${n === 1 ? one : many}`;
}

/** An event id (64 hex digits) shortened for reading; the full id goes in a tooltip. */
export function shortId(id) {
  return id.length > 12 ? `${id.slice(0, 10)}…` : id;
}
