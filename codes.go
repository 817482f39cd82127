package mcert

import (
	"fmt"
	"maps"
	"slices"
)

// Code is an entry of the error catalog: one of PROTOCOL.md's error codes with its kind, hence
// its HTTP status, the message the API answers (for programs and the developers who read their
// logs) and the text a citizen reads on the pages. The pages know only the code, so the texts
// take no parameters; the message may, as a fmt format that Newf fills.
type Code struct {
	Name    string // the stable snake_case code of the error body
	Kind    Kind
	Message string
	Text
}

// Text is what a citizen reads, in Traditional Chinese as written in Taiwan and in English:
// what happened and what to do, in whole sentences.
type Text struct{ ZH, EN string }

// New is an error of code c with c's message.
func (c *Code) New() *Error { return &Error{Kind: c.Kind, Code: c.Name, Message: c.Message} }

// Newf is an error of code c whose message is c's format filled with args.
func (c *Code) Newf(args ...any) *Error {
	return &Error{Kind: c.Kind, Code: c.Name, Message: fmt.Sprintf(c.Message, args...)}
}

// variant is code c with another message, for a case that c's own does not describe: the
// client reads the same code, and the citizen the same text.
func (c Code) variant(message string) *Code {
	c.Message = message
	return &c
}

// variantOfKind is a variant answered with the status of another kind, for an API whose
// contract gives the same code another status.
func (c Code) variantOfKind(kind Kind, message string) *Code {
	c.Kind, c.Message = kind, message
	return &c
}

// Codes are the catalog's entries, every code the server answers; the variants of a code are
// not listed again.
func Codes() []*Code { return slices.Clone(catalog) }

// Lookup is the catalog's entry for a code, or nil.
func Lookup(name string) *Code { return byName[name] }

var byName = func() map[string]*Code {
	m := make(map[string]*Code, len(catalog))
	for _, c := range catalog {
		m[c.Name] = c
	}
	return m
}()

// ComponentTexts are the texts of the failures that the citizen card component (MOICA's, or
// mcert's card agent) reports to the enrollment page, by the codes that page gives them
// (web/static/card.js): they happen in the browser and never travel over the API.
func ComponentTexts() map[string]Text { return maps.Clone(componentTexts) }

// The card login (PROTOCOL.md sections 1 and 1b).
var (
	ChallengeNotFound = &Code{Name: "challenge_not_found", Kind: NotFound,
		Message: "unknown challenge; ask for one at /api/v1/card/challenge",
		Text: Text{
			ZH: "找不到此次自然人憑證登入的驗證資料，請重新以自然人憑證登入。",
			EN: "This card login attempt is not known; log in with your citizen certificate again."}}
	ChallengeExpired = &Code{Name: "challenge_expired", Kind: Expired,
		Message: "the challenge has expired; ask for a new one and sign within %v",
		Text: Text{
			ZH: "自然人憑證簽章已逾時，請重新以自然人憑證登入。",
			EN: "Signing with the citizen certificate took too long; log in with your citizen certificate again."}}
	ChallengeUsed = &Code{Name: "challenge_used", Kind: Conflict,
		Message: "this challenge has already been used; ask for a new one",
		Text: Text{
			ZH: "此次自然人憑證登入的驗證資料已使用過，請重新以自然人憑證登入。",
			EN: "This card login has already been used; log in with your citizen certificate again."}}
	BadCertificate = &Code{Name: "bad_certificate", Kind: Invalid,
		Message: "the card certificate is not valid DER X.509; send the certificate the card agent returned",
		Text: Text{
			ZH: "無法讀取自然人憑證IC卡上的憑證，請重新插入IC卡後再登入。",
			EN: "The certificate on the card cannot be read; insert the citizen certificate IC card again and log in."}}
	BadPKCS7 = &Code{Name: "bad_pkcs7", Kind: Invalid,
		Message: "the card's PKCS#7 signature is not usable: %s; sign the login text again with the card component",
		Text: Text{
			ZH: "跨平台網頁元件產生的簽章無法使用，請重新以自然人憑證登入。",
			EN: "The signature from the web component cannot be used; log in with your citizen certificate again."}}
	BadSignature = &Code{Name: "bad_signature", Kind: Unauthorized,
		Message: "the card's signature does not match the challenge; fetch a new challenge and sign it again",
		Text: Text{
			ZH: "自然人憑證的簽章驗證失敗，請重新以自然人憑證登入。",
			EN: "The citizen certificate's signature could not be verified; log in with your citizen certificate again."}}
	SignedOtherText = BadSignature.variant("the card signed another text than this site's login text; sign the challenge's tbs exactly as given")
	BadTBSSignature = BadSignature.variant("the card's signature does not match the login text; fetch a new challenge and sign it again")
	CardNotYetValid = &Code{Name: "card_not_yet_valid", Kind: Unauthorized,
		Message: "the card is valid only from %s; check the computer's clock",
		Text: Text{
			ZH: "此自然人憑證尚未生效，請確認電腦的日期與時間是否正確。",
			EN: "This citizen certificate is not valid yet; check the computer's date and time."}}
	CardExpired = &Code{Name: "card_expired", Kind: Unauthorized,
		Message: "the card expired on %s; renew it at a household registration office",
		Text: Text{
			ZH: "此自然人憑證已逾期，請至戶政事務所重新申請自然人憑證。",
			EN: "This citizen certificate has expired; apply for a new one at a household registration office."}}
	CardKeyUsage = &Code{Name: "card_key_usage", Kind: Unauthorized,
		Message: "the certificate is not meant for signing in; use the citizen card's signing certificate",
		Text: Text{
			ZH: "此憑證不能用於登入，請使用自然人憑證IC卡的簽章用憑證。",
			EN: "This certificate cannot be used to log in; use the signing certificate of your citizen certificate IC card."}}
	CardKeyType = &Code{Name: "card_key_type", Kind: Unauthorized,
		Message: "the card's key is too weak or of an unknown kind (RSA of at least 2048 bits or ECDSA P-256 are accepted); use a current citizen card",
		Text: Text{
			ZH: "此卡片的金鑰不符合安全要求，請使用現行有效的自然人憑證IC卡。",
			EN: "This card's key does not meet the security requirements; use a current citizen certificate IC card."}}
	CardUntrusted = &Code{Name: "card_untrusted", Kind: Unauthorized,
		Message: "the card was not issued by a trusted certificate authority",
		Text: Text{
			ZH: "此卡片並非由受信任的憑證機構簽發，請使用您的自然人憑證IC卡。",
			EN: "This card was not issued by a trusted certificate authority; use your citizen certificate IC card."}}
	CardNoCitizenID = &Code{Name: "card_no_citizen_id", Kind: Unauthorized,
		Message: "the card carries no valid national ID; log in with a citizen card",
		Text: Text{
			ZH: "無法從此卡片確認持卡人的身分證統一編號，請使用您的自然人憑證IC卡登入。",
			EN: "This card does not say whose it is; log in with your citizen certificate IC card."}}
	CardManySerials    = CardNoCitizenID.variant("the card's subject carries more than one serial number, so it does not name one citizen")
	CardUnclearCitizen = CardNoCitizenID.variant("the card does not name its citizen clearly: %v")
	CardRevoked        = &Code{Name: "card_revoked", Kind: Unauthorized,
		Message: "the card has been revoked; use a valid citizen card",
		Text: Text{
			ZH: "此自然人憑證已被廢止，請使用有效的自然人憑證。",
			EN: "This citizen certificate has been revoked; use a valid one."}}
	CardStatusUnknown = &Code{Name: "card_status_unknown", Kind: Unauthorized,
		Message: "the card's revocation status could not be checked just now; try again in a few minutes",
		Text: Text{
			ZH: "目前無法確認此自然人憑證是否有效，請過幾分鐘再試一次。",
			EN: "The citizen certificate's status cannot be checked just now; try again in a few minutes."}}
	CitizenIDRequired = &Code{Name: "citizen_id_required", Kind: Invalid,
		Message: "this card shows only the last four digits of its holder's national ID; type your whole national ID with the PIN",
		Text: Text{
			ZH: "此自然人憑證只記載身分證統一編號末四碼，請輸入完整的身分證統一編號與PIN碼後再登入。",
			EN: "This card carries only the last four digits of your national ID number; type the whole number with your PIN and log in again."}}
	InvalidCitizenID = &Code{Name: "invalid_citizen_id", Kind: Invalid,
		Message: "a national ID is one uppercase letter, then 1 or 2, then eight digits, such as A123456789",
		Text: Text{
			ZH: "身分證統一編號格式不正確，請確認為英文字母1碼加數字9碼（例如 A123456789）後再試一次。",
			EN: "The national ID number is not valid; check that it is one letter and nine digits, such as A123456789, and try again."}}
	CitizenIDDigits     = InvalidCitizenID.variant("a national ID has nine digits after its letter, such as A123456789")
	CitizenIDCheckDigit = InvalidCitizenID.variant("the national ID's check digit does not match; check the number for a typing error")
	CitizenIDMismatch   = &Code{Name: "citizen_id_mismatch", Kind: Unauthorized,
		Message: "the national ID you typed does not belong to this card's holder; check the number, or use your own card",
		Text: Text{
			ZH: "您輸入的身分證統一編號與此自然人憑證的持卡人不符，請確認號碼，或使用您本人的自然人憑證。",
			EN: "The national ID number you typed does not match this card's holder; check the number, or use your own citizen certificate."}}
	CitizenIDOfAnotherHolder = CitizenIDMismatch.variant("the account of the national ID you typed belongs to a card holder of another name; check the number, or use your own card")
	NoSession                = &Code{Name: "no_session", Kind: Unauthorized,
		Message: "log in with your citizen card first",
		Text: Text{
			ZH: "您尚未登入，或登入已結束，請以自然人憑證登入。",
			EN: "You are not logged in, or your session has ended; log in with your citizen certificate."}}
	SessionUnknown = NoSession.variant("your session is unknown or has ended; log in with your citizen card again")
	SessionExpired = &Code{Name: "session_expired", Kind: Unauthorized,
		Message: "your session has expired after %v; log in with your citizen card again",
		Text: Text{
			ZH: "登入已逾時，請重新以自然人憑證登入。",
			EN: "Your session has ended; log in with your citizen certificate again."}}
	SessionAtLimit = &Code{Name: "session_at_limit", Kind: Forbidden,
		Message: "this session cannot be extended any more; log in with your citizen card again",
		Text: Text{
			ZH: "登入時間已無法再延長，請重新以自然人憑證登入。",
			EN: "Your login cannot be extended any more; log in with your citizen certificate again."}}
)

