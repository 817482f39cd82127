package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served only on --debug-addr
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/binding"
	"github.com/mcert/mcert/mailer"
	"github.com/mcert/mcert/provider"
	"github.com/mcert/mcert/push"
	"github.com/mcert/mcert/revocation"
	"github.com/mcert/mcert/seal"
	"github.com/mcert/mcert/storage"
	"github.com/mcert/mcert/storage/bolt"
	"github.com/mcert/mcert/web"
)

// Config is the server's configuration, from flags or MCERT_* variables.
type Config struct {
	Addr      string
	DataDir   string
	Store     string   // --store: bolt:<file> or postgres://...; empty: bolt:<DataDir>/mcert.db
	PublicURL string   // empty: http(s)://localhost:<port the server listens on>
	CardCA    string   // PEM bundle of trusted card CAs; empty: the development CA in DataDir
	CardCRL   []string // CRL files of the card CAs (PEM or DER); none: the cards' CRL distribution points
	// CardRevocation is how card revocation is checked: "ocsp,crl", "crl", "ocsp" or "none";
	// empty: "ocsp,crl" with --card-ca, "none" for the development CA.
	CardRevocation string
	CardAgentURL   string
	AdminToken     string // bearer token of the admin API; empty: the store's, made on first start into DataDir/admin-token
	TLSCert        string // PEM certificate chain to serve HTTPS with; empty: plain HTTP (behind a TLS proxy)
	TLSKey         string // PEM private key of TLSCert
	DeviceLimit    int    // usable phones per account
	// CertificateCitizenID puts the whole national ID in the phones' signing certificates,
	// where the masked one is by default.
	CertificateCitizenID bool
	DebugAddr            string        // where to serve Go's profiler (net/http/pprof); empty: nowhere
	AuditRetention       time.Duration // how long audit events are kept; 0: binding.DefaultAuditRetention
	AdminAddr            string        // a second listener for the operator: the admin API and /metrics; empty: none
	KeyFile              string        // the key that seals signing keys and secrets in the store; empty: DataDir/mcert.key
	// Dev allows development mode (the development card CA, the demo relying party) at a public
	// URL other than http://localhost.
	Dev bool
	// TrustedProxies are the reverse proxies whose X-Forwarded-For gives the client's address.
	TrustedProxies []netip.Prefix
	// AttestationRoots are PEM files (each one certificate or a bundle) of the attestation roots
	// whose chains make a phone's attestation trusted; FIDOMDS is a FIDO MDS3 blob (the JWT)
	// whose entries' roots do, for their AAGUIDs; FIDOMDSRoot, when set, is the PEM root the
	// blob is signed under instead of FIDO's (for tests).
	AttestationRoots []string
	FIDOMDS          string
	FIDOMDSRoot      string
	// DevicePolicy is --device-policy: which phones' keys a binding accepts, e.g.
	// "synced=refuse,unattested=accept"; empty: accept both.
	DevicePolicy string
	// Operator is who runs the service, for the pages' footer and personal-data notice.
	Operator web.Operator
	// PushContact is the operator's contact that push notifications carry (VAPID's sub, RFC
	// 8292): an email address or an https URL; empty: the public URL when it is https.
	PushContact string
	// SMTPURL is where the citizens' mails go: smtp://user:password@host:587?from=address (STARTTLS),
	// or smtps://; empty: in development to the log and /dev/mailbox, else they wait in the store.
	SMTPURL string
	Now     func() time.Time
	Logger  *slog.Logger

	Limits binding.Limits // rate limits; zero fields: binding.DefaultLimits
}

