package revocation

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

var (
	oidReasonCode               = asn1.ObjectIdentifier{2, 5, 29, 21}
	oidInvalidityDate           = asn1.ObjectIdentifier{2, 5, 29, 24}
	oidDeltaCRLIndicator        = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidIssuingDistributionPoint = asn1.ObjectIdentifier{2, 5, 29, 28}
	oidCertificateIssuer        = asn1.ObjectIdentifier{2, 5, 29, 29}
	oidAuthorityKeyID           = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidCRLNumber                = asn1.ObjectIdentifier{2, 5, 29, 20}
)

// crl is a verified CRL, reduced to what deciding a card's status needs.
type crl struct {
	thisUpdate, nextUpdate time.Time
	number                 *big.Int // nil when the CRL has no CRL number
	// scope holds the distribution point URIs of the CRL's issuing distribution point; a card
	// is covered when it names one of them. nil: the CRL covers all the CA's cards.
	scope   []string
	revoked map[string]entry // by serial number in decimal
}

type entry struct {
	at     time.Time
	reason int
}

func (l *crl) fresh(now time.Time) bool { return now.Before(l.nextUpdate) }

func (l *crl) covers(card *x509.Certificate) bool {
	if l.scope == nil {
		return true
	}
	for _, dp := range card.CRLDistributionPoints {
		if slices.Contains(l.scope, dp) {
			return true
		}
	}
	return false
}

// parseCRL reads data, PEM ("X509 CRL") or DER, as a CRL of ca. Every byte of data is untrusted:
// it refuses what it does not fully understand rather than read part of it.
func parseCRL(data []byte, ca *x509.Certificate, now time.Time, skew time.Duration) (*crl, error) {
	der := data
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != "X509 CRL" {
			return nil, fmt.Errorf("the PEM block is a %q, want an X509 CRL", block.Type)
		}
		der = block.Bytes
	}
	list, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("not a CRL in PEM or DER: %w", err)
	}
	if !bytes.Equal(list.RawIssuer, ca.RawSubject) {
		return nil, fmt.Errorf("the CRL is issued by %s, not by the card CA %s", list.Issuer, ca.Subject)
	}
	l := &crl{thisUpdate: list.ThisUpdate, nextUpdate: list.NextUpdate, number: list.Number}
	for _, ext := range list.Extensions {
		switch {
		case ext.Id.Equal(oidDeltaCRLIndicator):
			return nil, errors.New("the CRL is a delta CRL, which this server does not apply; give the CA's full CRL")
		case ext.Id.Equal(oidIssuingDistributionPoint):
			if l.scope, err = parseIDP(ext.Value); err != nil {
				return nil, err
			}
		case ext.Id.Equal(oidAuthorityKeyID), ext.Id.Equal(oidCRLNumber):
		case ext.Critical:
			return nil, fmt.Errorf("the CRL has a critical extension %s that this server does not know", ext.Id)
		}
	}
	if l.nextUpdate.IsZero() {
		return nil, errors.New("the CRL has no nextUpdate, so there is no telling when it goes stale")
	}
	if l.nextUpdate.Before(l.thisUpdate) {
		return nil, errors.New("the CRL's nextUpdate is before its thisUpdate")
	}
	if l.thisUpdate.After(now.Add(skew)) {
		return nil, fmt.Errorf("the CRL's thisUpdate %s is in the future; check this computer's clock", l.thisUpdate.UTC().Format(time.RFC3339))
	}
	l.revoked = make(map[string]entry, len(list.RevokedCertificateEntries))
	for _, e := range list.RevokedCertificateEntries {
		for _, ext := range e.Extensions {
			// A certificateIssuer entry would make the entries that follow another CA's, whose
			// serial numbers must not be matched against this CA's cards.
			if ext.Id.Equal(oidCertificateIssuer) {
				return nil, errors.New("the CRL is an indirect CRL (it lists other CAs' certificates), which this server does not read")
			}
			if ext.Critical && !ext.Id.Equal(oidReasonCode) && !ext.Id.Equal(oidInvalidityDate) {
				return nil, fmt.Errorf("a CRL entry has a critical extension %s that this server does not know", ext.Id)
			}
		}
		l.revoked[e.SerialNumber.String()] = entry{at: e.RevocationTime, reason: e.ReasonCode}
	}
	// The signature is checked last only because it is the one check that always fails on
	// altered bytes, and the fuzz target should reach the others.
	if err := list.CheckSignatureFrom(ca); err != nil {
		return nil, fmt.Errorf("the CRL is not signed by the card CA %s: %w", ca.Subject, err)
	}
	return l, nil
}

