// The trade-flow graph: one circle per neighborhood on a ring, one curved arrow per
// seller → buyer pair, as wide and as strong as the settled volume between them.

import { money, plural, quantity, s } from "./dom.js";

const MEMBERS = new Set(["founder", "admitted"]);

/**
 * An <svg> of `hoods` (every one appears, traded or not) and `flows` ([{from, to, trades,
 * volume}]). `width`: the drawing's width in CSS pixels (narrow ones put every label under
 * its circle); `focus`: a slug whose trade stands out; `onSelect(slug)`: a node was chosen.
 */
export function flowGraph(hoods, flows, { id = null, focus = null, width = 640, onSelect }) {
  const W = Math.round(width);
  const compact = W < 520;
  // Narrow: a tall ellipse, labels above or below their circles. Wide: a circle, labels out.
  const H = Math.round(compact ? W * 1.2 : W * 0.74);
  const cx = W / 2;
  const cy = H / 2;
  const ring = compact ? { x: W / 2 - 58, y: H / 2 - 42 } : { x: H / 2 - 52, y: H / 2 - 52 };
  const graph = s("svg", {
    id,
    class: "flow-graph",
    viewBox: `0 0 ${W} ${H}`,
    role: "group",
    "aria-label": "Trade flows between neighborhoods",
  });
  const names = new Map(hoods.map((x) => [x.slug, x.display_name || x.slug]));
  const nameOf = (slug) => names.get(slug) || slug;
  const slugs = hoods.map((x) => x.slug);
  for (const f of flows) {
    for (const slug of [f.from, f.to]) if (!slugs.includes(slug)) slugs.push(slug);
  }
  if (slugs.length === 0) {
    graph.append(s("text", { x: cx, y: cy, class: "graph-empty" }, "No neighborhoods yet"));
    return graph;
  }

  // Circles grow with what a neighborhood traded, so the busy ones are easy to find.
  const traded = new Map(slugs.map((slug) => [slug, 0]));
  for (const f of flows) {
    traded.set(f.from, traded.get(f.from) + f.volume);
    traded.set(f.to, traded.get(f.to) + f.volume);
  }
  const mostTraded = Math.max(1, ...traded.values());
  const single = slugs.length === 1;
  const place = new Map();
  slugs.forEach((slug, i) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * i) / slugs.length;
    place.set(slug, {
      x: single ? cx : cx + ring.x * Math.cos(angle),
      y: single ? cy : cy + ring.y * Math.sin(angle),
      angle,
      r: (compact ? 9 : 12) + (compact ? 9 : 12) * Math.sqrt(traded.get(slug) / mostTraded),
    });
  });

  const edges = s("g", { class: "edges" });
  const most = Math.max(1, ...flows.map((f) => f.volume));
  for (const f of [...flows].sort((a, b) => a.volume - b.volume)) {
    if (f.from === f.to) continue;
    const weight = Math.sqrt(f.volume / most);
    const faded = Boolean(focus) && f.from !== focus && f.to !== focus;
    const goods = (f.goods || []).map((g) => `${g.item} ${quantity(g.quantity, g.unit)}`);
    const label =
      `${nameOf(f.from)} → ${nameOf(f.to)}: ` +
      `${plural(f.trades, "trade")}, ${money(f.volume)}` +
      (goods.length ? ` (${goods.join(", ")})` : "");
    edges.append(arrow(place.get(f.from), place.get(f.to), weight, { flow: f, faded, label }));
  }
  graph.append(edges);

  const nodes = s("g", { class: "nodes" });
  const bySlug = new Map(hoods.map((x) => [x.slug, x]));
  for (const slug of slugs) {
    const hood = bySlug.get(slug) || { slug, membership: "outsider", balance: 0 };
    nodes.append(node(hood, nameOf(slug), place.get(slug), { focus, single, compact, onSelect }));
  }
  graph.append(nodes);

  // Pointing at a neighborhood brings its own trade forward.
  const highlight = (slug) => {
    for (const edge of edges.children) {
      const touches = Boolean(slug) && (edge.dataset.from === slug || edge.dataset.to === slug);
      edge.classList.toggle("hot", touches);
      edge.classList.toggle("aside", Boolean(slug) && !touches);
    }
  };
  nodes.addEventListener("mouseover", (event) => {
    const target = event.target.closest("[data-slug]");
    highlight(target ? target.dataset.slug : null);
  });
  nodes.addEventListener("mouseleave", () => highlight(null));
  return graph;
}