// Validate reports every problem with the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("--addr is required, e.g. 127.0.0.1:8080"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data is required: the directory for the database (and the development CA)"))
	}
	if _, err := parseStoreSpec(c.Store, c.DataDir); err != nil {
		errs = append(errs, err)
	}
	if _, err := binding.ParseDevicePolicy(c.DevicePolicy); err != nil {
		errs = append(errs, fmt.Errorf("--device-policy: %w", err))
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			errs = append(errs, fmt.Errorf("--public-url %q must be an absolute http(s) URL such as https://mcert.example.tw", c.PublicURL))
		case net.ParseIP(u.Hostname()) != nil:
			errs = append(errs, fmt.Errorf("--public-url %q: its host is the WebAuthn RP ID, which cannot be an IP address; use %s on this machine, or a hostname such as https://mcert.example.tw for phones on the network", c.PublicURL, c.localhostURL(u.Port())))
		case u.Scheme == "http" && u.Hostname() != "localhost":
			errs = append(errs, fmt.Errorf("--public-url %q: WebAuthn needs https except on localhost", c.PublicURL))
		case u.RawQuery != "" || u.Fragment != "":
			errs = append(errs, fmt.Errorf("--public-url %q must not have a query or fragment", c.PublicURL))
		}
	}
	if c.PushContact != "" && !validPushContact(c.PushContact) {
		errs = append(errs, fmt.Errorf("--push-contact %q must be an email address such as push@mcert.example.tw or an https URL", c.PushContact))
	}
	if c.SMTPURL != "" {
		if _, err := mailer.ParseSMTPURL(c.SMTPURL); err != nil {
			errs = append(errs, fmt.Errorf("--smtp-url: %w", err))
		}
		if c.Operator.Name == "" || c.Operator.SupportPhone == "" {
			errs = append(errs, errors.New("--smtp-url needs --operator-name and --support-phone: every mail says who sent it and the helpline to call"))
		}
	}
	if c.AuditRetention < 0 {
		errs = append(errs, errors.New("--audit-retention must be positive, such as 9600h (400 days)"))
	}
	if c.DeviceLimit < 0 {
		errs = append(errs, errors.New("--device-limit must be at least 1 (0 means the default, 5)"))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together: give both, or neither to serve plain HTTP behind a TLS proxy"))
	}
	if c.TLSCert != "" && strings.HasPrefix(c.PublicURL, "http://") {
		errs = append(errs, fmt.Errorf("--public-url %q must be https when the server serves TLS itself", c.PublicURL))
	}
	if c.DebugAddr != "" {
		if host, _, err := net.SplitHostPort(c.DebugAddr); err != nil || !isLoopback(host) {
			errs = append(errs, fmt.Errorf("--debug-addr %q must be a loopback address such as 127.0.0.1:6060: the profiler is not for the network", c.DebugAddr))
		}
	}
	if c.AdminAddr != "" {
		// An empty host would be every interface, the public ones too: the operator must choose.
		if host, port, err := net.SplitHostPort(c.AdminAddr); err != nil || host == "" || port == "" {
			errs = append(errs, fmt.Errorf("--admin-addr %q must be host:port with the host of a private network or loopback, such as 10.0.0.5:9090 or 127.0.0.1:9090", c.AdminAddr))
		}
	}
	if len(c.CardCRL) > 0 && c.CardCA == "" {
		errs = append(errs, errors.New("--card-crl needs --card-ca: a CRL belongs to a production card CA"))
	}
	if c.CardRevocation != "" {
		if _, err := revocation.ParseMode(c.CardRevocation); err != nil {
			errs = append(errs, fmt.Errorf("--card-revocation: %w", err))
		}
	}
	switch {
	case c.Dev && c.CardCA != "":
		errs = append(errs, errors.New("--dev and --card-ca exclude each other: development mode trusts the development card CA instead of --card-ca"))
	case c.CardCA == "" && !c.Dev && !c.localHTTP():
		errs = append(errs, fmt.Errorf("--public-url %s is not http://localhost, so this looks like production: configure --card-ca with the citizen-card CAs to trust, or pass --dev to run in development mode (development card CA, demo relying party) there anyway", cmp.Or(c.PublicURL, "https://localhost (the default with --tls-cert)")))
	}
	return errors.Join(errs...)
}

// localhostURL is the public URL to use on this machine: http://localhost with port, else the
// port of --addr.
func (c *Config) localhostURL(port string) string {
	if port == "" {
		_, port, _ = net.SplitHostPort(c.Addr)
	}
	if port == "" {
		return "http://localhost"
	}
	return "http://localhost:" + port
}

// localHTTP reports whether the public URL is plain HTTP on this machine: development.
func (c *Config) localHTTP() bool {
	if c.PublicURL == "" {
		return c.TLSCert == "" // http://localhost:<port>
	}
	u, err := url.Parse(c.PublicURL)
	return err == nil && u.Scheme == "http" && isLoopback(u.Hostname())
}

// validPushContact: an email address or an https URL, for VAPID's sub (RFC 8292 section 2.1).
func validPushContact(c string) bool {
	if strings.ContainsFunc(c, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return false
	}
	if strings.HasPrefix(c, "https:") {
		u, err := url.Parse(c)
		return err == nil && u.Host != ""
	}
	_, err := mail.ParseAddress(c)
	return err == nil && !strings.ContainsAny(c, "<>")
}

// pushContact is the contact for VAPID: --push-contact, else the public URL when it is https,
// else a local address for development, where no real push service is reached.
func (c *Config) pushContact(publicURL string) string {
	switch {
	case c.PushContact != "":
		return c.PushContact
	case strings.HasPrefix(publicURL, "https://"):
		return publicURL
	}
	return "mcert@localhost"
}

func isLoopback(host string) bool { return host == "localhost" || net.ParseIP(host).IsLoopback() }

// Main is the running program, in a form tests can start on port 0 with an injected clock.
type Main struct {
	Config Config

	PublicURL     string // resolved once listening
	store         storage.Store
	storeSpec     storeSpec
	listener      net.Listener
	server        *http.Server
	adminListener net.Listener // the operator's, with --admin-addr
	adminServer   *http.Server
	debug         net.Listener // the profiler's, with --debug-addr
	service       *binding.Service
	sealer        *seal.Sealer
	revocation    *revocation.Checker
}

// maxHeaderBytes bounds a request's header: the largest legitimate one, a browser's with the
// session cookie and a long Referer, is a few kilobytes, and Go's default (1 MiB) lets every
// connection make the server read and hold that much before any handler runs.
const maxHeaderBytes = 16 << 10

