// The enrollment and account page: card login through the card agent, registration, the
// account with its devices, suspension, binding a phone, and the audit log.
import { $, api, explain, refusal, say, t, date, dateTime, time, setTime, sleep } from "/static/api.js";
import { CardError, openComponent } from "/static/card.js";

const agent = $("login").dataset.agent;
let account = null;
let binding = 0; // counts the bindings started: a poll stops when a newer one (or logout) begins
let nextEvents = null;

// view shows the card login, the registration, or the account with its log.
function view(name) {
  $("login").hidden = name !== "login";
  $("register").hidden = name !== "register";
  $("account").hidden = $("events-section").hidden = name !== "account";
  $("session").hidden = name === "login";
  if (name !== "account") {
    $("bind").hidden = true;
    binding++;
  }
}

const sessionEnded = (e) => e.code === "no_session" || e.code === "session_expired";

// failed says what went wrong; an ended session sends the citizen back to the card login.
function failed(e) {
  if (sessionEnded(e)) {
    account = null;
    view("login");
  }
  say(explain(e), true);
}

// ---- the session's end: said two minutes ahead, with a button to extend it (WCAG 2.2.1)

let sessionTimer = 0;

// watchSession follows a session that ends in the given seconds (the server's count: the
// computer's clock may be wrong); null stops following.
function watchSession(session) {
  clearTimeout(sessionTimer);
  $("session-warning").hidden = true;
  if (!session) return;
  const end = Date.now() + session.expires_in * 1000;
  sessionTimer = setTimeout(() => {
    $("session-warning-text").textContent = t("home.session_warning", { time: time(new Date(end)) });
    $("session-warning").hidden = false;
    sessionTimer = setTimeout(() => {
      $("session-warning").hidden = true;
      account = null;
      view("login");
      say(t("home.session_ended"), true);
    }, Math.max(0, end - Date.now()));
  }, Math.max(0, end - Date.now() - 120000));
}

async function extendSession() {
  try {
    const r = await api("POST", "/api/v1/card/session");
    watchSession(r);
    say(t("home.session_extended", { time: time(new Date(Date.now() + r.expires_in * 1000)) }));
  } catch (e) {
    failed(e);
  }
}

async function start() {
  api("GET", "/api/v1/card/session").then(watchSession, () => {});
  try {
    showAccount(await api("GET", "/api/v1/account"));
  } catch (e) {
    if (e.code === "no_account") return showRegister();
    view("login");
    if (!sessionEnded(e)) failed(e);
  }
}

// ---- card login

// login signs in with the card through the card component's popup: the national ID and the PIN
// are typed here; the PIN goes only to the component on this computer, never to the server.
async function login(ev) {
  ev.preventDefault();
  const form = ev.target;
  const citizenID = form.elements.citizen_id.value.trim().toUpperCase();
  const pin = form.elements.pin.value;
  let component;
  try {
    component = openComponent(agent); // first, while the click still allows a popup
  } catch (e) {
    return cardFailed(e);
  }
  say(t("home.signing"));
  $("login-button").disabled = true;
  try {
    const { challenge, tbs } = await api("GET", "/api/v1/card/challenge");
    const pkcs7 = await component.signPKCS7(tbs, pin);
    form.elements.pin.value = "";
    const r = await api("POST", "/api/v1/card/login", { challenge, pkcs7, citizen_id: citizenID });
    watchSession(r.session);
    say("");
    $("session-name").textContent = t("home.signed_in", { name: r.citizen.name, id: r.citizen.id_masked });
    if (r.account) showAccount(r.account);
    else showRegister();
  } catch (e) {
    component.close();
    if (e instanceof CardError) cardFailed(e);
    else failed(e);
  } finally {
    $("login-button").disabled = false;
  }
}

// cardFailed says what the card component reported, and what to do about it.
function cardFailed(e) {
  say(t("card." + e.code) + (e.detail ? t("common.code", { code: e.detail }) : ""), true);
  $("component-help").hidden = !["no_component", "popup_blocked", "failed"].includes(e.code);
  if (e.code.startsWith("wrong_pin") || e.code === "pin_length") $("login-pin").focus();
}

async function logout() {
  try {
    await api("POST", "/api/v1/card/logout");
  } catch (e) {
    if (!sessionEnded(e)) return failed(e);
  }
  account = null;
  watchSession(null);
  view("login");
  say(t("home.logged_out"));
  $("login-button").focus();
}

// ---- registration and the account

function showRegister() {
  view("register");
  $("register-heading").focus();
}