// The issuing distribution point extension (RFC 5280 5.2.5). Tagging distributionPoint
// implicitly as a struct gives the same bytes as the explicit tag on its CHOICE, as in
// crypto/x509's own distribution points.
type issuingDistributionPoint struct {
	DistributionPoint          distributionPointName `asn1:"optional,tag:0"`
	OnlyContainsUserCerts      bool                  `asn1:"optional,tag:1"`
	OnlyContainsCACerts        bool                  `asn1:"optional,tag:2"`
	OnlySomeReasons            asn1.BitString        `asn1:"optional,tag:3"`
	IndirectCRL                bool                  `asn1:"optional,tag:4"`
	OnlyContainsAttributeCerts bool                  `asn1:"optional,tag:5"`
}

type distributionPointName struct {
	FullName     []asn1.RawValue `asn1:"optional,tag:0"`
	RelativeName asn1.RawValue   `asn1:"optional,tag:1"`
}

// parseIDP gives the URIs that bound a CRL's scope, or nil when the CRL covers every card of its
// CA, and refuses the scopes that would make a card's absence from the list mean nothing.
func parseIDP(der []byte) ([]string, error) {
	var idp issuingDistributionPoint
	if rest, err := asn1.Unmarshal(der, &idp); err != nil || len(rest) > 0 {
		return nil, errors.New("the CRL's issuing distribution point extension is malformed")
	}
	switch {
	case idp.OnlyContainsCACerts || idp.OnlyContainsAttributeCerts:
		return nil, errors.New("the CRL lists only CA or attribute certificates, not cards")
	case idp.OnlySomeReasons.BitLength > 0:
		return nil, errors.New("the CRL lists only some revocation reasons; give the CA's full CRL")
	case idp.IndirectCRL:
		return nil, errors.New("the CRL is an indirect CRL, which this server does not read")
	case len(idp.DistributionPoint.RelativeName.FullBytes) > 0:
		return nil, errors.New("the CRL names its distribution point relative to its issuer, which this server does not read")
	}
	var uris []string
	for _, name := range idp.DistributionPoint.FullName {
		const uriTag = 6 // GeneralName uniformResourceIdentifier [6] IA5String
		if name.Class == asn1.ClassContextSpecific && name.Tag == uriTag {
			uris = append(uris, string(name.Bytes))
		}
	}
	// A scope of names none of which is a URI still bounds the CRL: it covers no card
	// rather than all of them.
	if len(idp.DistributionPoint.FullName) > 0 && uris == nil {
		uris = []string{}
	}
	return uris, nil
}

// source is one place a CA's CRL comes from: a file or a URL.
type source struct {
	ca   *authority
	file string
	url  string

	// lock is held while the CRL is read again, so that one load runs at a time; it is a
	// channel so that a login waiting for it can give up with its context.
	lock chan struct{}

	mu          sync.Mutex
	list        *crl // the last good CRL, nil before the first
	loadedAt    time.Time
	stamp       fileStamp
	lastAttempt time.Time
	lastErr     error
}

type fileStamp struct {
	modTime time.Time
	size    int64
}

func (f fileStamp) same(g fileStamp) bool { return f.size == g.size && f.modTime.Equal(g.modTime) }

func newSource(a *authority, file, url string) *source {
	return &source{ca: a, file: file, url: url, lock: make(chan struct{}, 1)}
}

func (s *source) String() string {
	if s.file != "" {
		return s.file
	}
	return s.url
}

func (s *source) state() (l *crl, lastErr error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.list, s.lastErr
}

// onDemandRetry spaces the loads that logins trigger for a source without a usable CRL, so that
// a burst of logins while a CRL server is down does not become a burst of downloads.
const onDemandRetry = 10 * time.Second

