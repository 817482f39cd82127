// What the pages share: element lookup, the page's texts from the server's catalog, the message
// line, dates in the page's language, and calls to the JSON API, whose errors become Errors
// carrying the HTTP status and PROTOCOL.md's error code.

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

// errorText is what the page says of a refusal with the given code, in the page's language.
export const errorText = (code) => messages["error." + code] ?? t("common.error_code", { code });

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
    throw new Error(t("common.network"));
  }
  const data = res.status === 204 ? null : await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error(data.message || res.statusText);
    err.status = res.status;
    err.code = data.error;
    throw err;
  }
  return data;
}