// The account and its devices (sections 2 and 5).
var (
	InvalidContact = &Code{Name: "invalid_contact", Kind: Invalid,
		Message: "both email and phone are required",
		Text: Text{
			ZH: "請填寫正確的電子信箱與手機號碼：電子信箱如 name@example.tw，手機號碼為09開頭共10碼，例如 0912345678。",
			EN: "Enter a valid email address and mobile number: an address such as name@example.tw, and 10 digits starting with 09, such as 0912345678."}}
	ContactToChange = InvalidContact.variant("give email, phone or both to change")
	ContactProblems = InvalidContact.variant("%s") // every problem found, joined by "; "
	AccountExists   = &Code{Name: "account_exists", Kind: Conflict,
		Message: "you already have an account; change it with PATCH /api/v1/account",
		Text: Text{
			ZH: "您已完成註冊，請重新整理頁面查看帳戶資訊。",
			EN: "You are registered already; reload the page to see your account."}}
	NoAccount = &Code{Name: "no_account", Kind: NotFound,
		Message: "you have no account yet; register your email and phone first",
		Text: Text{
			ZH: "您尚未註冊，請先填寫電子信箱、手機號碼完成註冊。",
			EN: "You are not registered yet; enter your email and mobile number to register first."}}
	AccountSuspended = &Code{Name: "account_suspended", Kind: Forbidden,
		Message: "the account is suspended; reinstate it with a card login",
		Text: Text{
			ZH: "您的帳戶已暫停使用，請以自然人憑證登入並恢復使用後再試一次。",
			EN: "Your account is suspended; log in with your citizen certificate and reinstate it, then try again."}}
	SuspendedBeforeBinding = AccountSuspended.variant("your account is suspended; reinstate it with a card login before binding a phone")
	SuspendedNoBinding     = AccountSuspended.variant("the account is suspended; no phone can be bound to it")
	DeviceNotFound         = &Code{Name: "device_not_found", Kind: NotFound,
		Message: "no such device on your account",
		Text: Text{
			ZH: "您的帳戶中找不到此行動裝置，請重新整理頁面後再試一次。",
			EN: "This phone is not on your account; reload the page and try again."}}
	BadCursor = &Code{Name: "bad_cursor", Kind: Invalid,
		Message: "before must be the id of an event from an earlier page",
		Text: Text{
			ZH: "無法載入更多安全紀錄，請重新整理頁面後再試一次。",
			EN: "No more of the security log could be loaded; reload the page and try again."}}
)