// Open does everything that can fail before serving: the store, the card CAs, the listener.
func (m *Main) Open() error {
	cfg := &m.Config
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	keyFile := cmp.Or(cfg.KeyFile, filepath.Join(cfg.DataDir, "mcert.key"))
	var createdKey bool
	var err error
	if m.sealer, createdKey, err = seal.LoadOrCreate(keyFile); err != nil {
		return err
	}
	if createdKey {
		cfg.Logger.Warn("created the key file that seals the signing keys and secrets in the store; back it up apart from the data backups, and give every instance the same one", "file", keyFile)
	}
	cards, err := m.cardVerifier()
	if err != nil {
		return err
	}
	tlsConfig, err := m.tlsConfig()
	if err != nil {
		return err
	}
	m.storeSpec, _ = parseStoreSpec(cfg.Store, cfg.DataDir) // Validate has checked it
	if m.store, err = m.storeSpec.open(context.Background()); err != nil {
		return err
	}
	if err := m.sealPlain(); err != nil {
		m.Close()
		return err
	}
	m.listener, err = net.Listen("tcp", cfg.Addr)
	if err != nil {
		m.store.Close()
		return fmt.Errorf("listen on %s: %w (is another server running there? choose another --addr)", cfg.Addr, err)
	}
	if cfg.DebugAddr != "" {
		if m.debug, err = net.Listen("tcp", cfg.DebugAddr); err != nil {
			m.Close()
			return fmt.Errorf("listen on --debug-addr %s: %w", cfg.DebugAddr, err)
		}
	}
	if cfg.AdminAddr != "" {
		if m.adminListener, err = net.Listen("tcp", cfg.AdminAddr); err != nil {
			m.Close()
			return fmt.Errorf("listen on --admin-addr %s: %w", cfg.AdminAddr, err)
		}
	}
	m.PublicURL = canonicalURL(cfg.PublicURL)
	if m.PublicURL == "" {
		scheme := "http"
		if tlsConfig != nil {
			scheme = "https"
		}
		m.PublicURL = fmt.Sprintf("%s://localhost:%d", scheme, m.listener.Addr().(*net.TCPAddr).Port)
	}
	wa, err := authn.NewWebAuthn(m.PublicURL)
	if err != nil {
		m.Close()
		return err
	}
	if wa.Trust, err = attestationTrust(*cfg); err != nil {
		m.Close()
		return err
	}
	policy, _ := binding.ParseDevicePolicy(cfg.DevicePolicy) // Validate has read it
	m.service = &binding.Service{
		Store: seal.Store(m.store, m.sealer), Cards: cards, WebAuthn: wa, PublicURL: m.PublicURL, Now: cfg.Now, Log: cfg.Logger,
		DeviceLimit: cfg.DeviceLimit, CertificateCitizenID: cfg.CertificateCitizenID, DevicePolicy: policy, Limits: cfg.Limits, AuditRetention: cfg.AuditRetention,
	}
	var mailbox func() []mailer.Mail
	m.service.Operator = mailer.Operator{Name: cfg.Operator.Name, SupportPhone: cfg.Operator.SupportPhone, SupportURL: m.PublicURL}
	switch {
	case cfg.SMTPURL != "":
		smtp, _ := mailer.ParseSMTPURL(cfg.SMTPURL) // Validate has read it
		m.service.Mailer = mailer.NewSMTP(smtp)
	case cfg.CardCA == "": // development mode
		log := mailer.NewLog(cfg.Logger)
		m.service.Mailer, mailbox = log, log.Recent
		m.service.Operator.Name = cmp.Or(m.service.Operator.Name, "mcert（開發環境 development）")
		m.service.Operator.SupportPhone = cmp.Or(m.service.Operator.SupportPhone, "—")
	default:
		cfg.Logger.Warn("no --smtp-url: the citizens' mails (email verification, security notices) wait in the store until one is given")
	}
	var handler *web.Server // the provider's error pages are the web layer's, made below
	prov, err := provider.New(context.Background(), provider.Config{
		Service: m.service, Issuer: m.PublicURL, Logger: cfg.Logger,
		ErrorPage: func(w http.ResponseWriter, r *http.Request, status int, code *mcert.Code) bool {
			return handler.ErrorPage(w, r, status, code)
		},
	})
	if err != nil {
		m.Close()
		if errors.Is(err, seal.ErrWrongKey) {
			return wrongKeyFile(keyFile, m.storeSpec.String(), createdKey, err)
		}
		return err
	}
	adminHash, err := m.adminTokenHash(context.Background())
	if err != nil {
		m.Close()
		return err
	}
	// A wrong key file was told of above, where the provider first opens a secret.
	vapid, err := m.service.VAPIDKey(context.Background())
	if err != nil {
		m.Close()
		return err
	}
	public, _ := url.Parse(m.PublicURL)
	m.service.Push = push.NewSender(push.Config{
		Key: vapid, Contact: cfg.pushContact(m.PublicURL), Now: cfg.Now, Log: cfg.Logger,
		// A server on this machine may reach a push service on it (development, tests); one on
		// the network never reaches its own or its network's addresses for a phone.
		AllowLoopback: isLoopback(public.Hostname()),
	})
	webCfg := web.Config{
		Service: m.service, PublicURL: m.PublicURL, CardAgentURL: cfg.CardAgentURL, Logger: cfg.Logger,
		Provider: prov, ContinueURL: prov.ContinueURL, RotateKeys: prov.RotateKeys, AdminTokenHash: adminHash,
		TrustedProxies: cfg.TrustedProxies, Operator: cfg.Operator, Mailbox: mailbox,
	}
	if b, ok := m.store.(*bolt.Store); ok {
		webCfg.Backup = b.WriteTo // PostgreSQL's operators back up with pg_dump
	}
	if m.revocation != nil { // a nil *Checker in the interface would not be nil
		webCfg.Revocation = m.revocation
	}
	if cfg.CardCA == "" { // development mode, which Validate allowed: show the demo relying party too
		if err := provider.EnsureDemoClient(context.Background(), m.service, m.PublicURL); err != nil {
			m.Close()
			return err
		}
		webCfg.DemoClientID = provider.DemoClientID
	} else if err := m.removeDemoClient(); err != nil {
		m.Close()
		return err
	}
	handler = web.New(webCfg)
	// The admin listener speaks what the public one does: HTTPS with --tls-cert, for the admin
	// token crosses the operator's network too. Each server has its own TLS configuration, as
	// serving adds its protocols to it.
	newServer := func(h http.Handler) *http.Server {
		return &http.Server{
			Handler: h, TLSConfig: tlsConfig.Clone(), ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn), MaxHeaderBytes: maxHeaderBytes,
			ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		}
	}
	m.server = newServer(handler)
	if m.adminListener != nil {
		m.adminServer = newServer(handler.Admin())
	}
	return nil
}

