// The device token of the phone bound in this browser: the key to its inbox, kept in the
// browser's storage by the bind page, as an app would keep it, and sent only to this server.
const key = "mcert.device_token";

export const deviceToken = () => localStorage.getItem(key) || "";

export function keepDeviceToken(token) {
  localStorage.setItem(key, token);
}

export function forgetDeviceToken() {
  localStorage.removeItem(key);
}
