// Package revocation establishes whether a citizen card's certificate has been revoked, from the
// CRLs of the CA that issued it and from the OCSP responder the card names, and keeps that data
// current while the server runs, without a restart.
//
// # Wiring
//
// At start, build one Checker from the card CAs (the same ones the card verifier trusts) and
// start its background refresh:
//
//	chk, err := revocation.New(revocation.Config{
//		Mode:   mode, // revocation.ParseMode(flag): "ocsp,crl", "crl", "ocsp" or "none"
//		CAs:    []revocation.CA{{Certificate: moica, CRLFiles: files}},
//		Logger: logger,
//	})
//	go chk.Run(ctx)                        // refreshes CRLs until ctx ends
//	registry.MustRegister(chk.Collectors()...) // the server's own prometheus.Registry
//
// At every card login, once the card's chain has verified (issuer is the certificate after the
// card in the verified chain):
//
//	if err := chk.Check(ctx, card, issuer); err != nil {
//		return err // an *Error that unwraps to ErrRevoked or ErrUnknown, both *mcert.Error
//	}
//
// On SIGHUP call chk.Reload(ctx), which re-reads every CRL file and fetches every known CRL URL
// again; in /healthz, chk.Health() says whether any CRL in use has gone stale.
//
// # What decides
//
// Mode "ocsp" asks the responder named in the card's Authority Information Access; "crl" looks
// the card's serial number up in its CA's CRL; "ocsp,crl" asks the responder and falls back to
// the CRL when the responder gives no answer (unreachable, slow, malformed, unauthorized,
// tryLater, unknown, badly signed); "none" checks nothing, for the development CA's cards,
// which name neither.
//
// A CA's CRLs come from the files the operator names for it, and only from them when there are
// any; otherwise from the HTTP(S) CRL distribution points in the card (ldap:// ones are
// ignored), fetched the first time a card names them and then kept current. A CRL counts only
// when its issuer is the card's issuer and that CA's key signed it, and only until its
// nextUpdate: after that the status of the cards it covers is unknown, not good. A CRL with an
// issuing distribution point covers only the cards that name that point, so MOICA's
// partitioned CRLs work; delta CRLs, indirect CRLs, CRLs limited to some reasons and CRLs
// with critical extensions this package does not know are refused, never half understood.
//
// OCSP requests use a SHA-1 CertID, as MOICA's responder expects; answers with SHA-1 or
// SHA-256 CertIDs are accepted. An answer counts when the issuer signed it, or a responder
// certificate that the issuer signed for id-kp-OCSPSigning and that is valid now; when it is
// about the card's issuer and serial number; and when its thisUpdate is not in the future
// (beyond Config.ClockSkew) and its nextUpdate has not passed. Good answers are cached until
// their nextUpdate (Config.OCSPTTL when they have none); a revoked answer is kept for good,
// except a certificateHold, which may be lifted.
package revocation

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcert/mcert"
)

// Mode says which sources establish a card's status.
type Mode string

const (
	ModeOCSPThenCRL Mode = "ocsp,crl" // OCSP, and the CRL when the responder gives no answer
	ModeCRL         Mode = "crl"
	ModeOCSP        Mode = "ocsp"
	ModeNone        Mode = "none" // no check: the development CA's cards name no source
)

var modes = []Mode{ModeOCSPThenCRL, ModeCRL, ModeOCSP, ModeNone}

// ParseMode reads a mode as an operator writes it, such as "ocsp,crl".
func ParseMode(s string) (Mode, error) {
	m := Mode(strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), " ", "")))
	if slices.Contains(modes, m) {
		return m, nil
	}
	return "", fmt.Errorf("revocation mode %q is not one of %s", s, modeList())
}

func modeList() string {
	quoted := make([]string, len(modes))
	for i, m := range modes {
		quoted[i] = fmt.Sprintf("%q", m)
	}
	return strings.Join(quoted, ", ")
}

func (m Mode) usesOCSP() bool { return m == ModeOCSP || m == ModeOCSPThenCRL }
func (m Mode) usesCRL() bool  { return m == ModeCRL || m == ModeOCSPThenCRL }

// CA is one CA that issues cards, with the CRL files the operator keeps for it.
type CA struct {
	Certificate *x509.Certificate
	// CRLFiles are the CA's CRLs on disk (PEM "X509 CRL" or DER), re-read when they change.
	// When empty, the CRL distribution points in the cards are used instead.
	CRLFiles []string
}

