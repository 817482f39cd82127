// The phone's side of a signing request, in its browser (PROTOCOL.md section 9): it shows the
// website, its text and each document with a short fingerprint of its digest, and approves with
// the biometric (the challenge commits to all of it) or denies.
import { $, api, explain, say, t } from "/static/api.js";
import { answerButtons } from "/static/phone-answer.js";
import { supported, token } from "/static/webauthn.js";

const tok = token();
let options = null; // kept, so that the biometric may be tried again after a failure

// fingerprint is the first 8 bytes of a base64url digest, in hex groups, as a person compares it.
function fingerprint(digest) {
  const bytes = atob(digest.replaceAll("-", "+").replaceAll("_", "/").padEnd(44, "=")).slice(0, 8);
  const hex = [...bytes].map((c) => c.charCodeAt(0).toString(16).padStart(2, "0")).join("");
  return hex.match(/.{4}/g).join(" ");
}

async function start() {
  if (!tok) return;
  try {
    const r = await api("POST", "/api/v1/phone/sign/begin", { token: tok });
    options = r.publicKey;
    $("client-name").textContent = r.client_name;
    $("sign-text").textContent = r.text;
    $("documents").replaceChildren(...r.documents.map((d) => {
      const li = document.createElement("li");
      const name = document.createElement("span");
      name.textContent = d.name;
      const fp = document.createElement("code");
      fp.textContent = fingerprint(d.digest);
      li.append(name, " ", fp);
      return li;
    }));
    $("request").hidden = false;
    say("");
    $("approve-button").disabled = !supported;
    if (!supported) say(t("phone.no_webauthn"), true);
  } catch (e) {
    say(explain(e), true);
  }
}

answerButtons(tok, "/api/v1/phone/sign/finish", () => options, (status) => {
  $("result-text").textContent = t("msign." + status);
});
start();