async function register(ev) {
  ev.preventDefault();
  const f = new FormData(ev.target);
  try {
    showAccount(await api("POST", "/api/v1/account", { email: f.get("email"), phone: f.get("phone") }));
    say(t("home.registered"));
    $("account-heading").focus();
  } catch (e) {
    failed(e);
  }
}

function showAccount(a) {
  account = a;
  $("session-name").textContent = t("home.signed_in", { name: a.name, id: a.id_masked });
  $("acct-name").textContent = a.name;
  $("acct-id").textContent = a.id_masked;
  $("acct-email").textContent = a.email;
  $("acct-email-state").textContent = t(a.email_verified ? "home.email_verified" : "home.email_unverified");
  $("acct-email-state").dataset.status = a.email_verified ? "active" : "pending";
  $("resend-button").hidden = a.email_verified;
  $("acct-phone").textContent = a.phone;
  $("acct-status").textContent = t("account." + a.status);
  $("acct-status").dataset.status = a.status;
  $("suspend-button").hidden = a.status !== "active";
  $("reinstate-button").hidden = a.status === "active";
  $("devices").replaceChildren(...a.devices.map(deviceItem));
  $("no-devices").hidden = a.devices.length > 0;
  view("account");
  loadEvents(true);
}

// reload shows the account as it now is, after a change.
async function reload() {
  try {
    showAccount(await api("GET", "/api/v1/account"));
  } catch (e) {
    failed(e);
  }
}

// act runs a change and shows the account as it then is; done is said once it has worked.
async function act(change, done) {
  try {
    await change();
    showAccount(await api("GET", "/api/v1/account"));
    say(done);
    return true;
  } catch (e) {
    failed(e);
    return false;
  }
}

async function setSuspended(suspended) {
  const path = suspended ? "/api/v1/account/suspend" : "/api/v1/account/reinstate";
  if (await act(() => api("POST", path), t(suspended ? "home.suspended" : "home.reinstated"))) {
    $(suspended ? "reinstate-button" : "suspend-button").focus();
  }
}

// ---- devices

function deviceItem(d) {
  const li = $("device-template").content.firstElementChild.cloneNode(true);
  const q = (sel) => li.querySelector(sel);
  li.dataset.deviceId = d.id;
  li.dataset.status = d.status;
  const nameID = "device-name-" + d.id;
  Object.assign(q(".device-name"), { id: nameID, textContent: d.name });
  // A suspended account's phones cannot log in, whatever each one's own status.
  const shown = account?.status === "suspended" && d.status === "active" ? "suspended" : d.status;
  q(".device-status").textContent = t("device." + shown);
  q(".device-status").dataset.status = shown;
  setTime(q(".device-created"), d.created_at, date);
  setTime(q(".device-expires"), d.expires_at, date);
  q(".device-last-used").textContent = d.last_used_at ? dateTime(d.last_used_at) : t("device.never_used");
  if (d.status === "suspended" && d.clone_warning_at) {
    // A clone warning suspended it: what happened, and what to do.
    q(".device-warning").textContent = "⚠ " + t("device.clone_warning", { date: dateTime(d.clone_warning_at) });
    q(".device-warning").hidden = false;
  } else if (d.expires_soon) {
    q(".device-warning").textContent = "⚠ " + t("device.expires_soon", { date: date(d.expires_at) });
    q(".device-warning").hidden = false;
  }
  // The buttons name their device to screen readers, which read each "Rename" alike.
  for (const b of li.querySelectorAll("button")) b.setAttribute("aria-describedby", nameID);
  q(".revoke").hidden = d.status === "revoked";

  const actions = q(".device-actions"), form = q(".rename-form"), confirm = q(".revoke-confirm");
  const only = (part) => {
    for (const p of [actions, form, confirm]) p.hidden = p !== part;
  };
  q(".rename").addEventListener("click", () => {
    only(form);
    form.elements.name.value = d.name;
    form.elements.name.focus();
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = form.elements.name.value.trim();
    const path = "/api/v1/devices/" + encodeURIComponent(d.id);
    if (await act(() => api("PATCH", path, { name }), t("device.renamed", { name }))) focusDevice(d.id, ".rename");
  });
  q(".revoke").addEventListener("click", () => {
    only(confirm);
    q(".revoke-question").textContent = t("device.revoke_confirm", { name: d.name });
    q(".revoke-yes").focus();
  });
  q(".revoke-yes").addEventListener("click", async () => {
    const path = "/api/v1/devices/" + encodeURIComponent(d.id);
    if (await act(() => api("DELETE", path), t("device.revoked_done", { name: d.name }))) focusDevice(d.id, ".rename");
  });
  for (const b of li.querySelectorAll(".cancel")) {
    b.addEventListener("click", () => {
      only(actions);
      q(".rename").focus();
    });
  }
  return li;
}

