// The phone pages are an installable web app (PROTOCOL.md section 10): each registers the
// service worker of scope /m/, which shows the push notifications of requests and opens the
// inbox. The worker cannot see the page: its URL names the page's language, and a page in the
// other language registers it again under that URL, which replaces it.

const supported = "serviceWorker" in navigator;

// registration is the worker's registration, or null where the browser has none (no service
// workers, or not a secure context).
export const registration = supported
  ? navigator.serviceWorker
      .register("/m/sw.js?lang=" + encodeURIComponent(document.documentElement.lang), { scope: "/m/" })
      .catch(() => null)
  : Promise.resolve(null);

// active is the registration once its worker is active, which a push subscription needs; null
// as for registration.
export async function active() {
  return (await registration) ? navigator.serviceWorker.ready : null;
}

// onPush calls f when the worker has shown the notification of a push.
export function onPush(f) {
  if (!supported) return;
  navigator.serviceWorker.addEventListener("message", (ev) => {
    if (ev.data?.type === "mcert.push") f();
  });
}