// removeDemoClient deletes the demo relying party that development mode registered, once the
// server runs with real card CAs: a public client with a localhost redirect URI and the
// citizen_id claim must not stay usable in production.
func (m *Main) removeDemoClient() error {
	_, err := provider.Clients{Service: m.service}.Delete(context.Background(), provider.DemoClientID)
	switch {
	case mcert.ErrorKind(err) == mcert.NotFound:
		return nil
	case err != nil:
		return fmt.Errorf("remove the demo relying party of development mode: %w", err)
	}
	m.Config.Logger.Warn("removed the demo relying party that development mode had registered, and its access tokens: a server with --card-ca serves no demo", "client_id", provider.DemoClientID)
	return nil
}

// sealPlain seals the signing keys and secrets that an mcert before sealing stored in the
// clear, then compacts a bbolt data file: bbolt keeps what a write replaced in free pages,
// which backups copy, so only a rewritten file is sure to hold no plain copy. (PostgreSQL
// reuses the space of replaced rows once vacuumed.)
func (m *Main) sealPlain() error {
	n, err := seal.SealPlain(context.Background(), m.store, m.sealer, provider.Secrets...)
	if err != nil || n == 0 {
		return err
	}
	if path := m.storeSpec.boltPath; path != "" {
		err = m.store.Close()
		m.store = nil
		if err != nil {
			return err
		}
		if err := bolt.Compact(path); err != nil {
			return fmt.Errorf("the signing keys and secrets are sealed now, but compacting the data file failed, so plain copies of them may stay in its free space until bbolt reuses it: %w", err)
		}
		if m.store, err = m.storeSpec.open(context.Background()); err != nil {
			return err
		}
	}
	m.Config.Logger.Info("sealed the signing keys and secrets that an earlier mcert stored in the clear, and compacted the data file so that no plain copy is left in it; backups taken before hold them in the clear", "sealed", n, "store", m.storeSpec.String())
	return nil
}

// wrongKeyFile explains a key file that does not open what the store holds sealed.
func wrongKeyFile(keyFile, store string, created bool, err error) error {
	if created {
		// The new key can never open the data: remove it, so that the next start says the same
		// rather than that a key file which nothing needs is the wrong one.
		os.Remove(keyFile)
		return fmt.Errorf("the key file %s was missing, and %s holds signing keys and secrets sealed with one: put that key file back (from its backup) and start again (%w)", keyFile, store, err)
	}
	return fmt.Errorf("the key file %s does not open the signing keys and secrets sealed in %s: start with the key file they were sealed with, the same on every instance and for every restored backup (%w)", keyFile, store, err)
}

// tlsConfig is the configuration to serve HTTPS with, or nil for plain HTTP.
func (m *Main) tlsConfig() (*tls.Config, error) {
	if m.Config.TLSCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(m.Config.TLSCert, m.Config.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert and --tls-key: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		// For TLS 1.2, only forward-secret AEAD suites (Mozilla's intermediate profile); TLS 1.3's
		// suites are all of that kind and not configurable.
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}, nil
}

