package web

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/authn"
)

// The card agent stands in for MOICA's cross-platform card component (HiPKI LocalSignServer,
// PROTOCOL.md section 1b) and signs for the pages of one origin only, in two ways:
//   - POST /sign, mcert's own JSON with CORS: the raw signature of a challenge;
//   - the component's popup: mcert's page opens GET /popupForm, which talks to it with
//     postMessage and has the agent sign through POST /popupSign. The component sends no CORS
//     headers, so another site's page can reach the card only through the popup, which
//     checks its origin.

//go:embed agent_popup.html
var popupHTML string

//go:embed agent_popup.js
var popupJS []byte

var popupTemplate = template.Must(template.New("popupForm").Parse(popupHTML))

// popupCSP lets the popup run its own script and call the agent, and nothing else.
const popupCSP = "default-src 'none'; script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// The component's codes (ret_code, and last_error for a card's refusal), as the public
// integration code of government sites reads them.
const (
	retOK              = 0
	retNoCard          = 0x76000006 // 未插入IC卡
	retNotJSON         = 0x7600000B // JSON格式錯誤
	retParameter       = 0x7600000C // 參數錯誤
	retMethod          = 0x7600000E // 不支援的方法
	retForbiddenDomain = 0x7600000F // 禁止存取的網域
	retNoPIN           = 0x76000998 // 未輸入PIN碼
	retCardLogin       = 0x76100006 // IC卡登入失敗, with last_error:
	retSign            = 0x76300004 // 簽章執行錯誤

	lastFunction  = 0x06 // 函式失敗
	lastWrongPIN  = 0xA0 // PIN碼錯誤
	lastPINLength = 0xA2 // PIN碼長度錯誤
	lastLocked    = 0xA4 // 已鎖卡
)

// maxWrongPINs wrong PINs in a row lock the card, as they lock a citizen card. The agent keeps
// the count until it restarts; a right PIN resets it.
const maxWrongPINs = 3

// maxPopupBody bounds a MakeSignature message: a login text is a few hundred bytes.
const maxPopupBody = 16 << 10

// CardAgentConfig configures a card agent.
type CardAgentConfig struct {
	// Origin is the mcert server's origin, its public URL's: the only one the agent signs for.
	Origin string
	// Card is the card in the reader; nil: none is inserted.
	Card *authn.CardFile
	// PIN unlocks a card with a PIN for POST /sign, which is sent none. For a card without a
	// PIN, it is the PIN the popup must be sent; without it the popup takes any.
	PIN string
	// Log receives every refusal, with why; nil: slog.Default().
	Log *slog.Logger
}

// CardAgent is the card agent's HTTP handler.
type CardAgent struct {
	origin    string
	file      *authn.CardFile
	pin       string
	signer    *authn.Card // what POST /sign signs with: nil without a card, or without the PIN of a card that has one
	log       *slog.Logger
	popupForm []byte
	mux       *http.ServeMux

	mu        sync.Mutex // a card does one thing at a time; it also orders the count of wrong PINs
	wrongPINs int
}

// NewCardAgent makes the agent for cfg. A card with a PIN is unlocked now when cfg.PIN is set,
// so a wrong one is refused at start.
func NewCardAgent(cfg CardAgentConfig) (*CardAgent, error) {
	origin, err := parseOrigin(cfg.Origin)
	if err != nil {
		return nil, err
	}
	a := &CardAgent{origin: origin, file: cfg.Card, pin: cfg.PIN, log: cfg.Log}
	if a.log == nil {
		a.log = slog.Default()
	}
	if cfg.PIN != "" {
		if err := authn.ValidatePIN(cfg.PIN); err != nil {
			return nil, fmt.Errorf("the agent's PIN: %w", err)
		}
	}
	if cfg.Card != nil && (!cfg.Card.HasPIN() || cfg.PIN != "") {
		if a.signer, err = cfg.Card.Unlock(cfg.PIN); err != nil {
			return nil, fmt.Errorf("unlock the card with the agent's PIN: %w", err)
		}
	}
	var page bytes.Buffer
	if err := popupTemplate.Execute(&page, origin); err != nil {
		return nil, fmt.Errorf("render the popup: %w", err)
	}
	a.popupForm = page.Bytes()

	a.mux = http.NewServeMux()
	a.mux.HandleFunc("/sign", a.sign)
	a.mux.HandleFunc("GET /popupForm", a.popupPage)
	a.mux.HandleFunc("GET /popupForm.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		_, _ = w.Write(popupJS)
	})
	a.mux.HandleFunc("POST /popupSign", a.popupSign)
	a.mux.HandleFunc("POST /popupIgnored", a.popupIgnored)
	a.mux.HandleFunc("GET /pkcs11info", a.pkcs11Info)
	a.mux.HandleFunc("POST /pkcs11info", a.pkcs11Info) // as the component's older callers ask
	a.mux.HandleFunc("GET /selfTest.htm", a.selfTest)
	return a, nil
}

