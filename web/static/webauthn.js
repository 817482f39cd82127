// What the phone pages share: the QR code's token, and WebAuthn with the server's options JSON
// in and the credential's JSON (RegistrationResponseJSON, AuthenticationResponseJSON) out.
// Browsers with PublicKeyCredential.parse*OptionsFromJSON and toJSON convert by themselves; for
// the others it is done here, base64url to ArrayBuffer and back.
import { explain, say, t } from "/static/api.js";

// token is the QR code's token from the address's fragment, which the browser never sends to
// the server; "" when it is missing, and the citizen is told to scan again. A new QR code opened
// in the same tab changes only the fragment, and starts the page over.
export function token() {
  addEventListener("hashchange", () => location.reload());
  const tok = location.hash.slice(1);
  if (!tok) say(t("phone.no_token"), true);
  return tok;
}

const PKC = globalThis.PublicKeyCredential;

export const supported = Boolean(PKC && navigator.credentials);

const decode = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0)).buffer;

const encode = (buf) =>
  btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

const withIDs = (list) => list?.map((c) => ({ ...c, id: decode(c.id) }));

// create makes a credential with the phone's biometric (a bind).
export async function create(o) {
  const publicKey = PKC.parseCreationOptionsFromJSON?.(o) ??
    { ...o, challenge: decode(o.challenge), user: { ...o.user, id: decode(o.user.id) }, excludeCredentials: withIDs(o.excludeCredentials) };
  return toJSON(await navigator.credentials.create({ publicKey }));
}

// get signs the login's challenge with the phone's credential.
export async function get(o) {
  const publicKey = PKC.parseRequestOptionsFromJSON?.(o) ??
    { ...o, challenge: decode(o.challenge), allowCredentials: withIDs(o.allowCredentials) };
  return toJSON(await navigator.credentials.get({ publicKey }));
}

function toJSON(cred) {
  if (typeof cred.toJSON === "function") return cred.toJSON();
  const r = cred.response;
  const response = { clientDataJSON: encode(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = encode(r.attestationObject);
    response.transports = r.getTransports?.() ?? [];
  } else {
    response.authenticatorData = encode(r.authenticatorData);
    response.signature = encode(r.signature);
    if (r.userHandle) response.userHandle = encode(r.userHandle);
  }
  return {
    id: cred.id,
    rawId: encode(cred.rawId),
    type: cred.type,
    response,
    authenticatorAttachment: cred.authenticatorAttachment ?? undefined,
    clientExtensionResults: cred.getClientExtensionResults(),
  };
}

// problem is what to tell the citizen when a step of the phone's page failed: the browser's
// WebAuthn call (the phone's biometric was not completed, the phone is bound already, or the
// address does not fit), or the API's refusal.
export function problem(e) {
  const key = { NotAllowedError: "phone.not_allowed", InvalidStateError: "phone.invalid_state", SecurityError: "phone.security" }[e.name];
  return key ? t(key) : explain(e);
}
