// Signing with the citizen card through MOICA's cross-platform web component (內政部憑證管理中心
// 跨平台網頁元件), or mcert's development card agent, which speaks the same protocol. The
// component sends no CORS headers, so pages reach it through a popup of its own: the popup
// posts {"func":"getTbs"} when it is ready, the page answers with what to sign and the PIN, and
// the popup posts the signature back and closes (PROTOCOL.md section 1b).

// The component's major error codes (ret_code) and the card's status words (last_error), as
// MOICA's integration code names them; each becomes a message key of the page.
const majors = {
  0x76000006: "no_card",
  0x76100003: "no_reader",
  0x76100004: "no_reader",
  0x76000998: "no_pin",
  0x76000999: "cancelled",
  0x7600000f: "forbidden_site",
  0x76000031: "forbidden_site",
};
const minors = {
  0xa0: "wrong_pin",
  0xa2: "pin_length",
  0xa4: "locked",
  0x80000001: "wrong_pin_1",
  0x80000002: "wrong_pin_2",
};

// CardError is a failure of the card step that the citizen can act on: code is a key of the
// "card." messages; detail, when set, the component's numbers for a support call.
export class CardError extends Error {
  constructor(code, detail = "") {
    super(code);
    this.code = code;
    this.detail = detail;
  }
}

// Some versions of the component send its 32-bit codes as signed numbers.
const unsigned = (n) => (typeof n === "number" && n < 0 ? n + 0x100000000 : n);

function failure(answer) {
  const major = unsigned(answer.ret_code);
  const minor = unsigned(answer.last_error);
  const code = minors[minor] || majors[major] || "failed";
  return new CardError(code, "0x" + Number(major).toString(16) + (minor ? " / 0x" + Number(minor).toString(16) : ""));
}

// openComponent opens the component's popup and starts listening to it at once: the popup may
// say it is ready before the page has its challenge. Browsers allow a popup only from the
// citizen's own click, so this must run in the click's handler before anything is awaited.
// ready is how long the component may take to load (none answers when it is not installed or
// not running); the citizen then has a minute to insert the card and sign.
export function openComponent(componentURL, { ready = 10000, signing = 60000 } = {}) {
  const popup = window.open(componentURL + "/popupForm", "", "popup,width=420,height=360");
  if (!popup) throw new CardError("popup_blocked");
  const origin = new URL(componentURL).origin;
  let request = null; // the MakeSignature message, once the page has it
  let isReady = false;
  let settle;
  const result = new Promise((resolve, reject) => (settle = { resolve, reject }));
  result.catch(() => {}); // a popup closed before signPKCS7 was called has no one to tell
  let timer;
  const wait = (ms, code) => {
    clearTimeout(timer);
    timer = setTimeout(() => end(new CardError(code)), ms);
  };
  const closed = setInterval(() => popup.closed && end(new CardError("cancelled")), 500);
  function end(err, signature) {
    clearTimeout(timer);
    clearInterval(closed);
    window.removeEventListener("message", onMessage);
    if (!popup.closed) popup.close();
    err ? settle.reject(err) : settle.resolve(signature);
  }
  const send = () => {
    if (isReady && request) {
      wait(signing, "timeout");
      popup.postMessage(request, origin);
    }
  };
  function onMessage(ev) {
    if (ev.origin !== origin || ev.source !== popup) return;
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (msg.func === "getTbs") {
      isReady = true;
      send();
    } else if (msg.func === "sign") {
      if (msg.ret_code === 0 && msg.signature) end(null, msg.signature);
      else end(failure(msg));
    }
  }
  window.addEventListener("message", onMessage);
  wait(ready, "no_component");
  return {
    // signPKCS7 has the card sign tbs as a PKCS#7 SignedData, and returns it in base64.
    signPKCS7(tbs, pin) {
      request = JSON.stringify({
        func: "MakeSignature", signatureType: "PKCS7", tbs, tbsEncoding: "NONE",
        hashAlgorithm: "SHA256", withCardSN: "false", pin, nonce: "",
      });
      send();
      return result;
    },
    close: () => end(new CardError("cancelled")),
  };
}