// Binding a phone (section 3).
var (
	QROtherSession = &Code{Name: "qr_other_session", Kind: Forbidden,
		Message: "this QR code was made in another session; make a new one",
		Text: Text{
			ZH: "此QR Code是在另一次登入時產生的，請產生新的QR Code。",
			EN: "This QR code was made in another session; make a new one."}}
	BindingNotFound = &Code{Name: "binding_not_found", Kind: NotFound,
		Message: "no such binding; make a new QR code",
		Text: Text{
			ZH: "找不到此綁定用QR Code，請在電腦畫面產生新的QR Code後重新掃描。",
			EN: "This binding QR code is not known; make a new QR code on the computer and scan it again."}}
	UnknownBindingQR = BindingNotFound.variant("unknown QR code; scan the code on the screen again")
	BindingExpired   = &Code{Name: "binding_expired", Kind: Expired,
		Message: "the QR code has expired; show a new one",
		Text: Text{
			ZH: "綁定用QR Code已逾時，請在電腦畫面產生新的QR Code後重新掃描。",
			EN: "The binding QR code has expired; make a new one on the computer and scan it again."}}
	BindingNotStarted = &Code{Name: "binding_not_started", Kind: Conflict,
		Message: "call /api/v1/phone/bind/begin with this token first",
		Text: Text{
			ZH: "綁定尚未開始，請重新掃描電腦畫面上的QR Code。",
			EN: "The binding has not started; scan the QR code on the computer's screen again."}}
	BindingUsed = &Code{Name: "binding_used", Kind: Conflict,
		Message: "this QR code has already been used; show a new one",
		Text: Text{
			ZH: "此綁定用QR Code已使用過，請在電腦畫面產生新的QR Code。",
			EN: "This binding QR code has already been used; make a new one on the computer."}}
	DeviceLimit = &Code{Name: "device_limit", Kind: Conflict,
		Message: "the account already has %d phones, the most allowed; remove one on the account page before binding another",
		Text: Text{
			ZH: "您綁定的行動裝置已達上限，請先在帳戶資訊中註銷一支行動裝置，再綁定新裝置。",
			EN: "Your account has as many phones as allowed; revoke one on the account page before binding another."}}
	InvalidDeviceName = &Code{Name: "invalid_device_name", Kind: Invalid,
		Message: "device_name must be at most 64 characters, with no control or invisible formatting characters",
		Text: Text{
			ZH: "裝置名稱最多64個字，且不可含控制字元或看不見的格式字元，請修改後再試一次。",
			EN: "A device name has at most 64 characters, none of them control or invisible formatting characters; change it and try again."}}
	CredentialExists = &Code{Name: "credential_exists", Kind: Conflict,
		Message: "this phone credential is already bound; remove the old device first",
		Text: Text{
			ZH: "此行動裝置已綁定，請先在帳戶資訊中註銷舊的裝置，再重新綁定。",
			EN: "This phone is bound already; revoke the old device on the account page before binding it again."}}
	UserNotVerified = &Code{Name: "user_not_verified", Kind: Invalid,
		Message: "the phone did not verify the user; turn on a fingerprint, face or screen lock on the phone and scan the QR code again",
		Text: Text{
			ZH: "手機未完成生物特徵驗證，請確認手機已設定指紋、臉部辨識或螢幕鎖定後再試一次。",
			EN: "The phone did not verify you; set up a fingerprint, face or screen lock on the phone and try again."}}
	LoginNotVerified = UserNotVerified.variant("the phone did not verify the user; approve with a fingerprint, face or screen lock")
	BadCredential    = &Code{Name: "bad_credential", Kind: Invalid,
		Message: "the phone's registration response could not be read: %v",
		Text: Text{
			ZH: "無法讀取手機的驗證回應，請重新掃描電腦畫面上的QR Code後再試一次。",
			EN: "The phone's answer could not be read; scan the QR code on the computer's screen again and retry."}}
	BadLoginResponse    = BadCredential.variant("the phone's login response could not be read: %v")
	RegistrationRefused = &Code{Name: "registration_refused", Kind: Invalid,
		Message: "the phone's registration could not be verified: %v",
		Text: Text{
			ZH: "無法驗證手機的綁定資料，請在電腦畫面產生新的QR Code後重新綁定。",
			EN: "The phone's binding could not be verified; make a new QR code on the computer and bind again."}}
	DeviceNotAccepted = &Code{Name: "device_not_accepted", Kind: Forbidden,
		Message: "this service's policy refuses this phone's passkey (--device-policy)",
		Text: Text{
			ZH: "本服務不接受此手機的通行金鑰類型（例如會同步備份的通行金鑰，或無法證明由硬體保護的金鑰），無法綁定。請改用其他手機，或關閉通行金鑰的雲端同步後再綁定。",
			EN: "This service does not accept this phone's kind of passkey (a passkey that syncs, or a key not shown to be held in hardware), so it cannot be bound. Use another phone, or turn off syncing passkeys, and bind again."}}
	SyncedNotAccepted     = DeviceNotAccepted.variant("this service refuses synced passkeys (backup-eligible keys; --device-policy synced=refuse): bind a key that stays on the phone")
	UnattestedNotAccepted = DeviceNotAccepted.variant("this service refuses keys whose attestation it does not trust (--device-policy unattested=refuse): the phone's attestation was %s")
)

