// The node's JSON API: same origin, the session cookie, `X-CSRF-Token` on every POST, and
// every refusal (`{"code", "message"}`) turned into an `ApiError` whose message is words.

let csrf = "";
let onSignedOut = () => {};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The session's CSRF token, from the sign-in answer or `GET /auth/me`. */
export function setCsrf(token) {
  csrf = token || "";
}

/** What to do on a 401 (show the sign-in page). */
export function whenSignedOut(handler) {
  onSignedOut = handler;
}

const PHRASES = {
  sign_in_required: "Please sign in.",
  session_expired: "Your session has ended: please sign in again.",
  bad_credentials: "That name and password do not match an account.",
  csrf_token_missing: "The page lost its session token: reload the page and try again.",
  head_unconfirmed: "The node is still starting up; try again in a moment.",
};

/** A Litestar validation message made short: "quantity: Expected `int >= 1`". */
function readable(code, message) {
  if (PHRASES[code] && !message) return PHRASES[code];
  const m = /^Validation failed for \w+ \S+: (\[.*\])$/s.exec(message || "");
  if (m) {
    try {
      const items = JSON.parse(m[1]);
      return items.map((i) => (i.key ? `${i.key}: ${i.message}` : i.message)).join("; ");
    } catch {
      // fall through: the raw message
    }
  }
  return message || PHRASES[code] || code || "the node refused";
}

async function call(method, path, body) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && csrf) headers["x-csrf-token"] = csrf;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError(0, "unreachable", `Cannot reach the node (${error.message}). Check your connection.`);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const code = (data && data.code) || `http_${response.status}`;
    const error = new ApiError(response.status, code, readable(code, data && data.message));
    if (response.status === 401 && !path.startsWith("/auth/sign-in") && !path.startsWith("/auth/passkey/")) onSignedOut(error);
    throw error;
  }
  return data;
}

export const get = (path) => call("GET", path);
export const post = (path, body = {}) => call("POST", path, body);

/** A path segment, escaped. */
export const seg = (s) => encodeURIComponent(s);