func (m *Main) cardVerifier() (*authn.CardVerifier, error) {
	cfg := &m.Config
	var caPEM []byte
	if cfg.CardCA == "" {
		ca, created, err := authn.LoadOrCreateDevCA(cfg.DataDir, cfg.Now())
		if err != nil {
			return nil, fmt.Errorf("development card CA: %w", err)
		}
		if created {
			cfg.Logger.Info("created a development card CA", "dir", cfg.DataDir)
		}
		// On every start, so that a development server is never taken for a production one.
		cfg.Logger.Warn("development mode: cards of the development card CA are trusted and the demo relying party is served at /demo; configure --card-ca for real citizen cards", "dir", cfg.DataDir)
		caPEM = ca.CertPEM()
	} else {
		var err error
		if caPEM, err = os.ReadFile(cfg.CardCA); err != nil {
			return nil, fmt.Errorf("read --card-ca: %w", err)
		}
	}
	// The CAs alone first, to know them; then with the revocation check over them.
	plain, err := authn.NewCardVerifier(caPEM, nil)
	if err != nil {
		return nil, err
	}
	if m.revocation, err = m.revocationChecker(plain.CAs()); err != nil {
		return nil, err
	}
	if m.revocation == nil {
		return plain, nil
	}
	return authn.NewCardVerifier(caPEM, m.revocation)
}

// revocationChecker checks the cards of cas for revocation as --card-revocation says: by
// default OCSP then CRL for real card CAs, nothing for the development CA, whose cards name no
// revocation source. It is nil for "none".
func (m *Main) revocationChecker(cas []*x509.Certificate) (*revocation.Checker, error) {
	cfg := &m.Config
	mode := revocation.ModeNone
	if cfg.CardCA != "" {
		mode = revocation.ModeOCSPThenCRL
	}
	if cfg.CardRevocation != "" {
		mode, _ = revocation.ParseMode(cfg.CardRevocation) // Validate has checked it
	}
	if mode == revocation.ModeNone {
		if cfg.CardCA != "" {
			cfg.Logger.Warn("--card-revocation none: revoked citizen cards are accepted")
		}
		return nil, nil
	}
	files, err := crlFilesByCA(cfg.CardCRL, cas)
	if err != nil {
		return nil, err
	}
	rcfg := revocation.Config{Mode: mode, Logger: cfg.Logger, Now: cfg.Now}
	for _, ca := range cas {
		rcfg.CAs = append(rcfg.CAs, revocation.CA{Certificate: ca, CRLFiles: files[ca]})
	}
	chk, err := revocation.New(rcfg)
	if err != nil {
		return nil, fmt.Errorf("card revocation: %w", err)
	}
	return chk, nil
}

// crlFilesByCA sorts the --card-crl files by the CA that signed each, so that an operator
// need not say which CRL belongs to which CA.
func crlFilesByCA(paths []string, cas []*x509.Certificate) (map[*x509.Certificate][]string, error) {
	out := map[*x509.Certificate][]string{}
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read --card-crl: %w", err)
		}
		if block, _ := pem.Decode(data); block != nil {
			data = block.Bytes
		}
		list, err := x509.ParseRevocationList(data)
		if err != nil {
			return nil, fmt.Errorf("--card-crl %s is not a CRL in PEM or DER: %w", path, err)
		}
		i := slices.IndexFunc(cas, func(ca *x509.Certificate) bool { return list.CheckSignatureFrom(ca) == nil })
		if i < 0 {
			return nil, fmt.Errorf("--card-crl %s (from %s) is not signed by any of the --card-ca certificates; use the CRL of a CA that issues the cards", path, list.Issuer)
		}
		out[cas[i]] = append(out[cas[i]], path)
	}
	return out, nil
}

// canonicalURL writes the public URL as browsers write its origin (no default port, no
// trailing slash), since WebAuthn's origin check and the cross-site check compare exactly.
func canonicalURL(raw string) string {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || u.Host == "" {
		return strings.TrimRight(raw, "/")
	}
	if (u.Scheme == "https" && u.Port() == "443") || (u.Scheme == "http" && u.Port() == "80") {
		u.Host = strings.TrimSuffix(u.Host, ":"+u.Port())
	}
	u.Scheme, u.Host = strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	return u.String()
}

// adminTokenHash is the hash of the admin API's token: the configured one, or the one every
// instance on the store shares, whose hash the store keeps. The first instance to start makes
// it and writes it into its data directory (readable only by its owner), where the operator
// reads it; an older mcert's token file there becomes the shared one.
func (m *Main) adminTokenHash(ctx context.Context) ([]byte, error) {
	if m.Config.AdminToken != "" {
		h := sha256.Sum256([]byte(m.Config.AdminToken))
		return h[:], nil
	}
	path := filepath.Join(m.Config.DataDir, "admin-token")
	token, made, err := readOrMakeToken(path)
	if err != nil {
		return nil, fmt.Errorf("admin token: %w", err)
	}
	mine := sha256.Sum256([]byte(token))
	shared, err := m.service.Secret(ctx, adminTokenSecret, func() []byte { return mine[:] })
	if err != nil {
		return nil, fmt.Errorf("admin token: %w", err)
	}
	switch {
	case bytes.Equal(shared, mine[:]) && made:
		m.Config.Logger.Info("created the admin API token; keep it secret", "file", path)
	case made:
		os.Remove(path)
		m.Config.Logger.Info("the admin API takes the token another instance on this store made: it is in that instance's data directory, as admin-token", "store", m.storeSpec.String())
	case !bytes.Equal(shared, mine[:]):
		return nil, fmt.Errorf("the admin token in %s is not the one the instances on %s share: remove the file to use theirs (the instance that made it has it in its own data directory), or give --admin-token", path, m.storeSpec)
	}
	return shared, nil
}