// Logging in to a relying party with the phone (sections 4 and 6).
var (
	LoginNotFound = &Code{Name: "login_not_found", Kind: NotFound,
		Message: "no such login; start again from the website you were logging in to",
		Text: Text{
			ZH: "找不到此登入請求，請回到網站重新登入。",
			EN: "This login request does not exist; go back to the website and log in again."}}
	UnknownLoginQR = LoginNotFound.variant("unknown login request; scan the code on the screen again")
	LoginExpired   = &Code{Name: "login_expired", Kind: Expired,
		Message: "this login request has expired; start again",
		Text: Text{
			ZH: "此登入請求已逾時，請回到網站重新登入。",
			EN: "This login request has expired; go back to the website and log in again."}}
	LoginQRExpired = LoginExpired.variant("this QR code has expired; get a new one with POST /api/v1/logins/<id>/qr")
	LoginUsed      = &Code{Name: "login_used", Kind: Conflict,
		Message: "this login request has already been answered",
		Text: Text{
			ZH: "此登入請求已處理完畢，無法再次核准或拒絕；如需登入，請回到網站重新登入。",
			EN: "This login request has already been answered; to log in, go back to the website and start again."}}
	LoginRefreshed = &Code{Name: "login_refreshed", Kind: Conflict,
		Message: "the QR code was just replaced; read the login's state again",
		Text: Text{
			ZH: "QR Code剛剛已更新，請掃描畫面上最新的QR Code。",
			EN: "The QR code was just replaced; scan the one now on the screen."}}
	LoginNotStarted = &Code{Name: "login_not_started", Kind: Conflict,
		Message: "call /api/v1/phone/login/begin with this token first",
		Text: Text{
			ZH: "此手機尚未開始確認登入，請重新掃描電腦畫面上的QR Code。",
			EN: "The login has not been started on this phone; scan the QR code on the computer's screen again."}}
	LoginRefused = &Code{Name: "login_refused", Kind: Invalid,
		Message: "the phone's login could not be verified: %v",
		Text: Text{
			ZH: "無法驗證手機的登入核准，請回到網站重新登入。",
			EN: "The phone's approval could not be verified; go back to the website and log in again."}}
	UnknownUserID = &Code{Name: "unknown_user_id", Kind: NotFound,
		Message: "no citizen with that ID can approve a login with a phone",
		Text: Text{
			ZH: "此身分證統一編號尚未綁定可用的行動自然人憑證，請先以自然人憑證完成註冊與綁定。",
			EN: "No usable mobile citizen certificate is bound to this national ID number; register and bind a phone with your citizen certificate first."}}
	TooManyPending = &Code{Name: "too_many_pending", Kind: Forbidden,
		Message: "the citizen already has %d requests waiting on their phone, the most allowed; wait until they are answered or expire",
		Text: Text{
			ZH: "您的手機上等待處理的請求已達上限，請先核准或拒絕這些請求，或等它們逾時後再試。",
			EN: "Too many requests are waiting on your phone; answer them, or wait until they expire, and try again."}}
	DeviceRevoked = &Code{Name: "device_revoked", Kind: Forbidden,
		Message: "this phone has been removed from the account; bind it again with your citizen card",
		Text: Text{
			ZH: "此行動裝置已註銷，請以自然人憑證重新綁定。",
			EN: "This phone has been revoked; bind it again with your citizen certificate."}}
	DeviceExpired = &Code{Name: "device_expired", Kind: Forbidden,
		Message: "this phone's one-year binding has expired; bind it again with your citizen card",
		Text: Text{
			ZH: "此行動裝置的綁定已超過1年效期，請以自然人憑證重新綁定。",
			EN: "This phone's one-year binding has expired; bind it again with your citizen certificate."}}
	BadDeviceToken = &Code{Name: "bad_device_token", Kind: Unauthorized,
		Message: "send the device_token from binding as Authorization: Bearer <token>",
		Text: Text{
			ZH: "無法確認此行動裝置的身分，請以自然人憑證重新綁定此裝置。",
			EN: "This phone could not be identified; bind it again with your citizen certificate."}}
	NoUsableDevice = &Code{Name: "no_usable_device", Kind: Forbidden,
		Message: "the account has no phone that may approve logins",
		Text: Text{
			ZH: "您的帳戶沒有可核准登入的行動裝置，請以自然人憑證綁定行動裝置。",
			EN: "Your account has no phone that can approve logins; bind a phone with your citizen certificate."}}
	UnknownDevice = &Code{Name: "unknown_device", Kind: Forbidden,
		Message: "this phone is not bound to the account; bind it with your citizen card first",
		Text: Text{
			ZH: "此行動裝置尚未綁定您的帳戶，請先以自然人憑證綁定。",
			EN: "This phone is not bound to your account; bind it with your citizen certificate first."}}
	LoginCancelled = &Code{Name: "login_cancelled", Kind: Forbidden,
		Message: "the login was cancelled on the login page",
		Text: Text{
			ZH: "您已在登入頁面取消此登入。",
			EN: "You cancelled this login on the login page."}}
	TooManyFailures = &Code{Name: "too_many_failures", Kind: Forbidden,
		Message: "this request was refused after too many failed attempts; start again",
		Text: Text{
			ZH: "驗證失敗次數過多，此請求已被拒絕，請回到網站重新開始。",
			EN: "This request was refused after too many failed attempts; go back to the website and start again."}}
	CloneWarning = &Code{Name: "clone_warning", Kind: Forbidden,
		Message: "this phone's signature counter went backwards, so a copy of its key may exist; the login is refused and recorded. Bind the phone again with your citizen card",
		Text: Text{
			ZH: "此行動裝置的金鑰可能已遭複製，本次登入已被拒絕並記錄。請以自然人憑證重新綁定此裝置。",
			EN: "This phone's key may have been copied, so the login was refused and recorded. Bind the phone again with your citizen certificate."}}
	AssuranceTooLow = &Code{Name: "assurance_too_low", Kind: Forbidden,
		Message: "the website demands %s, which this phone's passkey does not meet: only a key attested as hardware-bound and not synced (backup-eligible) does",
		Text: Text{
			ZH: "此網站要求以硬體保護且不會同步備份的金鑰登入，此行動裝置的通行金鑰不符合，本次登入已被拒絕。請改用符合條件的行動裝置綁定後再登入。",
			EN: "This website requires a key held in the phone's hardware and never synced; this phone's passkey is not one, so the login was refused. Bind a phone that meets it and log in with that one."}}
	DeviceSuspended = &Code{Name: "device_suspended", Kind: Forbidden,
		Message: "this phone is suspended: a login met a signature counter that went backwards, so a copy of its key may exist. Revoke it and bind the phone again with your citizen card",
		Text: Text{
			ZH: "此行動裝置的金鑰可能已遭複製，已暫停使用，無法再核准登入。請在帳戶頁面註銷此裝置，並以自然人憑證重新綁定。",
			EN: "This phone's key may have been copied, so the phone is suspended and can no longer approve logins. Revoke it on your account page and bind the phone again with your citizen certificate."}}
	RateLimited = &Code{Name: "rate_limited", Kind: TooMany,
		Message: "too many requests; wait a little and try again",
		Text: Text{
			ZH: "操作次數過多，請稍候再試。",
			EN: "Too many attempts; wait a little and try again."}}
)

