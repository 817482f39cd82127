// The relying-party login page: shows the QR code and the code to compare, and follows the
// login until the phone answers, then continues to the website.
import { $, api, explain, refusal, say, t, time, setTime, sleep } from "/static/api.js";

const id = decodeURIComponent(location.pathname.split("/").pop());
const state = "/api/v1/logins/" + encodeURIComponent(id);

// notice says the QR code was refreshed, until the new one is scanned.
let notice = "";

// ended are the states in which the page hands the browser back to the website.
const ended = (st) => st.status === "approved" || st.status === "denied" || st.status === "refused";

function render(st) {
  $("login-heading").textContent = t("login.intro", { client: st.client_name });
  $("code").textContent = st.code;
  $("qr-text").textContent = st.qr_text;
  setTime($("qr-expires"), st.expires_at, time);
  const s = $("login-status");
  if (s.dataset.status !== st.status) {
    s.dataset.status = st.status;
    s.textContent = st.status === "refused" ? t("login.refused", { reason: refusal(st.reason) }) : t(st.reason === "login_cancelled" ? "login.cancelled" : "login." + st.status);
  }
  // The image's address stays the same across refreshes; the query makes the browser fetch
  // the new one without putting the token in a URL.
  const src = st.qr_png + "?expires=" + encodeURIComponent(st.expires_at);
  if ($("qr").getAttribute("src") !== src) $("qr").src = src;
  $("qr").hidden = $("qr-text-box").hidden = $("cancel-button").hidden = $("same-phone-box").hidden = ended(st);
  // On the phone itself, nothing can scan the screen: the approval page opens here, for this
  // login, and comes back to this page, which then continues to the website.
  $("same-phone").href = "/m/login?login=" + encodeURIComponent(id) + "#" + st.qr_text.split("#")[1];
  if (st.status !== "pending") notice = "";
  say(notice);
}

// stop ends the page: the login is gone and only the website can start a new one.
function stop(e) {
  $("login").hidden = true;
  say(explain(e), true);
}

async function poll() {
  for (;;) {
    let st;
    try {
      st = await api("GET", state);
      if (st.status === "expired") {
        st = await api("POST", state + "/qr");
        notice = t("login.refreshed");
      }
    } catch (e) {
      if (e.status === 404 || e.status === 410) return stop(e);
      // Answered meanwhile (409) or the network faltered: the next poll shows where it stands.
      if (e.status !== 409) say(explain(e), true);
      await sleep(1500);
      continue;
    }
    render(st);
    if (ended(st)) return leave(st);
    await sleep(1500);
  }
}

// leave hands the browser back to the website. A refusal is left on screen a moment to be read
// first; a cancel needs no reading.
async function leave(st) {
  if (!st.continue) return;
  await sleep(st.status === "approved" || st.reason === "login_cancelled" ? 0 : 3000);
  window.location = st.continue;
}

$("cancel-button").addEventListener("click", async () => {
  $("cancel-button").disabled = true;
  try {
    const st = await api("POST", state + "/cancel");
    render(st);
    leave(st);
  } catch (e) {
    $("cancel-button").disabled = false;
    say(refusal(e.code), true);
  }
});

poll();