// selfTest is the page mcert's login page links to as the component's self-test, which the
// real component serves at the same path: here it says that the agent runs, for which site, and
// with which card.
func (a *CardAgent) selfTest(w http.ResponseWriter, r *http.Request) {
	card := "no card"
	if a.file != nil {
		name, masked := authn.CardHolder(a.file.Certificate)
		card = name + " (" + masked + ")"
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	_ = selfTestTemplate.Execute(w, map[string]string{"Origin": a.origin, "Card": card})
}

var selfTestTemplate = template.Must(template.New("selfTest").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mcert card agent</title></head>
<body><h1>mcert card agent: running</h1>
<p>The development stand-in for MOICA's cross-platform web component (跨平台網頁元件) answers here.</p>
<p>It signs for <b>{{.Origin}}</b> only, with the card of <b>{{.Card}}</b>.</p>
</body></html>
`))

// parseOrigin reads an origin such as http://localhost:8080, with or without a final slash.
func parseOrigin(s string) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(s, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" ||
		u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("the origin %q is not one such as http://localhost:8080; give the scheme, host and port of mcert's public URL, without a path", s)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

func (a *CardAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// A page of a DNS name that resolves to 127.0.0.1 would be same-origin with the agent
	// under that name (DNS rebinding): the agent answers only under loopback names.
	if !loopbackHost(r.Host) {
		a.refused("refused a request for host %q: the card agent answers only as localhost, 127.0.0.1 or [::1]", r.Host)
		agentError(w, mcert.HostNotAllowed.New())
		return
	}
	a.mux.ServeHTTP(w, r)
}

func loopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	ip := net.ParseIP(host)
	return strings.EqualFold(host, "localhost") || ip != nil && ip.IsLoopback()
}

// selfOrigin is the agent's own origin as the browser sees it: the popup is opened as
// http://localhost:61161 or http://127.0.0.1:61161, whichever the page chose.
func selfOrigin(r *http.Request) string { return "http://" + r.Host }

func (a *CardAgent) refused(format string, args ...any) {
	a.log.Warn(fmt.Sprintf(format, args...))
}

// sign is POST /sign: the raw signature of a challenge, for mcert's pages (CORS) and local
// programs. Browsers attach Origin to the cross-origin fetch, so another site's page cannot
// have the card sign; local programs send none and are trusted, as the card reader itself
// would trust them.
func (a *CardAgent) sign(w http.ResponseWriter, r *http.Request) {
	if o := r.Header.Get("Origin"); o != "" {
		if o != a.origin {
			a.refused("refused to sign for %s: the agent signs only for %s", o, a.origin)
			agentError(w, mcert.OriginNotAllowed.Newf(a.origin))
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", a.origin)
		h.Set("Vary", "Origin")
	}
	switch r.Method {
	case http.MethodOptions: // the CORS preflight of the page's JSON POST
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", "POST")
		h.Set("Access-Control-Allow-Headers", "Content-Type")
		h.Set("Access-Control-Allow-Private-Network", "true") // Chrome asks before a page reaches loopback
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodPost:
	default:
		agentError(w, mcert.AgentMethod.New())
		return
	}
	var req struct {
		Challenge string `json:"challenge"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4096))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	challenge, decErr := base64.RawURLEncoding.DecodeString(strings.TrimRight(req.Challenge, "="))
	if err != nil || decErr != nil || len(challenge) == 0 || len(challenge) > 1024 {
		agentError(w, mcert.AgentSignBody.New())
		return
	}
	var refusal *mcert.Error
	switch {
	case a.file == nil:
		refusal = mcert.AgentNoCard.New()
	case a.signer == nil:
		refusal = mcert.PINRequired.New()
	case a.locked():
		refusal = mcert.CardLocked.New()
	}
	if refusal != nil {
		a.refused("refused to sign: %s", refusal.Message)
		agentError(w, refusal)
		return
	}
	sig, err := a.signer.Sign(challenge)
	if err != nil {
		agentError(w, mcert.SignFailed.Newf(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"certificate": b64(a.signer.Certificate.Raw), "signature": b64(sig)})
}