// The web layer's own refusals: Echo's, the browser checks, the operator's API and the card
// agent's loopback API.
var (
	NoSuchRoute = &Code{Name: "not_found", Kind: NotFound,
		Message: "not found",
		Text: Text{
			ZH: "找不到您要的頁面或資料，請確認網址後再試一次。",
			EN: "What you asked for was not found; check the address and try again."}}
	NoOnlineBackup   = NoSuchRoute.variant("this server's store is PostgreSQL, which mcert backup does not copy: back it up with pg_dump (see the README)")
	MethodNotAllowed = &Code{Name: "method_not_allowed", Kind: BadMethod,
		Message: "method not allowed",
		Text: Text{
			ZH: "此網址不接受這項操作，請重新整理頁面後再試一次。",
			EN: "This address does not accept that request; reload the page and try again."}}
	AgentMethod  = MethodNotAllowed.variant(`POST a JSON body {"challenge": "..."}`)
	BodyTooLarge = &Code{Name: "body_too_large", Kind: TooLarge,
		Message: "the request body is larger than %sB",
		Text: Text{
			ZH: "送出的資料過大，請確認內容後再試一次。",
			EN: "What was sent is too large; check it and try again."}}
	UnsupportedMediaType = &Code{Name: "unsupported_media_type", Kind: BadMediaType,
		Message: "send the body as JSON, with Content-Type: application/json",
		Text: Text{
			ZH: "頁面送出的資料格式有誤，請重新整理頁面後再試一次。",
			EN: "The page sent data in a form the server does not read; reload the page and try again."}}
	MalformedBody = &Code{Name: "malformed_body", Kind: Invalid,
		Message: "the body must be a JSON object as docs/api.md describes",
		Text: Text{
			ZH: "頁面送出的資料有誤，請重新整理頁面後再試一次。",
			EN: "The page sent data the server cannot read; reload the page and try again."}}
	BodyUnreadable    = MalformedBody.variant("the request body could not be read")
	BodyNotJSON       = MalformedBody.variant("the body must be a JSON object as docs/api.md describes: %s")
	BodyTrailing      = MalformedBody.variant("the body must hold one JSON object and nothing after it")
	FieldRequired     = MalformedBody.variant("field %q is required")
	FieldNotBase64URL = MalformedBody.variant("field %q must be base64url without padding")
	PKCS7NotBase64    = MalformedBody.variant(`field "pkcs7" must be base64 (with padding) or base64url (without)`)
	AgentSignBody     = MalformedBody.variant(`the body must be {"challenge": "<base64url>"}`)
	AgentOriginBody   = MalformedBody.variant(`the body must be {"origin": "..."}`)
	CrossSiteRequest  = &Code{Name: "cross_site_request", Kind: Forbidden,
		Message: "this request did not come from mcert's own pages; reload the page and try again",
		Text: Text{
			ZH: "此操作不是由本網站的頁面送出，請重新整理頁面後再試一次。",
			EN: "This request did not come from this site's own pages; reload the page and try again."}}
	AdminTokenRequired = &Code{Name: "admin_token_required", Kind: Unauthorized,
		Message: "send the operator's admin token as Authorization: Bearer <token> (see mcert serve --admin-token)",
		Text: Text{
			ZH: "此功能僅限服務管理者使用，請提供管理者權杖（admin token）。",
			EN: "Only the service's operator may do this; send the admin token."}}
	InvalidClientMetadata = &Code{Name: "invalid_client_metadata", Kind: Invalid,
		Message: "%s", // every problem found, joined by "; "
		Text: Text{
			ZH: "網站（relying party）的註冊資料有誤，請依回應的說明修正後再試一次。",
			EN: "The website's (relying party's) registration is not valid; correct it as the answer says and try again."}}
	ClientExists = &Code{Name: "client_exists", Kind: Conflict,
		Message: "a client with id %q exists already",
		Text: Text{
			ZH: "已有相同ID的網站（relying party）註冊，請改用其他ID。",
			EN: "A website (relying party) with this ID is registered already; use another ID."}}
	ClientNotFound = &Code{Name: "client_not_found", Kind: NotFound,
		Message: "no relying party is registered with client_id %q; list them with GET /api/v1/admin/clients or mcert rp list",
		Text: Text{
			ZH: "找不到此網站（relying party）的註冊資料，請確認 client_id。",
			EN: "No website (relying party) is registered with this client_id; check it."}}
	PublicClient = &Code{Name: "public_client", Kind: Invalid,
		Message: "relying party %q is a public client, which has no secret to rotate; register a confidential client for a back end that authenticates",
		Text: Text{
			ZH: "此網站（relying party）是公開用戶端，沒有可更換的密鑰。",
			EN: "This website (relying party) is a public client, which has no secret to replace."}}
	StoreUnavailable = &Code{Name: "store_unavailable", Kind: Unavailable,
		Message: "the store does not answer just now; try again in a few seconds",
		Text: Text{
			ZH: "服務暫時無法使用，請稍後再試。",
			EN: "The service is unavailable just now; try again later."}}
	InternalError = &Code{Name: "internal", Kind: Internal,
		Message: "internal error; try again later",
		Text: Text{
			ZH: "系統發生錯誤，請稍後再試；如持續發生，請聯絡客服。",
			EN: "Something went wrong on the server; try again later, and contact support if it persists."}}
	HostNotAllowed = &Code{Name: "host_not_allowed", Kind: Forbidden,
		Message: "the card agent answers only as localhost, 127.0.0.1 or [::1]",
		Text: Text{
			ZH: "讀卡機元件只接受本機（localhost）的連線，請確認網址後再試一次。",
			EN: "The card agent answers only on this computer (localhost); check the address and try again."}}
	OriginNotAllowed = &Code{Name: "origin_not_allowed", Kind: Forbidden,
		Message: "this card agent signs only for %s",
		Text: Text{
			ZH: "讀卡機元件不允許本網站使用自然人憑證IC卡，請確認網址是否正確。",
			EN: "The card agent does not allow this site to use the card; check the address."}}
	AgentNoCard = &Code{Name: "no_card", Kind: Unavailable,
		Message: "no card is in the reader; start the card agent with --card",
		Text: Text{
			ZH: "讀卡機中沒有自然人憑證IC卡，請插入IC卡後再試一次。",
			EN: "There is no citizen certificate IC card in the reader; insert the card and try again."}}
	PINRequired = &Code{Name: "pin_required", Kind: Forbidden,
		Message: "the card's key is protected by its PIN; start the card agent with --pin",
		Text: Text{
			ZH: "此自然人憑證IC卡需要PIN碼，請輸入PIN碼後再試一次。",
			EN: "This card needs its PIN; type the PIN and try again."}}
	CardLocked = &Code{Name: "card_locked", Kind: Forbidden,
		Message: "the card is locked after 3 wrong PINs; restart the card agent to unlock it",
		Text: Text{
			ZH: "PIN碼連續輸入錯誤，自然人憑證IC卡已鎖卡，請至戶政事務所或以內政部憑證管理中心網站的解鎖服務解鎖。",
			EN: "Too many wrong PINs have locked the card; have it unlocked at a household registration office or with MOICA's online unlocking service."}}
	SignFailed = &Code{Name: "sign_failed", Kind: Internal,
		Message: "the card could not sign: %v",
		Text: Text{
			ZH: "自然人憑證IC卡無法完成簽章，請重新插入IC卡後再試一次。",
			EN: "The citizen certificate IC card could not sign; insert the card again and retry."}}
)

