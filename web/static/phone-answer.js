// The approve and deny buttons of a request on the phone's page, a login's or a signing
// request's: approving runs the biometric on the options begin gave and finishes at finishPath;
// denying denies either kind. done gets the answer's status.
import { $, api, say, t } from "/static/api.js";
import { get, problem, supported } from "/static/webauthn.js";

export function answerButtons(tok, finishPath, options, done) {
  async function answer(approve) {
    $("approve-button").disabled = $("deny-button").disabled = true;
    try {
      let r;
      if (approve) {
        say(t("phone.verifying"));
        const credential = await get(options());
        r = await api("POST", finishPath, { token: tok, credential });
      } else {
        r = await api("POST", "/api/v1/phone/login/deny", { token: tok });
      }
      say("");
      $("request").hidden = true;
      done(r.status);
      $("result").dataset.status = r.status;
      $("result").hidden = false;
      $("result").focus();
    } catch (e) {
      say(problem(e), true);
    } finally {
      $("approve-button").disabled = !supported;
      $("deny-button").disabled = false;
    }
  }
  $("approve-button").addEventListener("click", () => answer(true));
  $("deny-button").addEventListener("click", () => answer(false));
}