// checkCRL decides card's status from its CA's CRLs: nil for good, a revoked *Error, or why the
// CRLs cannot tell.
func (c *Checker) checkCRL(ctx context.Context, a *authority, card *x509.Certificate) error {
	sources := a.files
	alternatives := false
	if len(sources) == 0 {
		for _, u := range httpURLs(card.CRLDistributionPoints) {
			sources = append(sources, a.urlSource(u))
		}
		// A card's distribution points are alternatives: one usable CRL among them decides.
		alternatives = true
	}
	if len(sources) == 0 {
		return fmt.Errorf("no CRL for the card: the CA %s has no CRL file and the card names no HTTP CRL distribution point", a.name)
	}
	serial := card.SerialNumber.String()
	var errs []error
	covered := false
	for _, s := range sources {
		l, err := c.current(ctx, s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !l.covers(card) {
			errs = append(errs, fmt.Errorf("the CRL from %s does not cover the card's distribution points", s))
			continue
		}
		if r, ok := l.revoked[serial]; ok {
			return revokedError(r.at, r.reason, "CRL "+s.String())
		}
		covered = true
		if alternatives {
			break
		}
	}
	if covered {
		return nil
	}
	return errors.Join(errs...)
}

func (a *authority) urlSource(u string) *source {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.urls[u]
	if s == nil {
		s = newSource(a, "", u)
		a.urls[u] = s
	}
	return s
}

// sources are all of a's CRL sources at this moment.
func (a *authority) sources() []*source {
	a.mu.Lock()
	defer a.mu.Unlock()
	all := slices.Clone(a.files)
	for _, s := range a.urls {
		all = append(all, s)
	}
	slices.SortFunc(all[len(a.files):], func(x, y *source) int { return strings.Compare(x.url, y.url) })
	return all
}

// current is s's CRL if it is fresh, loading it now if it is not and no load was tried moments
// ago.
func (c *Checker) current(ctx context.Context, s *source) (*crl, error) {
	// usable decides without loading: ok is false when a load should be tried.
	usable := func() (l *crl, ok bool, err error) {
		now := c.cfg.Now()
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.list != nil && s.list.fresh(now) {
			return s.list, true, nil
		}
		if !s.lastAttempt.IsZero() && now.Sub(s.lastAttempt) < onDemandRetry {
			return nil, true, staleError(s, s.list, s.lastErr)
		}
		return nil, false, nil
	}
	if l, ok, err := usable(); ok {
		return l, err
	}
	select {
	case s.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the CRL from %s: %w", s, ctx.Err())
	}
	defer func() { <-s.lock }()
	// Another login may have loaded it while this one waited.
	if l, ok, err := usable(); ok {
		return l, err
	}
	err := c.loadLocked(ctx, s)
	l, _ := s.state()
	if l != nil && l.fresh(c.cfg.Now()) {
		return l, nil
	}
	return nil, staleError(s, l, err)
}

func staleError(s *source, l *crl, lastErr error) error {
	switch {
	case l == nil && lastErr != nil:
		return lastErr
	case l == nil:
		return fmt.Errorf("no CRL from %s yet", s)
	case lastErr != nil:
		return fmt.Errorf("the CRL from %s went stale at its nextUpdate %s, and reading a new one failed: %w", s, l.nextUpdate.UTC().Format(time.RFC3339), lastErr)
	}
	return fmt.Errorf("the CRL from %s went stale at its nextUpdate %s", s, l.nextUpdate.UTC().Format(time.RFC3339))
}

// load reads s's CRL again. When that fails, the CRL in use stays until it goes stale.
func (c *Checker) load(ctx context.Context, s *source) error {
	select {
	case s.lock <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.lock }()
	return c.loadLocked(ctx, s)
}

func (c *Checker) loadLocked(ctx context.Context, s *source) error {
	now := c.cfg.Now()
	data, stamp, err := c.read(ctx, s)
	var l *crl
	if err == nil {
		l, err = parseCRL(data, s.ca.cert, now, c.cfg.ClockSkew)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && s.list != nil {
		err = notOlder(l, s.list)
	}
	if err != nil {
		err = fmt.Errorf("CRL of %s from %s: %w", s.ca.name, s, err)
		// A login that gave up cancelled the download; that says nothing about the source.
		if ctx.Err() == nil {
			s.lastAttempt, s.lastErr = now, err
			if s.file != "" {
				s.stamp = stamp
			}
		}
		c.log.Warn("CRL refresh failed; the CRL in use, if any, stays until its nextUpdate", "ca", s.ca.name, "source", s.String(), "err", err)
		return err
	}
	if s.list == nil || !s.list.thisUpdate.Equal(l.thisUpdate) {
		c.log.Info("CRL loaded", "ca", s.ca.name, "source", s.String(), "this_update", l.thisUpdate, "next_update", l.nextUpdate, "revoked", len(l.revoked))
	}
	s.list, s.loadedAt, s.stamp = l, now, stamp
	s.lastAttempt, s.lastErr = now, nil
	return nil
}

// notOlder refuses a CRL older than the one in use: over plain HTTP anyone on the path could
// otherwise replay an earlier CRL, still within its validity, that predates a revocation.
func notOlder(next, cur *crl) error {
	if next.thisUpdate.Before(cur.thisUpdate) {
		return fmt.Errorf("the CRL (thisUpdate %s) is older than the one in use (thisUpdate %s)", next.thisUpdate.UTC().Format(time.RFC3339), cur.thisUpdate.UTC().Format(time.RFC3339))
	}
	if next.number != nil && cur.number != nil && next.number.Cmp(cur.number) < 0 {
		return fmt.Errorf("the CRL (number %s) is older than the one in use (number %s)", next.number, cur.number)
	}
	return nil
}

func (c *Checker) read(ctx context.Context, s *source) ([]byte, fileStamp, error) {
	if s.file != "" {
		return readFile(s.file, c.cfg.MaxCRLBytes)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CRLTimeout)
	defer cancel()
	data, err := c.fetch(ctx, http.MethodGet, s.url, nil, "", c.cfg.MaxCRLBytes)
	return data, fileStamp{}, err
}

func readFile(name string, limit int64) ([]byte, fileStamp, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fileStamp{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileStamp{}, err
	}
	stamp := fileStamp{fi.ModTime(), fi.Size()}
	data, err := readLimited(f, limit)
	return data, stamp, err
}

func statFile(name string) (fileStamp, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.ModTime(), fi.Size()}, nil
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return data, nil
}

// fetch sends one request and reads its 200 answer, at most limit bytes of it.
func (c *Checker) fetch(ctx context.Context, method, u string, body []byte, contentType string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s answered %s", method, u, resp.Status)
	}
	return readLimited(resp.Body, limit)
}

