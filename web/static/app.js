// The enrollment page: card login through the card agent, registration, and binding a phone.
import { $, api, say } from "/static/api.js";

const agent = document.body.dataset.agent;

function show(id) {
  for (const s of ["login", "register", "account", "bind"]) $(s).hidden = s !== id;
}

function renderAccount(a) {
  $("acct-name").textContent = a.name;
  $("acct-id").textContent = a.id_masked;
  $("acct-email").textContent = a.email;
  $("acct-phone").textContent = a.phone;
  const list = $("devices");
  list.replaceChildren();
  for (const d of a.devices) {
    const li = document.createElement("li");
    li.textContent = `${d.name}（${d.status}，有效至 ${d.expires_at.slice(0, 10)}）`;
    // The binding lasts one year; a month ahead, the citizen is told to bind the phone again.
    if (d.expires_soon) li.append(Object.assign(document.createElement("strong"), { textContent: " 即將到期，請以自然人憑證重新綁定" }));
    list.append(li);
  }
  if (a.devices.length === 0) list.append(Object.assign(document.createElement("li"), { textContent: "尚未綁定" }));
  show("account");
}

async function refresh() {
  try {
    renderAccount(await api("GET", "/api/v1/account"));
  } catch (e) {
    if (e.code === "no_account") show("register");
    else show("login");
  }
}

async function login() {
  say("");
  try {
    const { challenge } = await api("GET", "/api/v1/card/challenge");
    let signed;
    try {
      const res = await fetch(agent + "/sign", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ challenge }),
      });
      signed = await res.json();
      if (!res.ok) throw new Error(signed.message || res.statusText);
    } catch (e) {
      say("無法連線讀卡機元件：請確認已插入自然人憑證並執行 mcert card agent。(" + e.message + ")");
      return;
    }
    const r = await api("POST", "/api/v1/card/login", { challenge, ...signed });
    if (r.account) renderAccount(r.account);
    else {
      $("register-citizen").textContent = `${r.citizen.name}（${r.citizen.id_masked}）`;
      show("register");
    }
  } catch (e) {
    say("登入失敗：" + e.message);
  }
}

async function register(ev) {
  ev.preventDefault();
  const f = new FormData(ev.target);
  try {
    renderAccount(await api("POST", "/api/v1/account", { email: f.get("email"), phone: f.get("phone") }));
    say("註冊成功");
  } catch (e) {
    say("註冊失敗：" + e.message);
  }
}

const statusText = { pending: "等待掃描…", scanned: "已掃描，請在手機上以生物特徵驗證…", bound: "綁定完成", expired: "QR code 已逾時，請重新產生" };

async function bind() {
  say("");
  try {
    const b = await api("POST", "/api/v1/bindings");
    $("qr").src = b.qr_png;
    $("qr").title = b.qr_text;
    $("qr-expires").textContent = new Date(b.expires_at).toLocaleTimeString();
    show("bind");
    poll(b.id);
  } catch (e) {
    say("無法產生 QR code：" + e.message);
  }
}

async function poll(id) {
  try {
    const st = await api("GET", "/api/v1/bindings/" + id);
    $("bind-status").textContent = statusText[st.status] || st.status;
    $("bind-status").dataset.status = st.status;
    if (st.status === "bound") { setTimeout(refresh, 1500); return; }
    if (st.status === "expired") return;
  } catch (e) {
    $("bind-status").textContent = e.message;
    if (e.status === 401) return;
  }
  setTimeout(() => poll(id), 1500);
}

$("login-button").addEventListener("click", login);
$("register-form").addEventListener("submit", register);
$("bind-button").addEventListener("click", bind);
refresh();