func (a *CardAgent) locked() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.wrongPINs >= maxWrongPINs
}

// popupPage is GET /popupForm. The opener's origin is in the Referer, so the agent can say
// when a page of another origin opens it, as one does when --origin is wrong.
func (a *CardAgent) popupPage(w http.ResponseWriter, r *http.Request) {
	if from := refererOrigin(r); from != "" && from != a.origin && from != selfOrigin(r) {
		a.refused("a page of %s opened the card popup, but the agent signs only for %s, so the popup will not talk to it; if %s is the mcert server, start the agent with --origin %s", from, a.origin, from, from)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", popupCSP)
	_, _ = w.Write(a.popupForm)
}

func refererOrigin(r *http.Request) string {
	u, err := url.Parse(r.Referer())
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// fromPopup reports whether r comes from the agent's own popup page, and refuses it if not:
// the browser sends Origin with every POST, and a page of another site cannot forge it.
func (a *CardAgent) fromPopup(w http.ResponseWriter, r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == selfOrigin(r) {
		return true
	}
	from := "a request without an Origin header"
	if o != "" {
		from = "a page of " + o
	}
	a.refused("refused %s %s from %s: only the agent's own popup (%s/popupForm) may call it", r.Method, r.URL.Path, from, selfOrigin(r))
	writeJSON(w, http.StatusForbidden, failure(retForbiddenDomain, 0, "only the card agent's own popup may call "+r.URL.Path))
	return false
}

// popupSignRequest is the component's MakeSignature message, which the page posts to the popup
// as a JSON string and the popup passes on. Its other fields (nonce, slotDescription, ...)
// change nothing here.
type popupSignRequest struct {
	Func          string          `json:"func"`
	SignatureType string          `json:"signatureType"`
	TBS           string          `json:"tbs"`
	TBSEncoding   string          `json:"tbsEncoding"`
	HashAlgorithm string          `json:"hashAlgorithm"`
	PIN           string          `json:"pin"`
	WithCardSN    json.RawMessage `json:"withCardSN"` // "true", or true
}

// signAnswer is the component's answer to MakeSignature, which the popup posts to the page as
// a JSON string.
type signAnswer struct {
	Func      string `json:"func"` // always "sign"
	RetCode   uint32 `json:"ret_code"`
	LastError uint32 `json:"last_error"`
	Message   string `json:"message,omitempty"`
	Signature string `json:"signature,omitempty"` // the DER SignedData, standard base64 with padding
	CertB64   string `json:"certb64,omitempty"`   // the signer's certificate, standard base64
	CardSN    string `json:"cardSN,omitempty"`    // with withCardSN
}

func failure(retCode, lastError uint32, message string) signAnswer {
	return signAnswer{Func: "sign", RetCode: retCode, LastError: lastError, Message: message}
}

// popupSign is POST /popupSign: MakeSignature for the popup. Its answers are 200 with the
// component's codes, as the component answers, so that the popup passes them on as they are.
func (a *CardAgent) popupSign(w http.ResponseWriter, r *http.Request) {
	if !a.fromPopup(w, r) {
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxPopupBody+1)) // a body cut short is no JSON, and answered so
	writeJSON(w, http.StatusOK, a.makeSignature(body))
}

// makeSignature checks a MakeSignature message as the component would, then the PIN as the
// card would, and signs the login text.
func (a *CardAgent) makeSignature(body []byte) signAnswer {
	var req popupSignRequest
	if len(body) > maxPopupBody || !json.Valid(body) {
		return a.refuseSign(retNotJSON, 0, "refused to sign: the message is not JSON of at most 16 KB; post the JSON string of MakeSignature's parameters")
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return a.refuseSign(retParameter, 0, "refused to sign: the message is not an object of MakeSignature's parameters as strings")
	}
	if req.Func != "MakeSignature" {
		return a.refuseSign(retMethod, 0, fmt.Sprintf("refused func %q: the card agent does MakeSignature, GetUserCert and CheckEnvir", req.Func))
	}
	if !strings.EqualFold(req.SignatureType, "PKCS7") {
		return a.refuseSign(retParameter, 0, fmt.Sprintf("refused to sign: the card agent makes signatureType PKCS7 (a CMS SignedData), not %q", req.SignatureType))
	}
	if !strings.EqualFold(req.HashAlgorithm, "SHA256") {
		return a.refuseSign(retParameter, 0, fmt.Sprintf("refused to sign: the card agent hashes with hashAlgorithm SHA256, not %q", req.HashAlgorithm))
	}
	tbs, err := decodeTBS(req.TBS, req.TBSEncoding)
	if err != nil {
		return a.refuseSign(retParameter, 0, "refused to sign: "+err.Error())
	}
	origin, _, ok := authn.ParseCardLoginTBS(tbs)
	if !ok {
		return a.refuseSign(retParameter, 0, `refused to sign: the tbs is not an mcert login text ("mcert card login", the origin and the challenge, one a line); send the challenge's tbs as given`)
	}
	if origin != a.origin {
		return a.refuseSign(retForbiddenDomain, 0, fmt.Sprintf("refused to sign for %s: the agent signs only for %s", origin, a.origin))
	}
	// Callers of the component often send encodeURIComponent(pin).
	pin, err := url.PathUnescape(req.PIN)
	if err != nil {
		pin = req.PIN
	}
	if pin == "" {
		return a.refuseSign(retNoPIN, 0, "refused to sign: no PIN was sent; ask the citizen for the card's PIN")
	}
	if a.file == nil {
		return a.refuseSign(retNoCard, 0, "refused to sign: no card is in the reader; start the card agent with --card")
	}
	card, refusal := a.unlock(pin)
	if card == nil {
		return a.refuseSign(retCardLogin, refusal.lastError, refusal.message)
	}
	sd, err := card.SignPKCS7([]byte(tbs))
	if err != nil {
		return a.refuseSign(retSign, 0, "the card could not sign: "+err.Error())
	}
	answer := signAnswer{
		Func:      "sign",
		RetCode:   retOK,
		Signature: base64.StdEncoding.EncodeToString(sd),
		CertB64:   base64.StdEncoding.EncodeToString(card.Certificate.Raw),
	}
	if w := string(req.WithCardSN); w == "true" || w == `"true"` {
		answer.CardSN = cardSerial(card.Certificate.Raw)
	}
	return answer
}

func (a *CardAgent) refuseSign(retCode, lastError uint32, message string) signAnswer {
	a.refused("%s", message)
	return failure(retCode, lastError, message)
}

// decodeTBS returns the text to sign: tbs itself, or with tbsEncoding base64 what it encodes.
func decodeTBS(tbs, encoding string) (string, error) {
	switch {
	case tbs == "":
		return "", errors.New("the message has no tbs; send the challenge's tbs")
	case encoding == "" || strings.EqualFold(encoding, "NONE"):
		return tbs, nil
	case strings.EqualFold(encoding, "base64"):
		b, err := base64.StdEncoding.DecodeString(tbs)
		if err != nil || !utf8.Valid(b) {
			return "", errors.New("tbsEncoding is base64 but the tbs is not the standard base64 of a UTF-8 text")
		}
		return string(b), nil
	}
	return "", fmt.Errorf("tbsEncoding %q is neither NONE nor base64", encoding)
}

// cardRefusal is why the card refused a PIN.
type cardRefusal struct {
	lastError uint32
	message   string
}

// unlock checks pin as the card would: against the key it encrypts, or against the agent's
// PIN for a card without one. It returns the unlocked card, or why not.
func (a *CardAgent) unlock(pin string) (*authn.Card, cardRefusal) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.wrongPINs >= maxWrongPINs {
		return nil, cardRefusal{lastLocked, "refused to sign: the card is locked after 3 wrong PINs; restart the card agent to unlock it"}
	}
	if authn.ValidatePIN(pin) != nil {
		return nil, cardRefusal{lastPINLength, "refused to sign: a card PIN is 4 to 12 letters or digits"}
	}
	var card *authn.Card
	var err error
	switch {
	case a.file.HasPIN():
		card, err = a.file.Unlock(pin)
	case a.pin != "" && subtle.ConstantTimeCompare([]byte(pin), []byte(a.pin)) != 1:
		err = authn.ErrWrongPIN
	default:
		card = a.signer
	}
	if errors.Is(err, authn.ErrWrongPIN) {
		a.wrongPINs++
		if left := maxWrongPINs - a.wrongPINs; left > 0 {
			return nil, cardRefusal{lastWrongPIN, fmt.Sprintf("refused to sign: wrong PIN; %d more wrong PINs lock the card", left)}
		}
		return nil, cardRefusal{lastWrongPIN, "refused to sign: wrong PIN; the card is now locked: restart the card agent to unlock it"}
	}
	if err != nil {
		return nil, cardRefusal{lastFunction, "refused to sign: the card cannot be opened: " + err.Error()}
	}
	a.wrongPINs = 0
	return card, cardRefusal{}
}