// Config configures a Checker. Zero durations and nil fields take the defaults given.
type Config struct {
	Mode Mode
	CAs  []CA

	HTTPClient  *http.Client  // default: a plain client; the timeouts below bound each request
	OCSPTimeout time.Duration // one OCSP request, default 5 s
	CRLTimeout  time.Duration // one CRL download, default 30 s: CRLs can be megabytes
	MaxCRLBytes int64         // a larger CRL is refused, default 64 MiB

	// RefreshInterval is the longest a CRL goes without being fetched again, default 1 hour.
	// CRLs are also fetched again once 80% of their thisUpdate..nextUpdate has passed.
	RefreshInterval time.Duration
	// TickInterval is how often Run looks for CRLs to refresh and CRL files that changed,
	// default 1 minute.
	TickInterval time.Duration
	OCSPTTL      time.Duration // how long an OCSP answer without nextUpdate is kept, default 5 minutes
	ClockSkew    time.Duration // how far in the future a thisUpdate may be, default 5 minutes

	Now    func() time.Time // default time.Now
	Logger *slog.Logger     // default: discard
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.OCSPTimeout, 5*time.Second)
	def(&c.CRLTimeout, 30*time.Second)
	def(&c.RefreshInterval, time.Hour)
	def(&c.TickInterval, time.Minute)
	def(&c.OCSPTTL, 5*time.Minute)
	def(&c.ClockSkew, 5*time.Minute)
	if c.MaxCRLBytes == 0 {
		c.MaxCRLBytes = 64 << 20
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports every problem in c at once.
func (c Config) Validate() error {
	var errs []error
	if !slices.Contains(modes, c.Mode) {
		errs = append(errs, fmt.Errorf("revocation mode %q is not one of %s", c.Mode, modeList()))
	}
	if len(c.CAs) == 0 && c.Mode != ModeNone {
		errs = append(errs, fmt.Errorf("revocation mode %q needs the card CAs whose cards it checks", c.Mode))
	}
	seen := map[[32]byte]bool{}
	for i, ca := range c.CAs {
		n := i + 1
		switch {
		case ca.Certificate == nil:
			errs = append(errs, fmt.Errorf("card CA %d has no certificate", n))
			continue
		case !ca.Certificate.IsCA:
			errs = append(errs, fmt.Errorf("card CA %d (%s) is not a CA certificate; give the CA that issues the cards", n, ca.Certificate.Subject))
		}
		id := sha256.Sum256(ca.Certificate.Raw)
		if seen[id] {
			errs = append(errs, fmt.Errorf("card CA %d (%s) is given twice", n, ca.Certificate.Subject))
		}
		seen[id] = true
		files := map[string]bool{}
		for _, f := range ca.CRLFiles {
			if files[f] {
				errs = append(errs, fmt.Errorf("card CA %d (%s) names the CRL file %s twice", n, ca.Certificate.Subject, f))
			}
			files[f] = true
		}
		if len(ca.CRLFiles) > 0 && !c.Mode.usesCRL() {
			errs = append(errs, fmt.Errorf("card CA %d (%s) has CRL files, but revocation mode %q reads no CRL; use mode \"ocsp,crl\" or \"crl\", or drop the files", n, ca.Certificate.Subject, c.Mode))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"OCSP timeout", c.OCSPTimeout}, {"CRL timeout", c.CRLTimeout}, {"CRL refresh interval", c.RefreshInterval},
		{"tick interval", c.TickInterval}, {"OCSP TTL", c.OCSPTTL}, {"clock skew", c.ClockSkew},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("the %s is negative (%s)", d.name, d.v))
		}
	}
	if c.MaxCRLBytes < 0 {
		errs = append(errs, fmt.Errorf("the largest CRL size is negative (%d bytes)", c.MaxCRLBytes))
	}
	return errors.Join(errs...)
}

// The errors Check returns unwrap to one of these, so the web layer answers with their codes and
// messages as they are, and callers test them with errors.Is.
var (
	ErrRevoked = mcert.CardRevoked.New()
	ErrUnknown = mcert.CardStatusUnknown.New()
)

// Error is what Check returns for a card that is not known to be good.
type Error struct {
	Public    *mcert.Error // ErrRevoked or ErrUnknown: what the citizen is told
	RevokedAt time.Time    // when the CA revoked the card; zero unless revoked
	Reason    int          // RFC 5280 CRLReason; 0 (unspecified) also when the source gave none
	Source    string       // the CRL or responder that said revoked
	Err       error        // why the status is unknown, for the logs; nil when revoked
}

func (e *Error) Error() string {
	if e.Public == ErrRevoked {
		return fmt.Sprintf("%s (revoked at %s, reason %d, according to %s)", e.Public.Code, e.RevokedAt.UTC().Format(time.RFC3339), e.Reason, e.Source)
	}
	return fmt.Sprintf("%s: %v", e.Public.Code, e.Err)
}

func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Public}
	}
	return []error{e.Public, e.Err}
}

func isRevoked(err error) bool { return errors.Is(err, ErrRevoked) }

