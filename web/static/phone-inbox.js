// The phone's inbox, in its browser: the push-style (CIBA) requests waiting for this phone,
// each opened on the approval page, which approves with the biometric or denies.
import { $, api, explain, say, t, time, sleep } from "/static/api.js";
import { deviceToken, forgetDeviceToken } from "/static/inbox-token.js";
import { active, onPush, registration } from "/static/webapp.js";

const token = deviceToken();

function render(r) {
  $("inbox-device").textContent = t(r.device.expires_soon ? "minbox.device_soon" : "minbox.device", { name: r.device.name });
  const list = $("requests");
  list.replaceChildren(...r.requests.map((q) => {
    const li = document.createElement("li");
    const a = document.createElement("a");
    const sign = q.kind === "sign";
    a.href = (sign ? "/m/sign#" : "/m/login#") + q.token;
    a.textContent = t(sign ? "minbox.sign_request" : "minbox.request", { client: q.client_name, time: time(q.expires_at) });
    li.append(a);
    const message = sign ? q.text : q.binding_message;
    if (message) {
      const m = document.createElement("p");
      m.className = "hint";
      m.textContent = message;
      li.append(m);
    }
    return li;
  }));
  $("inbox-empty").hidden = r.requests.length > 0;
}

const load = () => api("GET", "/api/v1/phone/inbox", null, { bearer: token });

async function poll() {
  for (;;) {
    try {
      render(await load());
      say("");
    } catch (e) {
      if (e.code === "bad_device_token") {
        // The phone was removed from the account, or bound again elsewhere: this key is dead.
        forgetDeviceToken();
        return showNoDevice();
      }
      say(t("minbox.failed"), true);
    }
    await sleep(5000);
  }
}

function showNoDevice() {
  $("inbox").hidden = true;
  $("push").hidden = true;
  $("no-device").hidden = false;
}

async function refresh() {
  try {
    render(await load());
  } catch {
    say(t("minbox.failed"), true);
  }
}

$("inbox-refresh").addEventListener("click", refresh);
onPush(refresh); // the worker has just shown a request's notification

// Notifications (PROTOCOL.md section 10): this browser's push subscription, handed to the
// server with the device token, which then announces each request to this phone.

const pushable = "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;

// pushStatus shows text in the notifications' status line, an error as say() does.
function pushStatus(text, error = false) {
  const m = $("push-status");
  m.setAttribute("role", error ? "alert" : "status");
  m.setAttribute("aria-live", error ? "assertive" : "polite");
  m.dataset.kind = error ? "error" : "info";
  m.textContent = text && error ? t("common.error") + text : text || "";
}

function showPushOn(on) {
  $("push-state").hidden = !on;
  $("push-on").hidden = on;
  $("push-off").hidden = !on;
}

// PushProblem is a failure to turn notifications on, with the sentence to show.
class PushProblem extends Error {}

// keyBytes decodes the server's key, base64url, for pushManager.subscribe.
function keyBytes(b64) {
  return Uint8Array.from(atob(b64.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
}

function sameKey(buffer, key) {
  const a = new Uint8Array(buffer || []);
  return a.length === key.length && a.every((b, i) => b === key[i]);
}

// within is p, or a TimeoutError after ms: a browser that cannot reach its push service may
// leave a subscription unanswered.
function within(ms, p) {
  const late = sleep(ms).then(() => {
    throw new DOMException("the push service did not answer", "TimeoutError");
  });
  return Promise.race([p, late]);
}

// subscribe hands the server this browser's subscription with the server's key, subscribing
// first when there is none, or one made with another key (the browser refuses a second key
// for one registration).
async function subscribe(reg) {
  let key;
  try {
    key = keyBytes((await api("GET", "/api/v1/phone/push/key")).public_key);
  } catch (e) {
    throw new PushProblem(t("minbox.push_server", { reason: explain(e) }));
  }
  let sub;
  try {
    sub = await reg.pushManager.getSubscription();
    if (sub && !sameKey(sub.options.applicationServerKey, key)) {
      await sub.unsubscribe();
      sub = null;
    }
    sub ??= await within(30000, reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key }));
  } catch (e) {
    throw new PushProblem(t("minbox.push_failed", { reason: e?.name || "Error" }));
  }
  try {
    await api("POST", "/api/v1/phone/push", { subscription: sub.toJSON() }, { bearer: token });
  } catch (e) {
    throw new PushProblem(t("minbox.push_server", { reason: explain(e) }));
  }
}

const problemText = (e) => (e instanceof PushProblem ? e.message : explain(e));

async function turnOn() {
  $("push-on").disabled = true;
  pushStatus(t("minbox.push_working"));
  try {
    // Asked first, while the click still counts as the citizen's.
    if ((await Notification.requestPermission()) !== "granted") return pushStatus(t("minbox.push_denied"), true);
    await subscribe(await active());
    showPushOn(true);
    pushStatus("");
  } catch (e) {
    pushStatus(problemText(e), true);
  } finally {
    $("push-on").disabled = false;
  }
}

// turnOff ends the subscription in the browser first: a push service answers the server's
// next message to it 410, which drops it there too, should the DELETE fail.
async function turnOff() {
  $("push-off").disabled = true;
  try {
    await (await (await active()).pushManager.getSubscription())?.unsubscribe();
  } catch (e) {
    $("push-off").disabled = false;
    return pushStatus(problemText(e), true);
  }
  showPushOn(false);
  $("push-off").disabled = false;
  try {
    await api("DELETE", "/api/v1/phone/push", null, { bearer: token });
    pushStatus(t("minbox.push_disabled"));
  } catch (e) {
    pushStatus(t("minbox.push_off_server", { reason: explain(e) }), true);
  }
}

async function initPush() {
  $("push").hidden = false;
  if (!pushable || !(await registration)) {
    $("push-hint").textContent = t("minbox.push_unsupported");
    return;
  }
  $("push-on").hidden = false;
  $("push-on").addEventListener("click", turnOn);
  $("push-off").addEventListener("click", turnOff);
  if (Notification.permission === "denied") return pushStatus(t("minbox.push_denied"), true);
  if (Notification.permission !== "granted") return;
  const reg = await active();
  if (!(await reg.pushManager.getSubscription().catch(() => null))) return;
  // Handed to the server again on every visit: the server may have dropped it (its push
  // service answered 404 or 410), or the browser may have renewed it.
  try {
    await subscribe(reg);
    showPushOn(true);
  } catch (e) {
    pushStatus(problemText(e), true);
  }
}

if (token) {
  poll();
  initPush();
} else showNoDevice();