// popupIgnored is POST /popupIgnored: the popup reports a message it ignored, for the log.
func (a *CardAgent) popupIgnored(w http.ResponseWriter, r *http.Request) {
	if !a.fromPopup(w, r) {
		return
	}
	var report struct {
		Origin string `json:"origin"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1024)).Decode(&report); err != nil {
		agentError(w, mcert.AgentOriginBody.New())
		return
	}
	a.refused("the card popup ignored a message from a page of %s: the agent signs only for %s", report.Origin, a.origin)
	w.WriteHeader(http.StatusNoContent)
}

// pkcs11Info is the component's listing of readers, cards and certificates, shaped as its
// callers read it: slots[].token.serialNumber says a card is in, and with ?withcert=true,
// slots[].token.certs[] holds the certificate whose usage is "digitalSignature".
type pkcs11Info struct {
	Func          string       `json:"func"`
	RetCode       uint32       `json:"ret_code"`
	LastError     uint32       `json:"last_error"`
	ServerVersion string       `json:"serverVersion"`
	Slots         []pkcs11Slot `json:"slots"`
}

type pkcs11Slot struct {
	SlotID          int          `json:"slotID"`
	SlotDescription string       `json:"slotDescription"`
	Token           *pkcs11Token `json:"token,omitempty"`
}

type pkcs11Token struct {
	Label          string       `json:"label"`
	SerialNumber   string       `json:"serialNumber"`
	ManufacturerID string       `json:"manufacturerID"`
	Model          string       `json:"model"`
	Certs          []pkcs11Cert `json:"certs,omitempty"`
}

type pkcs11Cert struct {
	Label     string `json:"label"`
	CertB64   string `json:"certb64"`
	Usage     string `json:"usage"`
	SN        string `json:"sn"`
	SubjectDN string `json:"subjectDN"`
	IssuerDN  string `json:"issuerDN"`
}

// pkcs11Info is GET /pkcs11info: one reader, with the card when one is in.
func (a *CardAgent) pkcs11Info(w http.ResponseWriter, r *http.Request) {
	info := pkcs11Info{
		Func:          "pkcs11info",
		ServerVersion: "mcert card agent",
		Slots:         []pkcs11Slot{{SlotDescription: "mcert software card reader"}},
	}
	if a.file != nil {
		cert := a.file.Certificate
		token := &pkcs11Token{
			Label:          "mcert development card",
			SerialNumber:   cardSerial(cert.Raw),
			ManufacturerID: "mcert",
			Model:          "software card",
		}
		if r.URL.Query().Get("withcert") == "true" {
			token.Certs = []pkcs11Cert{{
				Label:     "signature",
				CertB64:   base64.StdEncoding.EncodeToString(cert.Raw),
				Usage:     "digitalSignature", // the card's only certificate signs; callers look for this exact value
				SN:        cert.SerialNumber.Text(16),
				SubjectDN: cert.Subject.String(),
				IssuerDN:  cert.Issuer.String(),
			}}
		}
		info.Slots[0].Token = token
	}
	writeJSON(w, http.StatusOK, info)
}

// cardSerial is a software card's serial number, which a smart card's chip carries: stable for
// the card, and telling cards apart.
func cardSerial(certDER []byte) string {
	sum := sha256.Sum256(certDER)
	return strings.ToUpper(hex.EncodeToString(sum[:8]))
}

// agentError writes e as the server would, message and all: the agent's client is the
// citizen's own computer, which may know why the card did not sign.
func agentError(w http.ResponseWriter, e *mcert.Error) {
	writeJSON(w, statusOf[e.Kind], errorBody{e.Code, e.Message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
