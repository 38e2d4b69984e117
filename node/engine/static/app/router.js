// Hash routes: `#/help`, `#/help/ask`, `#/market/trades`, `#/join/<token>`, ...
// A route is {name, sub, arg}: the first segment, the second, the rest.

export function parse(hash = location.hash) {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  let decoded;
  try {
    decoded = parts.map(decodeURIComponent);
  } catch {
    decoded = [];
  }
  return { name: decoded[0] || "", sub: decoded[1] || "", arg: decoded.slice(1).join("/") };
}

export function go(path) {
  const hash = `#/${path.replace(/^#?\//, "")}`;
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}

export function href(path) {
  return `#/${path.replace(/^#?\//, "")}`;
}