// The command line's own checks (mcert card issue, mcert phone): their errors are of the
// same type, though no server answers them.
var (
	InvalidName = &Code{Name: "invalid_name", Kind: Invalid,
		Message: "the card holder's name must be 1 to 64 characters of UTF-8 text",
		Text: Text{
			ZH: "持卡人姓名須為1至64個字，請修改後再試一次。",
			EN: "The card holder's name must be 1 to 64 characters; change it and try again."}}
	InvalidPIN = &Code{Name: "invalid_pin", Kind: Invalid,
		Message: "a card PIN is %d to %d letters or digits (A-Z, a-z, 0-9)",
		Text: Text{
			ZH: "PIN碼格式不正確，請輸入正確的自然人憑證PIN碼。",
			EN: "The PIN has the wrong format; type your card's PIN again."}}
	InvalidQR = &Code{Name: "invalid_qr", Kind: Invalid,
		Message: "this is not an mcert QR code; scan the QR code that the mcert page shows",
		Text: Text{
			ZH: "這不是本服務的QR Code，請掃描本網站畫面上顯示的QR Code。",
			EN: "This is not one of this service's QR codes; scan the QR code this site shows."}}
	QRNoToken    = InvalidQR.variant("the QR code holds no token; scan the whole QR code again")
	QRBadToken   = InvalidQR.variant("the QR code's token is malformed; show a new QR code on the mcert page and scan it")
	QRTooLong    = InvalidQR.variant("the text does not fit in a QR code (%v); use a shorter public URL")
	InvalidImage = &Code{Name: "invalid_image", Kind: Invalid,
		Message: "the file is not a readable PNG or JPEG image; save the QR code as PNG and try again",
		Text: Text{
			ZH: "無法讀取此圖片，請將QR Code存成PNG或JPEG圖片後再試一次。",
			EN: "The image cannot be read; save the QR code as a PNG or JPEG image and try again."}}
	ImageTooLarge    = InvalidImage.variant("the %s image is %dx%d pixels, larger than %d on a side; crop it around the QR code")
	UnreadableQRCode = &Code{Name: "unreadable_qr_code", Kind: Invalid,
		Message: "the QR code in the image could not be read; take a sharper, straighter picture of it",
		Text: Text{
			ZH: "無法辨識圖片中的QR Code，請拍攝更清晰、端正的照片後再試一次。",
			EN: "The QR code in the image cannot be read; take a sharper, straighter picture of it."}}
	NoQRCode = &Code{Name: "no_qr_code", Kind: Invalid,
		Message: "no QR code found in the image; take a sharper picture with the whole QR code in it",
		Text: Text{
			ZH: "圖片中找不到QR Code，請拍攝包含完整QR Code的清晰照片後再試一次。",
			EN: "There is no QR code in the image; take a sharper picture with the whole QR code in it."}}
)

