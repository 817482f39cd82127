// The phone's side of binding, in its browser (PROTOCOL.md section 3): the citizen names the
// phone and enables the biometric, and the phone is bound.
import { $, api, say, t, date } from "/static/api.js";
import { keepDeviceToken } from "/static/inbox-token.js";
import { create, problem, supported, token } from "/static/webauthn.js";

const tok = token();
// The creation options are kept: the token works for one begin, and the biometric may be
// tried again with them.
let options = null;

// defaultName names the phone by its model where the browser tells it (Android's does), else by
// its platform; the citizen may change it, and the server numbers two of one name.
function defaultName() {
  const ua = navigator.userAgent;
  const model = /Android [\d.]+; ([^;)]+?)(?: Build\/[^;)]*)?\)/.exec(ua)?.[1];
  if (model && model !== "K") return model; // "K" is what Chrome's reduced user agent says
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
      $("device-name-hint").textContent = t("mbind.device_sent");
    }
    say(t("phone.verifying"));
    const credential = await create(options);
    const r = await api("POST", "/api/v1/phone/bind/finish", { token: tok, credential });
    // The key to this phone's inbox, where push-style login requests wait: kept in the
    // browser, which then answers them on /m/inbox as the app would.
    keepDeviceToken(r.device_token);
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

// invite shows whose account the phone joins, and refuses at once a code that is used or has
// expired, before the citizen types anything.
async function invite() {
  try {
    const r = await api("POST", "/api/v1/phone/bind/info", { token: tok });
    $("invite").textContent = t("mbind.invite", { name: r.account.name, id: r.account.id_masked });
    $("invite").hidden = false;
  } catch (e) {
    $("bind-button").disabled = true;
    $("device-name").disabled = true;
    say(problem(e), true);
  }
}

$("device-name").value = defaultName();
$("bind-form").addEventListener("submit", bind);
if (!tok || !supported) {
  $("bind-button").disabled = true;
  if (tok) say(t("phone.no_webauthn"), true);
}
if (tok) invite();
