// The phone's side of a relying-party login, in its browser (PROTOCOL.md section 4): it shows
// who asks and the code to compare with the computer's, and approves with the biometric or
// denies.
import { $, api, explain, say, t } from "/static/api.js";
import { get, problem, supported, token } from "/static/webauthn.js";

const tok = token();
let options = null; // kept, so that the biometric may be tried again after a failure

async function start() {
  if (!tok) return;
  try {
    const r = await api("POST", "/api/v1/phone/login/begin", { token: tok });
    options = r.publicKey;
    $("client-name").textContent = r.client_name;
    $("code").textContent = r.code;
    // Which browser asked, and when: the citizen approves only a login they started just now.
    const when = new Date(r.requested_at).toLocaleTimeString(document.documentElement.lang, { hour: "2-digit", minute: "2-digit" });
    $("origin").textContent = r.browser ? t("mlogin.origin_browser", { browser: r.browser, time: when }) : t("mlogin.origin_time", { time: when });
    $("own-screen").hidden = !r.browser; // a push request was not scanned from a screen
    if (r.binding_message) {
      $("binding-message").textContent = r.binding_message;
      $("binding-message-box").hidden = false;
    }
    $("request").hidden = false;
    say("");
    // Without WebAuthn the login can still be denied.
    $("approve-button").disabled = !supported;
    if (!supported) say(t("phone.no_webauthn"), true);
  } catch (e) {
    say(explain(e), true);
  }
}

async function answer(approve) {
  $("approve-button").disabled = $("deny-button").disabled = true;
  try {
    let r;
    if (approve) {
      say(t("phone.verifying"));
      const credential = await get(options);
      r = await api("POST", "/api/v1/phone/login/finish", { token: tok, credential });
    } else {
      r = await api("POST", "/api/v1/phone/login/deny", { token: tok });
    }
    done(r.status);
  } catch (e) {
    say(problem(e), true);
  } finally {
    $("approve-button").disabled = !supported;
    $("deny-button").disabled = false;
  }
}

function done(status) {
  say("");
  $("request").hidden = true;
  $("result-text").textContent = t("mlogin." + status);
  $("result").dataset.status = status;
  $("result").hidden = false;
  $("result").focus();
}

$("approve-button").addEventListener("click", () => answer(true));
$("deny-button").addEventListener("click", () => answer(false));
start();
