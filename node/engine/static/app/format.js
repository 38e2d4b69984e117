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

/** Integer cents (the currency's minor unit) as "1,234.50" exactly (no floating point on the
 * way), with `minor_units` decimals: 450 is "4.50" with 2, "450" with 0 (no decimal point). */
export function amount(cents) {
  if (cents === null || cents === undefined) return "–";
  const sign = cents < 0 ? "−" : "";
  const abs = Math.abs(cents);
  const digits = currency.minor_units;
  const scale = 10 ** digits;
  const units = `${sign}${intFormat.format(Math.floor(abs / scale))}`;
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

/** An amount typed by a person ("4.50", "4,5", "4", "£4.50") as `{ cents, error }`: integer
 * cents and error null, or cents null and error one sentence saying why it is not an amount
 * (not a number, or more decimals than the currency's `minor_units`). */
export function readMoney(text) {
  const places = currency.minor_units;
  let t = String(text).trim().replace(/\s/g, "");
  if (currency.symbol && t.startsWith(currency.symbol)) t = t.slice(currency.symbol.length);
  const m = /^(\d{0,10})(?:[.,](\d*))?$/.exec(t);
  if (!m || !(m[1] || m[2])) {
    const example = places ? `4.${"5".padEnd(places, "0")}` : "4";
    return { cents: null, error: `“${text}” is not an amount in ${currency.name}: write it like ${example}` };
  }
  const minor = m[2] || "";
  if (minor.length > places) {
    const error = places
      ? `“${text}” has ${minor.length} decimal places; ${currency.name} have ${places}`
      : `“${text}”: ${currency.name} have no fractions; write a whole number`;
    return { cents: null, error };
  }
  return { cents: Number(m[1] || "0") * 10 ** places + Number(minor.padEnd(places, "0") || "0"), error: null };
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
