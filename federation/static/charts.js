// Small charts drawn by hand: activity per minute, and where the credit stands.

import { empty, exactTime, h, int, money, plural, s } from "./dom.js";
import { relative, when } from "./state.js";

const SERIES = [
  { key: "events", label: "Events", unit: "event" },
  { key: "trades", label: "Trades proposed", unit: "trade" },
  { key: "aid", label: "Calls for help", unit: "call" },
];

/** Three bar charts from GET /api/timeseries ({start, bucket_ms, events, trades, aid}). */
export function seriesCharts(series) {
  if (!series) return [empty("Loading…")];
  return SERIES.map(({ key, label, unit }) => {
    const values = series[key] || [];
    const total = values.reduce((a, b) => a + b, 0);
    const last = values.length ? values[values.length - 1] : 0;
    return h(
      "figure",
      { class: `series ${key}` },
      h(
        "figcaption",
        {},
        h("span", { class: "series-label" }, label),
        h("span", { class: "muted small" }, `${plural(total, unit)} · ${int(last)} this minute`),
      ),
      bars(values, series.start, series.bucket_ms, unit),
      h(
        "div",
        { class: "axis muted small" },
        h("span", {}, when(series.start)),
        h("span", {}, `peak ${int(Math.max(0, ...values))}/min`),
        h("span", {}, "now"),
      ),
    );
  });
}

/** A minute of the chart, the way every time is shown: "12 min ago (2026-12-01 14:05)". */
function minute(ms) {
  return `${relative(ms)} (${exactTime(ms)})`;
}

function bars(values, start, bucketMs, unit) {
  const W = 300;
  const H = 60;
  const step = W / Math.max(1, values.length);
  const max = Math.max(1, ...values);
  const total = values.reduce((a, b) => a + b, 0);
  const chart = s(
    "svg",
    {
      class: "bars",
      viewBox: `0 0 ${W} ${H}`,
      preserveAspectRatio: "none",
      role: "img",
      "aria-label": `${plural(total, unit)} in the last hour`,
    },
    s("line", { x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5, class: "baseline" }),
  );
  values.forEach((value, i) => {
    if (!value) return;
    const height = Math.max(1.5, (value / max) * (H - 4));
    chart.append(
      s(
        "rect",
        {
          x: (i * step + 0.5).toFixed(2),
          y: (H - height).toFixed(2),
          width: Math.max(0.5, step - 1).toFixed(2),
          height: height.toFixed(2),
        },
        s("title", {}, `${minute(start + i * bucketMs)}: ${plural(value, unit)}`),
      ),
    );
  });
  return chart;
}

/**
 * Each neighborhood's balance as a bar from a middle line: in credit to the right, in debit
 * to the left. Mutual credit: the bars on both sides add up to the same length.
 */
export function balanceBars(hoods, linkTo) {
  if (!hoods.length) return empty("No balances yet.");
  const largest = Math.max(1, ...hoods.map((x) => Math.abs(x.balance)));
  const rows = [...hoods].sort((a, b) => b.balance - a.balance);
  return h(
    "div",
    { class: "balances", role: "list" },
    rows.map((x) => {
      const bar = h("span", { class: `bar ${x.balance >= 0 ? "pos" : "neg"}` });
      bar.style.width = `${((Math.abs(x.balance) / largest) * 50).toFixed(2)}%`;
      const tone = x.balance > 0 ? "pos" : x.balance < 0 ? "neg" : "";
      return h(
        "div",
        { class: "balance-row", role: "listitem" },
        h("span", { class: "who" }, linkTo(x.slug)),
        h("span", { class: "track" }, bar),
        h("span", { class: `amount ${tone}` }, money(x.balance)),
      );
    }),
  );
}