// readOrMakeToken reads the token file at path, or makes it with a new token. It is made
// before the store learns the token's hash, so that a crash between the two leaves a token
// the next start adopts, never a hash whose token nobody has; and made only if missing, so that
// instances starting together on one data directory read the same one.
func readOrMakeToken(path string) (token string, made bool, err error) {
	for tries := 0; ; tries++ {
		data, err := os.ReadFile(path)
		if token = strings.TrimSpace(string(data)); err == nil && token != "" {
			return token, false, nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", false, err
		}
		if err == nil && tries == 100 {
			return "", false, fmt.Errorf("%s is empty: write the token into it, or remove it for a new one", path)
		}
		if err == nil { // empty: another instance is writing it
			time.Sleep(10 * time.Millisecond)
			continue
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", false, err
		}
		token = rand.Text()
		_, err = f.WriteString(token)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return token, true, err
	}
}

// adminTokenSecret is the name of the admin token's hash among the store's secrets.
const adminTokenSecret = "admin-token-hash"

// Run serves until ctx ends, then shuts down gracefully.
func (m *Main) Run(ctx context.Context) error {
	go everyMinute(ctx, m.collectGarbage)
	go everyMinute(ctx, m.remindExpiring)
	go m.service.DeliverMail(ctx)
	if m.revocation != nil {
		go m.revocation.Run(ctx)
		go m.reloadOnHangup(ctx)
	}
	if m.debug != nil {
		// The profiler's own mux: net/http/pprof registers on http.DefaultServeMux, which
		// nothing else serves.
		go http.Serve(m.debug, http.DefaultServeMux)
		m.Config.Logger.Info("serving the profiler", "addr", "http://"+m.debug.Addr().String()+"/debug/pprof/")
	}
	servers := []*http.Server{m.server}
	errc := make(chan error, 2)
	serve := func(srv *http.Server, l net.Listener) {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(l, "", "") // the certificate is in TLSConfig
			return
		}
		errc <- srv.Serve(l)
	}
	go serve(m.server, m.listener)
	m.Config.Logger.Info("serving", "addr", m.listener.Addr().String(), "public_url", m.PublicURL)
	if m.adminServer != nil {
		servers = append(servers, m.adminServer)
		go serve(m.adminServer, m.adminListener)
		m.Config.Logger.Info("serving the admin API and /metrics", "addr", m.adminListener.Addr().String())
	}
	var err error
	select {
	case err = <-errc:
		m.Config.Logger.Error("shutting down: a listener failed", "err", err)
	case <-ctx.Done():
		m.Config.Logger.Info("shutting down: taking no new requests, finishing those in flight", "timeout", shutdownTimeout)
	}
	shutdown, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	for _, srv := range servers {
		err = cmp.Or(err, srv.Shutdown(shutdown))
	}
	if errors.Is(err, context.DeadlineExceeded) {
		m.Config.Logger.Warn("stopped, cutting off the requests still in flight", "timeout", shutdownTimeout)
	} else {
		m.Config.Logger.Info("stopped")
	}
	return err
}

// shutdownTimeout is how long a stopping server lets the requests in flight finish.
const shutdownTimeout = 10 * time.Second

// reloadOnHangup fetches the card CAs' CRLs again, and re-reads their files, on SIGHUP: an
// operator who has just replaced a CRL need not wait for the next refresh.
func (m *Main) reloadOnHangup(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := m.revocation.Reload(ctx); err != nil {
				m.Config.Logger.Error("SIGHUP: reloading the card CRLs", "err", err)
			} else {
				m.Config.Logger.Info("SIGHUP: reloaded the card CRLs")
			}
		}
	}
}

// everyMinute runs job each minute until ctx ends.
func everyMinute(ctx context.Context, job func(context.Context)) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			job(ctx)
		}
	}
}

func (m *Main) collectGarbage(ctx context.Context) {
	if n, err := m.service.GarbageCollect(ctx); err != nil {
		m.Config.Logger.Error("garbage collection", "err", err)
	} else if n.Challenges+n.Sessions+n.Bindings > 0 {
		m.Config.Logger.Debug("garbage collected", "challenges", n.Challenges, "sessions", n.Sessions, "bindings", n.Bindings)
	}
}

// remindExpiring queues the devices' expiry reminders; the store lets one instance of several
// run each slot.
func (m *Main) remindExpiring(ctx context.Context) {
	if n, err := m.service.RemindExpiring(ctx); err != nil {
		m.Config.Logger.Error("expiry reminders", "err", err)
	} else if n > 0 {
		m.Config.Logger.Info("expiry reminders queued", "devices", n)
	}
}

// Close releases the store; call it after Run returns.
func (m *Main) Close() error {
	if m.listener != nil {
		m.listener.Close()
	}
	if m.adminListener != nil {
		m.adminListener.Close()
	}
	if m.debug != nil {
		m.debug.Close()
	}
	if m.store != nil {
		return m.store.Close()
	}
	return nil
}

