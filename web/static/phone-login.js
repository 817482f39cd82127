// The phone's side of a relying-party login, in its browser (PROTOCOL.md section 4): it shows
// who asks and the code to compare with the computer's, and approves with the biometric or
// denies.
import { $, api, explain, say, t } from "/static/api.js";
import { answerButtons } from "/static/phone-answer.js";
import { supported, token } from "/static/webauthn.js";

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

// Opened from the login page on this same phone (?login=<id>): its answer returns there, and the
// login page hands the browser back to the website.
const back = new URLSearchParams(location.search).get("login");

answerButtons(tok, "/api/v1/phone/login/finish", () => options, (status) => {
  $("result-text").textContent = t("mlogin." + status);
  if (back) window.location = "/login/" + encodeURIComponent(back);
});
start();