const fmt = (n) => n.toFixed(1);

function toward(p, q, distance) {
  const d = Math.hypot(q.x - p.x, q.y - p.y) || 1;
  return { x: p.x + ((q.x - p.x) / d) * distance, y: p.y + ((q.y - p.y) / d) * distance };
}

function arrow(a, b, weight, { flow, faded, label }) {
  // A quadratic curve bowed to the left of a → b, so that b → a takes the other side.
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const length = Math.hypot(dx, dy) || 1;
  const bow = 0.12 * length;
  const c = { x: (a.x + b.x) / 2 - (dy / length) * bow, y: (a.y + b.y) / 2 + (dx / length) * bow };
  const width = 1 + 7 * weight;
  const head = 6 + width * 1.1;
  const start = toward(a, c, a.r + 3);
  const tip = toward(b, c, b.r + 3);
  const base = toward(tip, c, head);
  const ux = (tip.x - base.x) / head;
  const uy = (tip.y - base.y) / head;
  const half = head * 0.55;
  const corners = [
    [tip.x, tip.y],
    [base.x - uy * half, base.y + ux * half],
    [base.x + uy * half, base.y - ux * half],
  ];
  return s(
    "g",
    {
      class: faded ? "edge faded" : "edge",
      "data-from": flow.from,
      "data-to": flow.to,
      style: { "--strength": (0.3 + 0.6 * weight).toFixed(2) },
    },
    s("title", {}, label),
    s("path", {
      d: `M${fmt(start.x)},${fmt(start.y)} Q${fmt(c.x)},${fmt(c.y)} ${fmt(base.x)},${fmt(base.y)}`,
      "stroke-width": width.toFixed(2),
    }),
    s("polygon", { points: corners.map((p) => p.map(fmt).join(",")).join(" ") }),
  );
}

function node(hood, name, at, { focus, single, compact, onSelect }) {
  const classes = ["node", MEMBERS.has(hood.membership) ? "member" : hood.membership];
  if (focus === hood.slug) classes.push("focus");
  if (focus && focus !== hood.slug) classes.push("other");
  const choose = () => onSelect && onSelect(hood.slug);
  const g = s(
    "g",
    {
      class: classes.join(" "),
      "data-slug": hood.slug,
      tabindex: "0",
      role: "link",
      "aria-label": `${name}: open its page`,
      onclick: choose,
      onkeydown: (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          choose();
        }
      },
    },
    s("title", {}, `${name} (${hood.membership}) · balance ${money(hood.balance)}`),
    s("circle", { cx: fmt(at.x), cy: fmt(at.y), r: fmt(at.r) }),
  );
  // Labels sit outside the ring, away from the centre; on a narrow screen, above or below.
  const cos = single ? 0 : Math.cos(at.angle);
  const sin = single ? 1 : Math.sin(at.angle);
  let x;
  let y;
  let anchor;
  if (compact) {
    const above = sin < -0.3;
    x = at.x;
    y = above ? at.y - at.r - 20 : at.y + at.r + 14;
    anchor = "middle";
  } else {
    const distance = at.r + 8;
    x = at.x + cos * distance;
    y = at.y + sin * distance + (sin > 0.3 ? 10 : sin < -0.3 ? -16 : -4);
    anchor = cos > 0.3 ? "start" : cos < -0.3 ? "end" : "middle";
  }
  const tone = hood.balance > 0 ? "pos" : hood.balance < 0 ? "neg" : "";
  g.append(
    s(
      "text",
      { x: fmt(x), y: fmt(y), "text-anchor": anchor, class: "label" },
      s("tspan", { class: "name" }, name),
      s("tspan", { x: fmt(x), dy: "15", class: `balance ${tone}` }, money(hood.balance)),
    ),
  );
  return g;
}
