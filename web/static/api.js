// What the pages share: element lookup, the page's texts from the server's catalog, the message
// line, dates in the page's language, and calls to the JSON API, whose refusals become
// APIErrors carrying the HTTP status, PROTOCOL.md's error code and, as their message, what
// the code means in the page's language: the API's own message is for programs.

export const $ = (id) => document.getElementById(id);

const messages = JSON.parse($("messages")?.textContent || "{}");
const lang = document.documentElement.lang;

// t is the text of key in the page's language, its {placeholders} filled from vars.
export function t(key, vars = {}) {
  return (messages[key] ?? key).replace(/\{(\w+)\}/g, (all, name) => vars[name] ?? all);
}

// say shows text in the message line: a polite status, or an error, which is announced at once
// and says that it is one in words, not only in colour.
export function say(text, error = false) {
  const m = $("message");
  m.setAttribute("role", error ? "alert" : "status");
  m.setAttribute("aria-live", error ? "assertive" : "polite");
  m.dataset.kind = error ? "error" : "info";
  m.textContent = text && error ? t("common.error") + text : text || "";
}

export const date = (s) => new Date(s).toLocaleDateString(lang, { dateStyle: "long" });
export const dateTime = (s) => new Date(s).toLocaleString(lang, { dateStyle: "medium", timeStyle: "short" });
export const time = (s) => new Date(s).toLocaleTimeString(lang);

// setTime shows an RFC 3339 time in a <time> element, formatted by format.
export function setTime(el, s, format) {
  el.dateTime = s;
  el.textContent = format(s);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The language switch keeps the fragment: on the phone pages it holds the QR code's token.
if (location.hash) $("lang-switch").hash = location.hash;

// refusal is the text of an API error code: the catalog's, or for a code it lacks a general
// sentence that names the code, for a support call.
export function refusal(code) {
  return messages["error." + code] ?? t("common.unknown_error", { code });
}

// APIError is a refusal of the API (status and code set), or the server out of reach (status
// 0); its message is the sentence for the citizen.
export class APIError extends Error {
  constructor(message, status = 0, code = "") {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// explain is what to tell the citizen about e: an APIError's sentence, or for anything else
// that failed on the page the general one, with the error's name for a support call.
export function explain(e) {
  return e instanceof APIError ? e.message : t("common.unknown_error", { code: e?.name || "Error" });
}

// api calls the JSON API; bearer, when given, is a device token (the phone's inbox).
export async function api(method, path, body, { bearer } = {}) {
  const headers = body ? { "Content-Type": "application/json" } : {};
  if (bearer) headers.Authorization = "Bearer " + bearer;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body ? JSON.stringify(body) : undefined,
      credentials: "same-origin",
    });
  } catch {
    throw new APIError(t("common.network"));
  }
  const data = res.status === 204 ? null : await res.json().catch(() => ({}));
  if (!res.ok) {
    // An answer without PROTOCOL.md's body (a proxy's error page) is named by its status.
    const code = data?.error || "http_" + res.status;
    throw new APIError(refusal(code), res.status, code);
  }
  return data;
}