// Checker establishes cards' revocation status. It is safe for concurrent use.
type Checker struct {
	cfg Config
	log *slog.Logger
	cas map[[32]byte]*authority // by SHA-256 of the CA certificate
	// order is cas in configuration order, so that health and metrics list them stably.
	order []*authority

	mu   sync.Mutex
	ocsp map[ocspKey]ocspEntry

	ocspQueries *prometheus.CounterVec
	crlAge      *prometheus.Desc
	crlNext     *prometheus.Desc
}

// authority is a card CA and the CRLs that speak for it.
type authority struct {
	cert  *x509.Certificate
	id    [32]byte
	name  string
	files []*source

	mu   sync.Mutex
	urls map[string]*source // distribution points named by cards, added as cards name them
}

// New checks cfg, reads the CRL files it names, and returns a Checker. A CRL file that cannot be
// read or is not a CRL of its CA is an error here, as an operator's mistake is best seen at
// start; a stale one is not, as the job that replaces it may simply be late.
func New(cfg Config) (*Checker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Checker{
		cfg:  cfg,
		log:  cfg.Logger,
		cas:  map[[32]byte]*authority{},
		ocsp: map[ocspKey]ocspEntry{},
		ocspQueries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcert_revocation_ocsp_queries_total",
			Help: "OCSP queries about card certificates, by outcome: good, revoked, unknown (the responder does not know the card) or error (no usable answer).",
		}, []string{"outcome"}),
		crlAge: prometheus.NewDesc("mcert_revocation_crl_age_seconds",
			"Seconds since the thisUpdate of the CRL in use, by card CA and CRL source.", []string{"ca", "source"}, nil),
		crlNext: prometheus.NewDesc("mcert_revocation_crl_next_update_seconds",
			"Seconds until the nextUpdate of the CRL in use, by card CA and CRL source; negative once it is stale.", []string{"ca", "source"}, nil),
	}
	for _, outcome := range []string{"good", "revoked", "unknown", "error"} {
		c.ocspQueries.WithLabelValues(outcome)
	}
	var errs []error
	for _, ca := range cfg.CAs {
		a := &authority{cert: ca.Certificate, id: sha256.Sum256(ca.Certificate.Raw), name: ca.Certificate.Subject.String(), urls: map[string]*source{}}
		if cfg.Mode.usesCRL() {
			for _, f := range ca.CRLFiles {
				s := newSource(a, f, "")
				a.files = append(a.files, s)
				if err := c.load(context.Background(), s); err != nil {
					errs = append(errs, err)
				}
			}
		}
		c.cas[a.id] = a
		c.order = append(c.order, a)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// Check establishes whether card, issued by issuer, is revoked. It returns nil when the card is
// good, and otherwise an *Error that unwraps to ErrRevoked or ErrUnknown. issuer must be the
// certificate that signed card in its verified chain, and one of the configured CAs.
func (c *Checker) Check(ctx context.Context, card, issuer *x509.Certificate) error {
	if c.cfg.Mode == ModeNone {
		return nil
	}
	err := c.check(ctx, card, issuer)
	switch {
	case err == nil:
		return nil
	case isRevoked(err):
		c.log.Info("card revoked", "ca", issuer.Subject.String(), "serial", card.SerialNumber.Text(16), "err", err)
		return err
	}
	var serial string
	if card != nil && card.SerialNumber != nil {
		serial = card.SerialNumber.Text(16)
	}
	c.log.Info("card revocation status unknown", "serial", serial, "err", err)
	return &Error{Public: ErrUnknown, Err: err}
}

func (c *Checker) check(ctx context.Context, card, issuer *x509.Certificate) error {
	if card == nil || issuer == nil || card.SerialNumber == nil {
		return errors.New("no card or issuer certificate to check")
	}
	a := c.cas[sha256.Sum256(issuer.Raw)]
	if a == nil {
		return fmt.Errorf("the card's issuer %s is not a configured card CA", issuer.Subject)
	}
	// Serial numbers are unique only per issuer: a card that names another issuer must not be
	// looked up in this one's lists.
	if string(card.RawIssuer) != string(issuer.RawSubject) {
		return fmt.Errorf("the card names issuer %s, not %s", card.Issuer, issuer.Subject)
	}
	var ocspErr error
	if c.cfg.Mode.usesOCSP() {
		ocspErr = c.checkOCSP(ctx, a, card)
		if ocspErr == nil || isRevoked(ocspErr) || !c.cfg.Mode.usesCRL() {
			return ocspErr
		}
	}
	crlErr := c.checkCRL(ctx, a, card)
	if crlErr == nil || isRevoked(crlErr) {
		return crlErr
	}
	return errors.Join(ocspErr, crlErr)
}

func revokedError(at time.Time, reason int, source string) *Error {
	return &Error{Public: ErrRevoked, RevokedAt: at, Reason: reason, Source: source}
}
