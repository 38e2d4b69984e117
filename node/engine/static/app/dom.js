// Building the page safely (as the observer's dashboard, federation/static/dom.js).
//
// Every string from the API reaches the page as a text node or an attribute value: `h`
// never parses markup, and every string goes through `safeText` first (PROTOCOL.md §18):
// no bidi override or zero-width character from an event can hide the text beside it.
// No inline style anywhere: the Content-Security-Policy refuses them; classes only.

const HIDDEN = /\p{Cf}/gu; // format characters: bidi controls, zero-width, soft hyphen
const CONTROLS = /[\p{Cc}\u2028\u2029]/gu; // controls, line and paragraph separators

/** Text fit to show: format characters removed, controls as spaces. */
export function safeText(text) {
  return String(text).replace(HIDDEN, "").replace(CONTROLS, " ");
}

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "value" && "value" in el) {
      el.value = String(value);
    } else if (key === "checked" || key === "selected") {
      el[key] = Boolean(value);
    } else {
      el.setAttribute(key, value === true ? "" : safeText(value));
    }
  }
}

function fill(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : safeText(child));
  }
  return el;
}

/** An element: h("p", {class: "x"}, "text", h("b", {}, "bold")); null children skipped. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  return fill(el, children);
}

/** Replace an element's children. */
// While a live refresh runs (app.js), a list in which a person has meanwhile opened a form
// (a pledge, a commitment, a reason) is left as it is: the refresh fetched before the form
// was opened, and would sweep it away under their fingers. The next refresh redraws it.
let live = false;
export function liveRefresh(on) {
  live = on;
}

export function put(el, ...children) {
  if (live && el.querySelector("form.inline")) return el;
  el.replaceChildren();
  return fill(el, children);
}

export function $(id) {
  return document.getElementById(id);
}

export function badge(kind, text = kind) {
  return h("span", { class: `badge ${kind}` }, text.replaceAll("_", " "));
}

export function empty(text) {
  return h("p", { class: "empty" }, text);
}

let fieldCounter = 0;

/** A labelled form field: label + control (+ hint), ids wired for screen readers. */
export function field(label, control, hint) {
  const id = control.id || `f${++fieldCounter}`;
  control.id = id;
  let hintEl = null;
  if (hint) {
    hintEl = h("p", { class: "hint", id: `${id}-hint` }, hint);
    control.setAttribute("aria-describedby", hintEl.id);
  }
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hintEl);
}

/** A group of radio buttons shown as big tappable choices. */
export function choices(legend, name, options, selected, { cls = "", onchange } = {}) {
  return h(
    "fieldset",
    { class: `choices ${cls}` },
    h("legend", {}, legend),
    h(
      "div",
      { class: "choice-row" },
      options.map(([value, text]) =>
        h(
          "label",
          { class: "choice" },
          h("input", {
            type: "radio",
            name,
            value,
            checked: value === selected,
            onchange: onchange ? () => onchange(value) : null,
          }),
          h("span", {}, text),
        ),
      ),
    ),
  );
}

/** A <select> from [value, text] pairs. */
export function select(name, options, selected) {
  return h(
    "select",
    { name },
    options.map(([value, text]) => h("option", { value, selected: value === selected }, text)),
  );
}

/** A button that runs an async action, disabled while it runs. */
export function action(text, run, { cls = "", testid, label } = {}) {
  const button = h("button", { type: "button", class: cls, "data-testid": testid, "aria-label": label }, text);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await run();
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

/** A random client-chosen id (LocalId): a retried post is answered once. */
export function newId(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return `${prefix}-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}