func runServe(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	var m Main
	cfg := &m.Config
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&cfg.DataDir, "data", "./data", "data directory: the database, the key file and, in development, the card CA")
	fs.StringVar(&cfg.Store, "store", "", storeFlagHelp)
	fs.StringVar(&cfg.PublicURL, "public-url", "", "the URL citizens and phones reach the server at; its host is the WebAuthn RP ID (default http://localhost:<port>, https with --tls-cert)")
	fs.StringVar(&cfg.CardCA, "card-ca", "", "PEM bundle of trusted citizen card CAs (default: a development CA in the data directory)")
	fs.Var((*stringsFlag)(&cfg.CardCRL), "card-crl", "CRL file of a card CA (PEM or DER; repeatable), re-read when it changes and on SIGHUP; without one, the CRLs are fetched from the cards' distribution points and kept current")
	fs.StringVar(&cfg.CardRevocation, "card-revocation", "", `how card revocation is checked: "ocsp,crl" (the OCSP responder the card names, then the CRL when it cannot answer; the default with --card-ca), "crl", "ocsp", or "none" (the development CA's default)`)
	fs.IntVar(&cfg.DeviceLimit, "device-limit", 5, "how many usable phones one account may have bound")
	fs.BoolVar(&cfg.CertificateCitizenID, "certificate-citizen-id", false, "put the whole national ID in the phones' signing certificates (serialNumber), which otherwise hold the masked one; for a relying party that must identify the signer from the certificate alone")
	fs.Var((*stringsFlag)(&cfg.AttestationRoots), "attestation-roots", "PEM file of attestation root certificates (one or a bundle; repeatable): a phone whose attestation chains to one is trusted as hardware")
	fs.StringVar(&cfg.DevicePolicy, "device-policy", "", `which phones' keys a binding accepts: "synced=accept|refuse,unattested=accept|refuse" (synced: backup-eligible passkeys; unattested: keys whose attestation is not trusted); default: accept both`)
	fs.StringVar(&cfg.FIDOMDS, "fido-mds", "", "FIDO Metadata Service (MDS3) blob, the JWT file from https://mds3.fidoalliance.org/: a phone whose attestation chains to its AAGUID's roots is trusted as hardware")
	fs.StringVar(&cfg.AdminToken, "admin-token", "", "bearer token for the admin API (default: the one in <data>/admin-token, created on first start)")
	fs.StringVar(&cfg.CardAgentURL, "card-agent-url", "http://localhost:61161", "where the pages reach MOICA's cross-platform web component on the citizen's computer (or mcert card agent)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate chain to serve HTTPS with (TLS 1.2+). Without it the server speaks plain HTTP, for behind a TLS proxy: then listen on a private address (--addr 10.0.0.5:8080), give the proxy's URL as --public-url https://..., and the proxy's address as --trusted-proxy")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.DurationVar(&cfg.AuditRetention, "audit-retention", binding.DefaultAuditRetention, "how long the audit log keeps an event; older ones are deleted by the server's garbage collection")
	fs.StringVar(&cfg.DebugAddr, "debug-addr", "", "loopback address to serve Go's profiler at (/debug/pprof/), e.g. 127.0.0.1:6060; default: off")
	fs.StringVar(&cfg.AdminAddr, "admin-addr", "", "a second address, for the operator alone, to serve the admin API, /metrics (there without the admin token) and /healthz at: a private or loopback address such as 10.0.0.5:9090, never a public one; default: none")
	fs.StringVar(&cfg.KeyFile, "key-file", "", "the key that seals the signing keys and secrets in the store (default <data>/mcert.key, created on first start); back it up apart from the data backups, and give every instance the same one")
	fs.BoolVar(&cfg.Dev, "dev", false, "development mode at a public URL other than http://localhost: trust the development card CA and serve the demo relying party (without --dev, only on http://localhost, and only without --card-ca)")
	fs.Var((*prefixesFlag)(&cfg.TrustedProxies), "trusted-proxy", "CIDR[,CIDR...] of the reverse proxies in front (repeatable; an address alone is one host): only for requests from them is the client's address taken from X-Forwarded-For; default: none, the peer's own address counts")
	fs.StringVar(&cfg.Operator.Name, "operator-name", "", "who runs the service, as the pages' footer names it, e.g. 內政部")
	fs.StringVar(&cfg.Operator.SupportPhone, "support-phone", "", "the helpline the pages give citizens, e.g. 0800-080-117")
	fs.StringVar(&cfg.Operator.PrivacyURL, "privacy-url", "", "the privacy policy the pages link to")
	fs.StringVar(&cfg.SMTPURL, "smtp-url", "", "where the citizens' mails go: smtp://user:password@host:587?from=mcert@example.tw&from_name=... (STARTTLS required), or smtps://...:465 (default: in development, the log and /dev/mailbox; else the mails wait in the store)")
	fs.StringVar(&cfg.PushContact, "push-contact", "", "the operator's contact that phone notifications carry to the browsers' push services (VAPID), an email address or an https URL (default: the public URL when https)")
	fs.StringVar(&cfg.Operator.PersonalDataURL, "personal-data-url", "", "the personal data notice (個人資料蒐集告知) the pages link to, beside the registration form too")
	cfg.Limits = binding.DefaultLimits
	fs.Var((*limitFlag)(&cfg.Limits.CardLoginPerIP), "limit-card-login-ip", "rate limit of refused card logins from one address, as N/duration; a trusted card's login is never refused by it")
	fs.Var((*limitFlag)(&cfg.Limits.CardLoginPerCitizen), "limit-card-login-citizen", "rate limit of card logins of one citizen, from anywhere, as N/duration")
	fs.Var((*limitFlag)(&cfg.Limits.PhoneBeginPerIP), "limit-phone-begin-ip", "rate limit of refused phone begins, finishes and denies (unknown, used or expired tokens) from one address (IPv6: one /64), as N/duration; once spent, further refusals are answered 429, while right tokens keep working")
	fs.Var((*limitFlag)(&cfg.Limits.LoginPerIP), "limit-login-ip", "rate limit of relying-party logins (authorization requests) started from one address, as N/duration")
	fs.Var((*limitFlag)(&cfg.Limits.CIBAPerClient), "limit-ciba-client", "rate limit of decoupled (CIBA) logins one relying party may start, as N/duration")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stdout, nil))
	slog.SetDefault(cfg.Logger) // zitadel/oidc logs only to the default logger
	if err := m.Open(); err != nil {
		return err
	}
	defer m.Close()
	fmt.Fprintf(stdout, "mcert is serving at %s\n", m.PublicURL)
	return m.Run(ctx)
}

