// Numbers, money and times for people, in the viewer's own language and time zone.

const intFormat = new Intl.NumberFormat();
// The federation's currency, as GET /app/info names it (the charter's, PROTOCOL.md §16.1):
// amounts on the API are integers of its minor unit ("cents"), `minor_units` decimals each.
let currency = { name: "credits", code: "CRD", symbol: "", minor_units: 2 };

export function setCurrency(c) {
  if (c && typeof c.name === "string" && Number.isInteger(c.minor_units)) currency = { symbol: "", ...c };
}

export function currencyName() {
  return currency.name;
}

/** The currency's symbol ("£"), or "" when it has none (then amounts read "4.50 credits"). */
export function currencySymbol() {
  return currency.symbol || "";
}

export function int(n) {
  return n === null || n === undefined ? "–" : intFormat.format(n);
}

// Amounts group thousands with ',' and mark decimals with '.' whatever the viewer's language:
// in a language that groups with '.' (de, fr-CH...) 1234.50 would otherwise read "1.234.50".
// The '.' is the decimal point readMoney and the CLI read; ',' they refuse, never misread.
const unitsFormat = new Intl.NumberFormat("en-US", { useGrouping: true, maximumFractionDigits: 0 });

/** Integer cents (the currency's minor unit) as "1,234.50" exactly (no floating point on the
 * way), with `minor_units` decimals: 450 is "4.50" with 2, "450" with 0 (no decimal point);
 * ',' groups thousands and '.' is the decimal point in every language. */
export function amount(cents) {
  if (cents === null || cents === undefined) return "–";
  const sign = cents < 0 ? "−" : "";
  const abs = Math.abs(cents);
  const digits = currency.minor_units;
  const scale = 10 ** digits;
  const units = `${sign}${unitsFormat.format(Math.floor(abs / scale))}`;
  return digits ? `${units}.${String(abs % scale).padStart(digits, "0")}` : units;
}

/** Integer cents in the currency, as the CLI writes them (node/engine/money.py): "£4.50"
 * (or "−£4.50") for a currency with a symbol, else "4.50 credits". */
export function money(cents) {
  if (cents === null || cents === undefined) return "–";
  const number = amount(cents);
  if (!currency.symbol) return `${number} ${currency.name}`;
  return number.startsWith("−") ? `−${currency.symbol}${number.slice(1)}` : `${currency.symbol}${number}`;
}

// What readMoney accepts: exactly node/engine/money.py parse_amount's rule (one table of
// inputs holds both to it: tests/node/test_app_currency_amounts.py). SPACE is stripped from
// both ends and between the symbol and the number (ASCII whitespace and U+00A0, no other);
// MINUS is '-' or '−' (U+2212, how `amount` writes negatives); at most 10 digits before
// the point, so cents stay exact in a JavaScript number.
const SPACE = "[ \\t\\n\\r\\v\\f\\u00a0]";
const TRIM = new RegExp(`^${SPACE}+|${SPACE}+$`, "g");
const LEADING_SPACE = new RegExp(`^${SPACE}+`);
const MINUS = /^[-\u2212]/;
const AMOUNT = /^([0-9]*)(?:\.([0-9]*))?$/;
const MAX_WHOLE_DIGITS = 10;

/** An amount typed by a person ("4.50", "4.5", "4", ".5", "£4.50", "£ 4.50") as `{ cents,
 * error }`: integer cents (the currency's minor unit) and error null, or cents null and
 * error one sentence saying why it is not an amount: negative ('-' or '−', before or after
 * the symbol), not a plain number (',' is never accepted: no decimal comma, no grouping;
 * no inner space, sign or exponent), more than 10 digits before the point, or more
 * decimals than the currency's `minor_units`. The same texts and sentences as the CLI's
 * parse_amount (node/engine/money.py). */
export function readMoney(text) {
  const places = currency.minor_units;
  const said = `“${text}”`;
  const negative = { cents: null, error: `${said} is negative: amounts are 0 or more` };
  let t = String(text).replace(TRIM, "");
  if (MINUS.test(t)) return negative; // before the symbol: "-£4"
  if (currency.symbol && t.startsWith(currency.symbol)) {
    const rest = t.slice(currency.symbol.length).replace(LEADING_SPACE, "");
    if (MINUS.test(rest)) return negative; // after it: "£-4"
    // Only a number may follow the symbol: then it is the symbol, not part of the text.
    if (/^[0-9.]/.test(rest)) t = rest;
  }
  const m = AMOUNT.exec(t);
  if (!m || !(m[1] || m[2])) {
    const example = places ? `4.${"5".padEnd(places, "0")}` : "4";
    const hint = t.includes(",") ? " (digits and one '.', no ',')" : "";
    return { cents: null, error: `${said} is not an amount in ${currency.name}: write it like ${example}${hint}` };
  }
  const whole = m[1];
  const minor = m[2] || "";
  if (whole.length > MAX_WHOLE_DIGITS) {
    return { cents: null, error: `${said} is too large: at most ${MAX_WHOLE_DIGITS} digits before the point` };
  }
  if (minor.length > places) {
    const error = places
      ? `${said} has ${minor.length} decimal places; ${currency.name} have ${places}`
      : `${said}: ${currency.name} have no fractions; write a whole number`;
    return { cents: null, error };
  }
  return { cents: Number(whole || "0") * 10 ** places + Number(minor.padEnd(places, "0") || "0"), error: null };
}

