// mcert's service worker, of scope /m/ (PROTOCOL.md section 10). A push announces a login or
// signing request waiting for this phone, as JSON {"kind": "login" | "sign", "client_name",
// "expires_at"}, without its token: the worker shows a notification, which opens the inbox,
// and tells the open phone pages to read the inbox again.
//
// The server writes `texts` (the catalog's "push." texts, by language) and `defaultLang` before
// this file; the page names its language in the worker's URL, /m/sw.js?lang=en.

const requested = new URL(self.location.href).searchParams.get("lang");
const lang = texts[requested] ? requested : defaultLang;
const inbox = "/m/inbox";

function t(key, vars = {}) {
  return (texts[lang][key] ?? key).replace(/\{(\w+)\}/g, (all, name) => vars[name] ?? all);
}

// A new version takes over at once: it holds no state, and a push must find it.
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

// announced is the request a push announces, or null when its data is missing or is not
// PROTOCOL.md's.
function announced(data) {
  try {
    const m = data?.json();
    if ((m?.kind === "login" || m?.kind === "sign") && typeof m.client_name === "string" && m.client_name) return m;
  } catch {
    // not JSON: a notification that names no request
  }
  return null;
}

// until is the time of day s names, in the page's language, or "".
function until(s) {
  const d = new Date(s);
  return typeof s === "string" && !isNaN(d) ? d.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" }) : "";
}

// pages are the open windows of the phone pages.
async function pages() {
  const all = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  return all.filter((c) => new URL(c.url).pathname.startsWith("/m/"));
}

self.addEventListener("push", (event) => {
  // Every push shows a notification, even one whose data cannot be read: browsers take back
  // the permission of a site whose pushes show none.
  const m = announced(event.data);
  let title = t("push.title");
  let body = t("push.body");
  let tag = "mcert";
  if (m) {
    title = t(m.kind === "sign" ? "push.sign_title" : "push.login_title", { client: m.client_name });
    const time = until(m.expires_at);
    if (time) body = t("push.request_body", { time });
    tag = "mcert:" + m.kind + ":" + m.client_name; // a repeated request replaces its notification
  }
  event.waitUntil(Promise.all([
    self.registration.showNotification(title, {
      body, tag, lang, renotify: true, icon: "/static/icon-192.png", data: { url: inbox },
    }),
    pages().then((open) => open.forEach((c) => c.postMessage({ type: "mcert.push" }))),
  ]));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = new URL(event.notification.data?.url || inbox, self.location.origin);
  event.waitUntil((async () => {
    const open = (await pages()).find((c) => new URL(c.url).pathname === url.pathname);
    if (!open) return self.clients.openWindow(url.href);
    await open.focus();
    // Loaded again, it shows the request; a page this worker does not control yet cannot be
    // navigated from here, and reads its inbox when told.
    return open.navigate(url.href).catch(() => open.postMessage({ type: "mcert.push" }));
  })());
});
