// The card agent's popup speaks the protocol of MOICA's card component with the page that
// opened it (PROTOCOL.md section 1b): it says it is ready with {"func":"getTbs"}, takes one
// request, a JSON string, from the configured origin only, has the agent answer it, posts the
// answer back to that origin and closes. Messages go to that origin only, so a page of another
// site that opens the popup hears nothing from it.
"use strict";
(() => {
  const origin = document.documentElement.dataset.origin;
  const status = document.getElementById("status");
  const opener = window.opener;
  // GetUserCert and CheckEnvir read the card; the agent answers or refuses everything else.
  const reads = new Map([["GetUserCert", "/pkcs11info?withcert=true"], ["CheckEnvir", "/pkcs11info"]]);
  let busy = false;
  let reported = false;

  if (!opener) {
    status.textContent = "請從 mcert 的網頁開啟此視窗。Open this window from mcert's page.";
    return;
  }

  async function answer(request) {
    let func;
    try {
      func = JSON.parse(request).func;
    } catch {
      // Not JSON: the agent answers with the component's code for that.
    }
    const read = reads.get(func);
    const res = read ? await fetch(read) :
      await fetch("/popupSign", {method: "POST", headers: {"Content-Type": "application/json"}, body: request});
    return res.text();
  }

  window.addEventListener("message", async (event) => {
    if (event.origin !== origin) {
      // The agent logs what the popup ignores, so that an agent started with the wrong
      // --origin says so. Once is enough; the agent's own origin is the browser's business.
      if (!reported && event.origin !== location.origin) {
        reported = true;
        fetch("/popupIgnored", {method: "POST", headers: {"Content-Type": "application/json"},
          body: JSON.stringify({origin: event.origin})}).catch(() => {});
      }
      return;
    }
    if (event.source !== opener || busy || typeof event.data !== "string") {
      return;
    }
    busy = true;
    status.textContent = "簽章中… Signing…";
    try {
      opener.postMessage(await answer(event.data), origin);
      window.close();
    } catch (e) {
      status.textContent = "卡片代理沒有回應。The card agent did not answer: " + e.message;
    }
  });
  opener.postMessage(JSON.stringify({func: "getTbs"}), origin);
})();