// httpURLs are the http and https URLs among names. ldap:// distribution points would need a
// directory client; MOICA's cards name an HTTP point too.
func httpURLs(names []string) []string {
	var urls []string
	for _, n := range names {
		u, err := url.Parse(n)
		if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
			urls = append(urls, n)
		}
	}
	return urls
}

// due says whether s should be read again now: a file when it changed on disk (New made sure
// it has a CRL), a URL when its CRL is missing or its refresh time has come.
func (c *Checker) due(s *source, now time.Time) bool {
	if s.file != "" {
		stamp, err := statFile(s.file)
		s.mu.Lock()
		defer s.mu.Unlock()
		return err != nil || !stamp.same(s.stamp)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.list == nil || !now.Before(refreshAt(s.list, s.loadedAt, c.cfg.RefreshInterval))
}

// refreshAt is when a CRL loaded at loadedAt is fetched again: after interval, and no later than
// when 80% of its validity has passed, so a new one is in hand before this one goes stale. Past
// that point (the CA has not published a newer one yet) it is fetched at half the time left.
func refreshAt(l *crl, loadedAt time.Time, interval time.Duration) time.Time {
	wait := interval
	mark := l.thisUpdate.Add(l.nextUpdate.Sub(l.thisUpdate) * 8 / 10)
	if until := mark.Sub(loadedAt); until > 0 {
		wait = min(wait, until)
	} else {
		wait = min(wait, max(l.nextUpdate.Sub(loadedAt)/2, 0))
	}
	return loadedAt.Add(wait)
}

// refreshConcurrency bounds the downloads one refresh runs at once: a CA with partitioned CRLs
// has many, and a slow server should not hold up the others for long.
const refreshConcurrency = 4

// refresh reads again every CRL source that is due, or every one when force is set, and returns
// the failures.
func (c *Checker) refresh(ctx context.Context, force bool) error {
	if !c.cfg.Mode.usesCRL() {
		return nil
	}
	now := c.cfg.Now()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, refreshConcurrency)
	)
	for _, a := range c.order {
		for _, s := range a.sources() {
			if !force && !c.due(s, now) {
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if err := c.load(ctx, s); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Reload reads every CRL file again and fetches every CRL URL in use again, now; the server
// calls it on SIGHUP. It returns the failures, which are also logged; a source that failed
// keeps its last good CRL until that goes stale.
func (c *Checker) Reload(ctx context.Context) error {
	return c.refresh(ctx, true)
}

// Run keeps the CRLs current until ctx ends: every TickInterval it reads the CRL files that
// changed and fetches the CRLs whose refresh time has come, and drops expired OCSP answers.
func (c *Checker) Run(ctx context.Context) {
	t := time.NewTicker(c.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.tick(ctx)
		}
	}
}

// tick is one round of Run. Its failures are logged where they happen; the round goes on.
func (c *Checker) tick(ctx context.Context) {
	_ = c.refresh(ctx, false)
	c.sweepOCSP(c.cfg.Now())
}