/** An amount typed by a person as integer cents; null if it is not one (see `readMoney`). */
export function parseMoney(text) {
  return readMoney(text).cents;
}

// The units of offers and needs (protocol/offers.py UNITS, PROTOCOL.md §10): one and many.
const UNIT_NAMES = {
  gram: ["gram", "grams"],
  millilitre: ["millilitre", "millilitres"],
  piece: ["piece", "pieces"],
  minute: ["minute", "minutes"],
  dozen: ["dozen", "dozen"],
  kilogram: ["kilogram", "kilograms"],
  litre: ["litre", "litres"],
  hour: ["hour", "hours"],
};

/** A unit as people say it for `n` of it: "dozen", "kilograms" (n 2), "litre" (n 1); a unit
 * this app does not know is shown as it is. */
export function unitName(unit, n = 1) {
  const names = UNIT_NAMES[unit];
  return names ? names[n === 1 ? 0 : 1] : unit;
}

/** A quantity in its unit, as the CLI writes it: "40 pieces", "3 dozen", "1 litre". */
export function quantity(n, unit) {
  return `${int(n)} ${unitName(unit, n)}`;
}

const dateTime = new Intl.DateTimeFormat(undefined, {
  weekday: "short",
  day: "numeric",
  month: "short",
  hour: "2-digit",
  minute: "2-digit",
});
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

/** A moment in the viewer's zone: "Mon 30 Nov, 21:05". */
export function when(ms) {
  return ms ? dateTime.format(new Date(ms)) : "–";
}

/** "in 3 hours", "5 minutes ago". */
export function fromNow(ms, now = Date.now()) {
  if (!ms) return "";
  const s = (ms - now) / 1000;
  const abs = Math.abs(s);
  if (abs < 60) return relative.format(Math.round(s), "second");
  if (abs < 3600) return relative.format(Math.round(s / 60), "minute");
  if (abs < 86400 * 2) return relative.format(Math.round(s / 3600), "hour");
  return relative.format(Math.round(s / 86400), "day");
}

/** A <time> element: the local date and time, with the relative time after it. */
export function timeText(ms) {
  if (!ms) return "–";
  return `${when(ms)} (${fromNow(ms)})`;
}

export function plural(n, one, many = `${one}s`) {
  return `${int(n)} ${n === 1 ? one : many}`;
}

export function words(text) {
  return String(text).replaceAll("_", " ").replaceAll("-", " ");
}

// Hours of the time bank (PROTOCOL.md §20): integers of quarter hours on the API (an hour is
// 4), shown and typed as decimal hours in quarter steps, as the CLI writes and reads them
// (protocol/hours.py hours_text, parse_hours): "1.5 h", "2.25 h".
export const QUARTERS_PER_HOUR = 4;

/** Quarter hours as the CLI writes them: 6 is "1.5 h", 9 "2.25 h", 4 "1 h", -1 "−0.25 h"
 * (none: "–"). */
export function hours(quarters) {
  if (quarters === null || quarters === undefined) return "–";
  const sign = quarters < 0 ? "−" : "";
  const abs = Math.abs(quarters);
  const part = ["", ".25", ".5", ".75"][abs % QUARTERS_PER_HOUR];
  return `${sign}${unitsFormat.format(Math.floor(abs / QUARTERS_PER_HOUR))}${part} h`;
}

/** Hours typed by a person ("1.5", "2.25", ".5", "3", optionally ending in "h") as
 * `{ quarters, error }`: integer quarter hours >= 1 and error null, or quarters null and error one
 * sentence: not a number of hours, not in quarter steps (the API's `not_quarter_hours`,
 * refused here before anything is sent), or under a quarter hour. The same texts as the
 * CLI's parse_hours (protocol/hours.py) read, at most 6 digits before the point. */
export function readHours(text) {
  const t = String(text).trim();
  const said = `“${t}”`;
  const m = /^(?=\.?[0-9])([0-9]{0,6})(?:\.([0-9]+))?$/.exec(t.replace(/h$/, "").trim()); // ".5" too
  if (!m) return { quarters: null, error: `${said} is not a number of hours: write it like 1.5 or 2.25` };
  const part = { "": 0, 25: 1, 5: 2, 75: 3 }[(m[2] || "").replace(/0+$/, "")];
  if (part === undefined) return { quarters: null, error: `${said} is not in quarter hours: write whole hours or .25, .5, .75 (like 1.5 or 2.25)` };
  const quarters = Number(m[1]) * QUARTERS_PER_HOUR + part;
  if (quarters < 1) return { quarters: null, error: `${said}: at least a quarter hour (0.25)` };
  return { quarters, error: null };
}
