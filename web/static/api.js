// What the pages share: element lookup, the message line, and calls to the JSON API, whose
// errors become Errors carrying the HTTP status and PROTOCOL.md's error code.

export const $ = (id) => document.getElementById(id);

export function say(text) { $("message").textContent = text || ""; }

export async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
    credentials: "same-origin",
  });
  const data = res.status === 204 ? null : await res.json();
  if (!res.ok) {
    const err = new Error(data.message || res.statusText);
    err.status = res.status;
    err.code = data.error;
    throw err;
  }
  return data;
}
