// Numbers, money and times for people, in the viewer's own language and time zone.

const intFormat = new Intl.NumberFormat();
let currency = { name: "credits", code: "CRD", decimals: 2 };

export function setCurrency(c) {
  if (c && typeof c.name === "string") currency = { decimals: 2, ...c };
}

export function currencyName() {
  return currency.name;
}

export function int(n) {
  return n === null || n === undefined ? "–" : intFormat.format(n);
}

/** Integer cents as "1,234.50" exactly (no floating point on the way). */
export function amount(cents) {
  if (cents === null || cents === undefined) return "–";
  const sign = cents < 0 ? "−" : "";
  const abs = Math.abs(cents);
  return `${sign}${intFormat.format(Math.floor(abs / 100))}.${String(abs % 100).padStart(2, "0")}`;
}

/** Integer cents with the currency's name: "12.50 credits". */
export function money(cents) {
  return cents === null || cents === undefined ? "–" : `${amount(cents)} ${currency.name}`;
}

/** "4.50", "4,5", "4" or "12.5" typed by a person, as integer cents; null if not a number. */
export function parseMoney(text) {
  const t = String(text).trim().replace(/\s/g, "").replace(",", ".");
  const m = /^(\d{1,10})(?:\.(\d{0,2}))?$/.exec(t);
  if (!m) return null;
  return Number(m[1]) * 100 + Number((m[2] || "").padEnd(2, "0"));
}

const UNIT_NAMES = { gram: ["g", "kg", 1000], millilitre: ["ml", "L", 1000], minute: ["min", "h", 60] };

/** A quantity in its unit, the larger unit when it reads better: "40 kg", "5 h", "3 pieces". */
export function quantity(n, unit) {
  if (unit === "piece") return `${int(n)} ${n === 1 ? "piece" : "pieces"}`;
  const names = UNIT_NAMES[unit];
  if (!names) return `${int(n)} ${unit}`;
  const [small, big, factor] = names;
  if (n >= factor && n % (factor / 10) === 0) {
    return `${new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 }).format(n / factor)} ${big}`;
  }
  return `${int(n)} ${small}`;
}

export function unitName(unit) {
  return { gram: "gram", millilitre: "millilitre", piece: "piece", minute: "minute" }[unit] || unit;
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
