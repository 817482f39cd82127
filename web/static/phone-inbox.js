// The phone's inbox, in its browser: the push-style (CIBA) requests waiting for this phone,
// each opened on the approval page, which approves with the biometric or denies.
import { $, api, say, t, time, sleep } from "/static/api.js";
import { deviceToken, forgetDeviceToken } from "/static/inbox-token.js";

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
  $("no-device").hidden = false;
}

$("inbox-refresh").addEventListener("click", async () => {
  try {
    render(await load());
  } catch {
    say(t("minbox.failed"), true);
  }
});
if (token) poll();
else showNoDevice();