// prefixesFlag is a list of networks on the command line, repeatable and comma separated:
// 10.0.0.0/8,192.0.2.7 (an address alone is a network of one).
type prefixesFlag []netip.Prefix

// stringsFlag is a flag that may be given more than once.
type stringsFlag []string

func (f *stringsFlag) String() string {
	if f == nil {
		return ""
	}
	return strings.Join(*f, ",")
}

func (f *stringsFlag) Set(v string) error {
	*f = append(*f, v)
	return nil
}

func (p *prefixesFlag) String() string {
	if p == nil {
		return ""
	}
	parts := make([]string, len(*p))
	for i, pre := range *p {
		parts[i] = pre.String()
	}
	return strings.Join(parts, ",")
}

func (p *prefixesFlag) Set(v string) error {
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		pre, err := netip.ParsePrefix(part)
		if err != nil {
			a, aerr := netip.ParseAddr(part)
			if aerr != nil {
				return fmt.Errorf("%q is neither a network such as 10.0.0.0/8 nor an address such as 10.0.0.5", part)
			}
			a = a.Unmap()
			pre = netip.PrefixFrom(a, a.BitLen())
		}
		*p = append(*p, pre.Masked())
	}
	return nil
}

// limitFlag is a rate limit on the command line: N/duration, such as 300/1m.
type limitFlag binding.Limit

func (l *limitFlag) String() string {
	if l == nil || l.Window <= 0 {
		return ""
	}
	w := l.Window.String() // 1m0s and 1h0m0s are written 1m and 1h
	if rest, ok := strings.CutSuffix(w, "h0m0s"); ok {
		w = rest + "h"
	} else if rest, ok := strings.CutSuffix(w, "m0s"); ok {
		w = rest + "m"
	}
	return fmt.Sprintf("%d/%s", l.N, w)
}

func (l *limitFlag) Set(v string) error {
	n, w, ok := strings.Cut(v, "/")
	count, err := strconv.Atoi(n)
	window, werr := time.ParseDuration(w)
	if !ok || err != nil || werr != nil || count < 1 || window <= 0 {
		return fmt.Errorf("%q is not N/duration with N at least 1, such as 300/1m", v)
	}
	*l = limitFlag{N: count, Window: window}
	return nil
}

// attestationTrust reads --attestation-roots and --fido-mds: a file that is missing or not what
// it should be stops the start with an error that names it.
func attestationTrust(cfg Config) (authn.AttestationTrust, error) {
	t := authn.AttestationTrust{Now: cfg.Now}
	for _, path := range cfg.AttestationRoots {
		data, err := os.ReadFile(path)
		if err != nil {
			return t, fmt.Errorf("read --attestation-roots: %w", err)
		}
		certs, err := authn.ParseAttestationRoots(data)
		if err != nil {
			return t, fmt.Errorf("--attestation-roots %s: %w", path, err)
		}
		if t.Roots == nil {
			t.Roots = x509.NewCertPool()
		}
		for _, c := range certs {
			t.Roots.AddCert(c)
		}
	}
	if cfg.FIDOMDS != "" {
		blob, err := os.ReadFile(cfg.FIDOMDS)
		if err != nil {
			return t, fmt.Errorf("read --fido-mds: %w", err)
		}
		if t.MDS, err = authn.ParseFIDOMetadata(blob, cfg.FIDOMDSRoot); err != nil {
			return t, fmt.Errorf("--fido-mds %s: %w", cfg.FIDOMDS, err)
		}
	}
	return t, nil
}