function focusDevice(id, sel) {
  for (const li of $("devices").children) if (li.dataset.deviceId === id) li.querySelector(sel).focus();
}

// ---- binding a phone

async function bind() {
  say("");
  try {
    const b = await api("POST", "/api/v1/bindings");
    $("qr").src = b.qr_png;
    $("qr").title = b.qr_text;
    $("qr-text").textContent = b.qr_text;
    setTime($("qr-expires"), b.expires_at, time);
    $("qr-box").hidden = false;
    $("bind-again").hidden = true;
    $("bind").hidden = false;
    setBindStatus("pending");
    $("bind").scrollIntoView({ block: "start" });
    $("bind-heading").focus({ preventScroll: true });
    follow(b.id, ++binding);
  } catch (e) {
    failed(e);
  }
}

function setBindStatus(status, device, reason) {
  const s = $("bind-status");
  if (s.dataset.status === status) return; // said once, not again at every poll
  s.dataset.status = status;
  s.textContent = status === "refused" ? t("bind.refused", { reason: refusal(reason) })
    : t("bind." + status, device && { name: device.name, date: date(device.expires_at) });
}

// follow polls the binding until it is bound or expired, showing each step without a reload.
async function follow(id, mine) {
  for (;;) {
    await sleep(1500);
    if (mine !== binding) return;
    let st;
    try {
      st = await api("GET", "/api/v1/bindings/" + encodeURIComponent(id));
    } catch (e) {
      if (e.status === 401 || e.status === 404) return failed(e); // the session or the binding is gone
      continue; // the network faltered: the next poll shows where it stands
    }
    if (mine !== binding) return;
    setBindStatus(st.status, st.device, st.reason);
    if (st.status === "bound" || st.status === "expired" || st.status === "refused") {
      $("qr-box").hidden = true;
      $("bind-again").hidden = st.status === "bound";
      // What the phone met may be news to this page too (a suspension from another session).
      if (st.status !== "expired") reload();
      return;
    }
  }
}

// ---- the audit log

async function loadEvents(first) {
  const cursor = first ? "" : "&before=" + encodeURIComponent(nextEvents);
  let page;
  try {
    page = await api("GET", "/api/v1/account/events?limit=20" + cursor);
  } catch (e) {
    return failed(e);
  }
  const items = page.events.map(eventItem);
  if (first) $("events").replaceChildren(...items);
  else $("events").append(...items);
  nextEvents = page.next;
  $("events-more").hidden = !nextEvents;
  $("no-events").hidden = $("events").children.length > 0;
}

function eventItem(e) {
  const li = $("event-template").content.firstElementChild.cloneNode(true);
  const q = (sel) => li.querySelector(sel);
  setTime(q(".event-time"), e.time, dateTime);
  q(".event-what").textContent = known("event." + e.type, e.type);
  q(".event-outcome").textContent = known("outcome." + e.outcome, e.outcome);
  q(".event-outcome").dataset.status = e.outcome;
  const device = account?.devices.find((d) => d.id === e.device_id);
  const detail = [];
  if (e.client_name) detail.push(t("event.client", { name: e.client_name }));
  if (e.device_id) detail.push(t("event.device", { name: device ? device.name : t("event.other_device") }));
  if (e.reason) detail.push(refusal(e.reason));
  q(".event-detail").textContent = detail.join(t("event.separator"));
  return li;
}

// known is the catalog's text for key, or fallback for a value the catalog does not know yet.
function known(key, fallback) {
  const text = t(key);
  return text === key ? fallback : text;
}

$("login-form").addEventListener("submit", login);
$("logout-button").addEventListener("click", logout);
$("register-form").addEventListener("submit", register);
$("suspend-button").addEventListener("click", () => setSuspended(true));
$("resend-button").addEventListener("click", () => act(() => api("POST", "/api/v1/account/email/verification"), t("home.email_sent", { email: account.email })));
$("reinstate-button").addEventListener("click", () => setSuspended(false));
$("bind-button").addEventListener("click", bind);
$("bind-again").addEventListener("click", bind);
$("events-more").addEventListener("click", () => loadEvents(false));
$("session-extend").addEventListener("click", extendSession);
start();
