// The relying-party login page: shows the QR code and the code to compare, and follows the
// login until the phone answers, then continues to the website.
import { $, api, say } from "/static/api.js";

const id = decodeURIComponent(location.pathname.split("/").pop());
const state = "/api/v1/logins/" + encodeURIComponent(id);

const statusText = {
  pending: "等待掃描…",
  scanned: "已掃描，請確認手機上的驗證碼，並以生物特徵驗證…",
  approved: "登入成功，正在返回網站…",
  denied: "已拒絕：此登入已在手機上被拒絕。",
};

// notice says the QR code was refreshed, until the new one is scanned.
let notice = "";

function render(st) {
  $("client-name").textContent = st.client_name;
  $("code").textContent = st.code;
  $("qr-expires").textContent = new Date(st.expires_at).toLocaleTimeString();
  $("login-status").textContent = statusText[st.status] || st.status;
  $("login-status").dataset.status = st.status;
  // The image's address stays the same across refreshes; the query makes the browser fetch
  // the new one without putting the token in a URL.
  const src = st.qr_png + "?expires=" + encodeURIComponent(st.expires_at);
  if ($("qr").getAttribute("src") !== src) $("qr").src = src;
  $("qr").hidden = st.status === "approved" || st.status === "denied";
  if (st.status !== "pending") notice = "";
  say(notice);
}

// stop ends the page: the login is gone and only the website can start a new one.
function stop(e) {
  $("login").hidden = true;
  say(e.status === 404 ? "找不到此登入請求，請回到網站重新登入。" : "登入請求已逾時，請回到網站重新登入。");
}

async function poll() {
  let st;
  try {
    st = await api("GET", state);
    if (st.status === "expired") {
      st = await api("POST", state + "/qr");
      notice = "QR code 已逾時，已重新產生";
    }
  } catch (e) {
    if (e.status === 404 || e.status === 410) return stop(e);
    // Answered meanwhile (409) or the network faltered: the next poll shows where it stands.
    if (e.status !== 409) say("無法取得登入狀態，稍後重試：" + e.message);
    setTimeout(poll, 1500);
    return;
  }
  render(st);
  if (st.status === "approved" && st.continue) {
    window.location = st.continue;
    return;
  }
  if (st.status === "denied" && st.continue) {
    // Let the refusal be read, then hand the website its answer.
    setTimeout(() => { window.location = st.continue; }, 3000);
    return;
  }
  if (st.status !== "approved" && st.status !== "denied") setTimeout(poll, 1500);
}

poll();