// The OAuth 2.0, OpenID Connect and CIBA codes of the provider's error bodies and of the
// redirects back to relying parties (RFC 6749 sections 4.1.2.1 and 5.2, RFC 6750 section 3.1,
// OpenID Connect Core section 3.1.2.6, CIBA Core sections 11 and 13), among them every type of
// zitadel's op. Each answer's error_description says more than the message, which is the
// code's meaning; the kind is the status of an error body, where the RFCs give one.
var (
	InvalidRequest = &Code{Name: "invalid_request", Kind: Invalid,
		Message: "the request lacks a required parameter, repeats one or has an invalid one",
		Text: Text{
			ZH: "網站送出的登入請求有誤，請回到網站重新登入；如持續發生，請聯絡該網站。",
			EN: "The website's login request is not valid; go back to the website and log in again, and contact the website if it persists."}}
	InvalidClient = &Code{Name: "invalid_client", Kind: Unauthorized,
		Message: "the client could not be authenticated",
		Text: Text{
			ZH: "無法確認網站的身分，請聯絡該網站。",
			EN: "The website could not be identified; contact the website."}}
	InvalidGrant = &Code{Name: "invalid_grant", Kind: Invalid,
		Message: "the authorization code is unknown, used, expired or was issued to another client",
		Text: Text{
			ZH: "登入的授權碼無效或已逾時，請回到網站重新登入。",
			EN: "The login's code is invalid or has expired; go back to the website and log in again."}}
	UnauthorizedClient = &Code{Name: "unauthorized_client", Kind: Invalid,
		Message: "the client is not registered for this kind of request",
		Text: Text{
			ZH: "此網站未獲准使用這種登入方式，請聯絡該網站。",
			EN: "This website is not allowed to log in this way; contact the website."}}
	UnsupportedGrantType = &Code{Name: "unsupported_grant_type", Kind: Invalid,
		Message: "the grant type is not supported",
		Text: Text{
			ZH: "網站使用的登入方式本服務不支援，請聯絡該網站。",
			EN: "This service does not support the way the website completes the login; contact the website."}}
	UnsupportedResponseType = &Code{Name: "unsupported_response_type", Kind: Invalid,
		Message: "the response type is not supported",
		Text: Text{
			ZH: "網站要求的登入方式本服務不支援，請聯絡該網站。",
			EN: "This service does not support the kind of login the website asked for; contact the website."}}
	InvalidScope = &Code{Name: "invalid_scope", Kind: Invalid,
		Message: "the requested scope is invalid, unknown or malformed",
		Text: Text{
			ZH: "網站要求的資料範圍有誤，請聯絡該網站。",
			EN: "The website asked for data this service does not give; contact the website."}}
	InvalidTarget = &Code{Name: "invalid_target", Kind: Invalid,
		Message: "the requested audience or target is invalid",
		Text: Text{
			ZH: "網站要求的使用對象有誤，請聯絡該網站。",
			EN: "The website asked for a token meant for something this service does not know; contact the website."}}
	AccessDenied = &Code{Name: "access_denied", Kind: Forbidden,
		Message: "the citizen or mcert denied the request",
		Text: Text{
			ZH: "登入已被拒絕，網站沒有取得您的資料。如需登入，請重新登入並在手機上核准。",
			EN: "The login was denied, and the website received none of your data. To log in, start again and approve on your phone."}}
	LoginRequired = &Code{Name: "login_required", Kind: Invalid,
		Message: "the citizen must log in: every login is approved on the phone",
		Text: Text{
			ZH: "需要在手機上核准才能登入，請回到網站重新登入。",
			EN: "Logging in needs your approval on the phone; go back to the website and log in again."}}
	InteractionRequired = &Code{Name: "interaction_required", Kind: Invalid,
		Message: "the login needs the citizen to act on a page",
		Text: Text{
			ZH: "需要您操作確認才能登入，請回到網站重新登入。",
			EN: "Logging in needs you to confirm it; go back to the website and log in again."}}
	RequestNotSupported = &Code{Name: "request_not_supported", Kind: Invalid,
		Message: "request objects are not supported",
		Text: Text{
			ZH: "網站送出的登入請求形式本服務不支援，請聯絡該網站。",
			EN: "This service does not support the form of the website's login request; contact the website."}}
	ServerError = &Code{Name: "server_error", Kind: Internal,
		Message: "the server met an unexpected condition; try again later",
		Text: Text{
			ZH: "系統發生錯誤，請稍後再試；如持續發生，請聯絡客服。",
			EN: "Something went wrong on the server; try again later, and contact support if it persists."}}
	TemporarilyUnavailable = &Code{Name: "temporarily_unavailable", Kind: Unavailable,
		Message: "the server cannot handle the request just now; try again later",
		Text: Text{
			ZH: "服務暫時無法處理登入請求，請稍後再試。",
			EN: "The service cannot handle the login just now; try again later."}}
	InvalidToken = &Code{Name: "invalid_token", Kind: Unauthorized,
		Message: "the access token is unknown, revoked or expired",
		Text: Text{
			ZH: "網站的存取權杖無效或已逾時，請回到網站重新登入。",
			EN: "The website's access token is invalid or has expired; go back to the website and log in again."}}
	AuthorizationPending = &Code{Name: "authorization_pending", Kind: Invalid,
		Message: "the citizen has not answered yet",
		Text: Text{
			ZH: "登入請求尚待您在手機上核准或拒絕，請查看手機。",
			EN: "The login is waiting for your answer; check your phone."}}
	SlowDown = &Code{Name: "slow_down", Kind: TooMany,
		Message: "the client polls or asks too often",
		Text: Text{
			ZH: "網站查詢的次數過多，請稍候再試。",
			EN: "The website asked too often; wait a little and try again."}}
	ExpiredToken = &Code{Name: "expired_token", Kind: Invalid,
		Message: "the request expired before the citizen answered",
		Text: Text{
			ZH: "手機未在時間內回應，登入請求已逾時，請回到網站重新登入。",
			EN: "The login request expired before it was answered on the phone; go back to the website and log in again."}}
	UnmetAuthenticationRequirements = &Code{Name: "unmet_authentication_requirements", Kind: Forbidden,
		Message: "the login cannot meet the authentication context class the relying party demanded (acr_values)",
		Text: Text{
			ZH: "網站要求的登入安全等級，您核准登入的行動裝置無法達到，網站沒有取得您的資料。",
			EN: "The phone that approved the login cannot meet the security level the website demands; the website received none of your data."}}
	InvalidBindingMessage = &Code{Name: "invalid_binding_message", Kind: Invalid,
		Message: "binding_message must be at most 64 characters, with no control, format or bidi characters (Unicode Cc, Cf)",
		Text: Text{
			ZH: "網站送出的登入說明文字有誤，請聯絡該網站。",
			EN: "The website's message for the login is not valid; contact the website."}}
)

// Signing with the mobile certificate (PROTOCOL.md section 9).
var (
	SignRequestNotFound = &Code{Name: "sign_request_not_found", Kind: NotFound,
		Message: "no signing request of this client has that id",
		Text: Text{
			ZH: "找不到此簽章請求，請回到網站重新操作。",
			EN: "The signing request was not found; go back to the website and start again."}}
	NoSigningCertificate = &Code{Name: "no_signing_certificate", Kind: Forbidden,
		Message: "the phone has no current signing certificate: it was revoked or has expired; bind the phone again",
		Text: Text{
			ZH: "此手機的簽章憑證已廢止或逾期，無法簽章；請以自然人憑證重新綁定手機。",
			EN: "This phone's signing certificate has been revoked or has expired, so it cannot sign; bind the phone again with your citizen certificate."}}
)

// Links mailed to the citizen: an email address's verification, a phone-bound notice's "not me".
var (
	MailLinkUnknown = &Code{Name: "mail_link_unknown", Kind: NotFound,
		Message: "this link is unknown; use the newest mail's link as it is, or have a new one sent from your account page",
		Text: Text{
			ZH: "此連結無效，請使用最新一封通知信中的完整連結，或從帳號頁面重新寄送。",
			EN: "This link is not valid; use the link of the newest mail as it is, or have a new one sent from your account page."}}
	MailLinkUsed = &Code{Name: "mail_link_used", Kind: Conflict,
		Message: "this link has been used already; each link works once",
		Text: Text{
			ZH: "此連結已使用過，每個連結只能使用一次。",
			EN: "This link has been used already; each link works once."}}
	MailLinkExpired = &Code{Name: "mail_link_expired", Kind: Expired,
		Message: "this link has expired; have a new one sent from your account page",
		Text: Text{
			ZH: "此連結已逾期，請從帳號頁面重新寄送。",
			EN: "This link has expired; have a new one sent from your account page."}}
	MailLinkStale = &Code{Name: "mail_link_stale", Kind: Conflict,
		Message: "this link verifies an address the account no longer has; use the link mailed to its current address",
		Text: Text{
			ZH: "此連結所驗證的電子信箱已變更，請使用寄到目前地址的連結。",
			EN: "This link verifies an email address the account no longer has; use the link mailed to its current address."}}
	EmailAlreadyVerified = &Code{Name: "email_already_verified", Kind: Conflict,
		Message: "the account's email address is verified already",
		Text: Text{
			ZH: "您的電子信箱已完成驗證。",
			EN: "Your email address is verified already."}}
)

