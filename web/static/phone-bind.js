// The phone's side of binding, in its browser (PROTOCOL.md section 3): the citizen names the
// phone and enables the biometric, and the phone is bound.
import { $, api, say, t, date } from "/static/api.js";
import { create, problem, supported, token } from "/static/webauthn.js";

const tok = token();
// The creation options are kept: the token works for one begin, and the biometric may be
// tried again with them.
let options = null;

// defaultName names the phone by its platform; the citizen may change it.
function defaultName() {
  const ua = navigator.userAgent;
  if (/android/i.test(navigator.userAgentData?.platform ?? "") || /Android/.test(ua)) return t("mbind.android");
  if (/iPhone/.test(ua)) return t("mbind.iphone");
  if (/iPad/.test(ua) || (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1)) return t("mbind.ipad");
  return t("mbind.other");
}

async function bind(ev) {
  ev.preventDefault();
  $("bind-button").disabled = true;
  try {
    if (!options) {
      const r = await api("POST", "/api/v1/phone/bind/begin", { token: tok, device_name: $("device-name").value.trim() });
      options = r.publicKey;
      $("device-name").readOnly = true; // the name went with the begin
    }
    say(t("phone.verifying"));
    const credential = await create(options);
    const r = await api("POST", "/api/v1/phone/bind/finish", { token: tok, credential });
    // r.device_token is the app's key to its inbox; the browser has no use for it.
    done(r.device);
  } catch (e) {
    say(problem(e), true);
  } finally {
    $("bind-button").disabled = false;
  }
}

function done(device) {
  say("");
  $("bind").hidden = true;
  $("result-expires").textContent = t("mbind.expires", { name: device.name, date: date(device.expires_at) });
  $("result").dataset.status = "bound";
  $("result").hidden = false;
  $("result-heading").focus();
}

$("device-name").value = defaultName();
$("bind-form").addEventListener("submit", bind);
if (!tok || !supported) {
  $("bind-button").disabled = true;
  if (tok) say(t("phone.no_webauthn"), true);
}
