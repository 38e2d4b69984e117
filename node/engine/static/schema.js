// The API reference at /schema, drawn from /schema/openapi.json by this script: no CDN,
// no inline script or style, every value a text node.

const $ = (id) => document.getElementById(id);
const METHODS = ["get", "post", "put", "patch", "delete"];

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

/** A schema as one short line: a named component, an array of one, or a type. */
function typeName(schema) {
  if (!schema) return "";
  if (schema.$ref) return schema.$ref.split("/").pop();
  if (schema.oneOf || schema.anyOf) return (schema.oneOf || schema.anyOf).map(typeName).join(" | ");
  if (schema.type === "array") return `${typeName(schema.items)}[]`;
  return schema.type || "object";
}

function resolve(doc, schema) {
  if (schema && schema.$ref) return doc.components.schemas[schema.$ref.split("/").pop()] || {};
  return schema || {};
}

/** The fields of a request or response body: name, type, required, limits. */
function fields(doc, schema) {
  const target = resolve(doc, schema);
  const props = target.properties || {};
  const required = new Set(target.required || []);
  const rows = Object.entries(props).map(([name, prop]) => {
    const limits = ["minLength", "maxLength", "minimum", "maximum", "pattern"]
      .filter((k) => prop[k] !== undefined).map((k) => `${k} ${prop[k]}`).join(", ");
    return [name, typeName(prop), required.has(name) ? "required" : "", limits];
  });
  if (rows.length === 0) return el("p", typeName(schema), "muted small");
  const t = el("table");
  const head = el("tr");
  for (const h of ["field", "type", "", "limits"]) head.append(el("th", h));
  t.append(el("thead"));
  t.tHead.append(head);
  const body = el("tbody");
  for (const row of rows) {
    const tr = el("tr");
    for (const cell of row) tr.append(el("td", cell));
    body.append(tr);
  }
  t.append(body);
  return t;
}

function operation(doc, path, method, op) {
  const box = el("details", undefined, "panel op");
  const summary = el("summary");
  summary.append(el("span", method.toUpperCase(), `method ${method}`), el("span", path, "path"),
    el("span", op.summary || "", "muted"));
  box.append(summary);
  if (op.description) box.append(el("p", op.description));
  const params = op.parameters || [];
  if (params.length > 0) {
    box.append(el("h2", "Parameters"));
    const t = el("table");
    const body = el("tbody");
    for (const p of params) {
      const tr = el("tr");
      for (const cell of [p.name, p.in, typeName(p.schema), p.required ? "required" : "", p.description || ""]) {
        tr.append(el("td", cell));
      }
      body.append(tr);
    }
    t.append(body);
    box.append(t);
  }
  const json = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
  if (json) {
    box.append(el("h2", "Body (application/json)"), fields(doc, json.schema));
  }
  box.append(el("h2", "Answers"));
  for (const [status, answer] of Object.entries(op.responses || {})) {
    const content = answer.content && Object.values(answer.content)[0];
    box.append(el("p", `${status} ${answer.description || ""} ${content ? `→ ${typeName(content.schema)}` : ""}`, "small"));
  }
  return box;
}

async function load() {
  try {
    const response = await fetch("/schema/openapi.json");
    if (!response.ok) throw new Error(`GET /schema/openapi.json answered ${response.status}`);
    const doc = await response.json();
    $("title").textContent = `${doc.info.title} ${doc.info.version}`;
    document.title = `API reference · ${doc.info.title}`;
    $("description").textContent = doc.info.description || "";
    const list = $("operations");
    for (const path of Object.keys(doc.paths).sort()) {
      for (const method of METHODS) {
        const op = doc.paths[path][method];
        if (op) list.append(operation(doc, path, method, op));
      }
    }
  } catch (error) {
    $("load-error").textContent = `Cannot read the API's schema: ${error.message}`;
    $("load-error").hidden = false;
  }
}

load();