// Variants for signing: the relying party reads the codes PROTOCOL.md section 9 names.
var (
	InvalidSignRequest = InvalidRequest.variant("the signing request is not valid: %s")
	// PROTOCOL.md section 10 answers a bad push subscription with invalid_request too.
	InvalidPushSubscription    = InvalidRequest.variant("the push subscription is not valid: %v")
	ClientUnknownOrWrongSecret = InvalidClient.variant("unknown client or wrong secret")
	ClientDisabled             = InvalidClient.variant("this client is disabled; ask the operator of mcert to enable it")
	ClientNotForSigning        = InvalidClient.variant(`the client is not registered for signing; register it with "sign": true, or mcert rp add --sign`)
	// UnknownSigner is 400, as section 9 says, where a CIBA request's unknown_user_id is the
	// OAuth error of its own section.
	UnknownSigner  = UnknownUserID.variantOfKind(Invalid, "no citizen with that ID can sign with a phone")
	SignPollSlower = SlowDown.variant("polled sooner than the interval allows; poll at most every %d seconds")
)

// Variants of the OAuth codes, for the cases of the token endpoint.
var (
	LoginRedeemed        = InvalidGrant.variant("the login's tokens have been issued already: a code, or a decoupled login, gives tokens once")
	TokenOfAnotherClient = InvalidGrant.variant("the token was issued to another client")
	UnknownAuthReqID     = InvalidGrant.variant("unknown auth_req_id")
	TokensIssued         = InvalidGrant.variant("the tokens of this request have already been issued")
	CitizenDenied        = AccessDenied.variant("the citizen denied the login on the phone")
	PollSlower           = SlowDown.variant("polled sooner than the interval allows; poll at most every %d seconds from now on")
)

var catalog = []*Code{
	ChallengeNotFound, ChallengeExpired, ChallengeUsed, BadCertificate, BadPKCS7, BadSignature,
	CardNotYetValid, CardExpired, CardKeyUsage, CardKeyType, CardUntrusted, CardNoCitizenID,
	CardRevoked, CardStatusUnknown, CitizenIDRequired, InvalidCitizenID, CitizenIDMismatch,
	NoSession, SessionExpired, SessionAtLimit,

	InvalidContact, AccountExists, NoAccount, AccountSuspended, DeviceNotFound, BadCursor,

	QROtherSession, BindingNotFound, BindingExpired, BindingNotStarted, BindingUsed, DeviceLimit,
	InvalidDeviceName, CredentialExists, UserNotVerified, BadCredential, RegistrationRefused, DeviceNotAccepted,

	LoginNotFound, LoginExpired, LoginUsed, LoginRefreshed, LoginNotStarted, LoginRefused,
	UnknownUserID, TooManyPending, DeviceRevoked, DeviceExpired, BadDeviceToken, NoUsableDevice,
	UnknownDevice, LoginCancelled, TooManyFailures, CloneWarning, AssuranceTooLow, DeviceSuspended, RateLimited,
	SignRequestNotFound, NoSigningCertificate,
	MailLinkUnknown, MailLinkUsed, MailLinkExpired, MailLinkStale, EmailAlreadyVerified,

	NoSuchRoute, MethodNotAllowed, BodyTooLarge, UnsupportedMediaType, MalformedBody,
	CrossSiteRequest, AdminTokenRequired, InvalidClientMetadata, ClientExists, ClientNotFound, PublicClient, StoreUnavailable,
	InternalError, HostNotAllowed, OriginNotAllowed, AgentNoCard, PINRequired, CardLocked,
	SignFailed,

	InvalidName, InvalidPIN, InvalidQR, InvalidImage, UnreadableQRCode, NoQRCode,

	InvalidRequest, InvalidClient, InvalidGrant, UnauthorizedClient, UnsupportedGrantType,
	UnsupportedResponseType, InvalidScope, InvalidTarget, AccessDenied, LoginRequired,
	InteractionRequired, RequestNotSupported, ServerError, TemporarilyUnavailable, InvalidToken,
	AuthorizationPending, SlowDown, ExpiredToken, UnmetAuthenticationRequirements, InvalidBindingMessage,
}

// componentTexts: see ComponentTexts. The codes are those of MOICA's integration code for the
// component's return codes and the card's status words, and the page's own for what the
// component cannot say (no popup, no answer).
var componentTexts = map[string]Text{
	"popup_blocked": {
		ZH: "瀏覽器阻擋了跨平台網頁元件的視窗，請允許本網站開啟彈出式視窗後再試一次。",
		EN: "The browser blocked the web component's window; allow pop-ups for this site and try again."},
	"no_component": {
		ZH: "無法連線跨平台網頁元件，請確認已安裝並啟動「內政部憑證管理中心-跨平台網頁元件」。",
		EN: "Cannot reach the cross-platform web component; make sure MOICA's cross-platform web component is installed and running."},
	"cancelled": {
		ZH: "已取消以自然人憑證簽章。如需登入，請再按一次「以自然人憑證登入」。",
		EN: "Signing with the citizen certificate was cancelled. To log in, press the login button again."},
	"timeout": {
		ZH: "跨平台網頁元件未在時間內完成簽章，請再試一次。",
		EN: "The web component did not finish signing in time; try again."},
	"no_reader": {
		ZH: "找不到讀卡機，請連接讀卡機後再試一次。",
		EN: "No card reader was found; connect the card reader and try again."},
	"no_card": {
		ZH: "讀卡機中沒有自然人憑證IC卡，請插入IC卡後再試一次。",
		EN: "There is no citizen certificate IC card in the reader; insert the card and try again."},
	"no_pin": {
		ZH: "請輸入自然人憑證PIN碼。",
		EN: "Type the card's PIN."},
	"wrong_pin": {
		ZH: "PIN碼錯誤，請重新輸入。連續輸入錯誤將鎖卡。",
		EN: "Wrong PIN; type it again. Too many wrong PINs lock the card."},
	"wrong_pin_1": {
		ZH: "PIN碼錯誤，只剩一次機會；再錯一次將鎖卡。",
		EN: "Wrong PIN; one try left before the card locks."},
	"wrong_pin_2": {
		ZH: "PIN碼錯誤，剩餘兩次機會。",
		EN: "Wrong PIN; two tries left."},
	"pin_length": {
		ZH: "PIN碼長度不正確，請重新輸入。",
		EN: "The PIN has the wrong length; type it again."},
	"locked": {
		ZH: "自然人憑證IC卡已鎖卡，請至戶政事務所或以內政部憑證管理中心網站的解鎖服務解鎖。",
		EN: "The citizen certificate IC card is locked; have it unlocked at a household registration office or with MOICA's online unlocking service."},
	"forbidden_site": {
		ZH: "跨平台網頁元件不允許本網站使用IC卡，請確認網址正確。",
		EN: "The web component does not allow this site to use the card; check the address."},
	"failed": {
		ZH: "跨平台網頁元件無法完成簽章，請確認元件已啟動、IC卡已插入後再試一次。",
		EN: "The web component could not finish signing; make sure it is running and the card is inserted, and try again."},
}
