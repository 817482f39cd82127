package revocation

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/ocsp"

	"github.com/mcert/mcert"
)

// respond answers every OCSP request with der.
func respond(der []byte) func(*ocsp.Request) []byte {
	return func(*ocsp.Request) []byte { return der }
}

// wantStatus fails t unless err is what Check should return for want: nil (good), ErrRevoked
// (with the tests' revocation time and reason) or ErrUnknown.
func wantStatus(t *testing.T, err error, want *mcert.Error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("Check = %v, want good (nil)", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("Check = %v, want %s", err, want.Code)
	}
	var me *mcert.Error
	if !errors.As(err, &me) || me.Kind != mcert.Unauthorized || me.Code != want.Code {
		t.Fatalf("Check = %v, which is not an unauthorized *mcert.Error %s", err, want.Code)
	}
	var re *Error
	if !errors.As(err, &re) {
		t.Fatalf("Check = %v, not a *revocation.Error", err)
	}
	if want == ErrRevoked && (!re.RevokedAt.Equal(revokedAt) || re.Reason != revokedReason || re.Source == "") {
		t.Fatalf("revoked at %s reason %d by %q, want at %s reason %d and a source", re.RevokedAt, re.Reason, re.Source, revokedAt, revokedReason)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		mode Mode
		// card is the card to check; nil: one naming the server's CRL and responder.
		card func(e *env) *x509.Certificate
		// arrange sets up the server for card and returns the CA's CRL files, if any.
		arrange func(e *env, card *x509.Certificate) []string
		// issuer is what Check is given as the card's issuer; nil: the issuing CA.
		issuer func(e *env) *x509.Certificate
		want   *mcert.Error
		why    string // what the error must say
	}{
		{
			name: "good by OCSP signed by the CA",
			mode: ModeOCSP,
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setResponder(respond(e.pki.ocspAnswer(e.t, card, e.pki.ca, e.pki.caKey, answer{status: ocsp.Good})))
				return nil
			},
		},
		{
			name: "good by OCSP signed by a delegated responder",
			mode: ModeOCSP,
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setResponder(respond(e.pki.ocspAnswer(e.t, card, e.pki.responder, e.pki.responderKey, answer{status: ocsp.Good})))
				return nil
			},
		},
		{
			name: "good by OCSP with a SHA-256 CertID in the answer",
			mode: ModeOCSP,
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setResponder(respond(e.pki.ocspAnswer(e.t, card, e.pki.responder, e.pki.responderKey, answer{status: ocsp.Good, hash: crypto.SHA256})))
				return nil
			},
		},
		{
			name: "revoked by OCSP",
			mode: ModeOCSP,
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setResponder(respond(e.pki.ocspAnswer(e.t, card, e.pki.ca, e.pki.caKey, answer{status: ocsp.Revoked})))
				return nil
			},
			want: ErrRevoked,
		},
		{
			name: "revoked by OCSP, delegated responder, in mode ocsp,crl with a CRL that does not list it",
			mode: ModeOCSPThenCRL,
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setResponder(respond(e.pki.ocspAnswer(e.t, card, e.pki.responder, e.pki.responderKey, answer{status: ocsp.Revoked})))
				e.srv.setCRL("/crl/ca.crl", e.pki.crl(e.t, e.pki.ca, e.pki.caKey, crlSpec{}))
				return nil
			},
			want: ErrRevoked,
		},
		{
			name: "good by the CRL at its URL",
			mode: ModeCRL,
			arrange: func(e *env, card *x509.Certificate) []string {
				other := e.pki.card(e.t, nil, nil)
				e.srv.setCRL("/crl/ca.crl", e.pki.crl(e.t, e.pki.ca, e.pki.caKey, crlSpec{revoked: []*x509.Certificate{other}}))
				return nil
			},
		},
		{
			name: "revoked by the CRL at its URL",
			mode: ModeCRL,
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setCRL("/crl/ca.crl", e.pki.crl(e.t, e.pki.ca, e.pki.caKey, crlSpec{revoked: []*x509.Certificate{card}}))
				return nil
			},
			want: ErrRevoked,
		},
		{
			name: "revoked by a CRL file (PEM), which rules over the card's distribution point",
			mode: ModeCRL,
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setCRL("/crl/ca.crl", e.pki.crl(e.t, e.pki.ca, e.pki.caKey, crlSpec{}))
				return []string{e.writeFile("ca.crl", e.pki.crl(e.t, e.pki.ca, e.pki.caKey, crlSpec{revoked: []*x509.Certificate{card}}), "X509 CRL")}
			},
			want: ErrRevoked,
		},
		{
			name: "revoked by a CRL file (DER)",
			mode: ModeCRL,
			arrange: func(e *env, card *x509.Certificate) []string {
				return []string{e.writeFile("ca.crl", e.pki.crl(e.t, e.pki.ca, e.pki.caKey, crlSpec{revoked: []*x509.Certificate{card}}), "")}
			},
			want: ErrRevoked,
		},
		{
			name: "good by a CRL file",
			mode: ModeCRL,
			arrange: func(e *env, card *x509.Certificate) []string {
				return []string{e.writeFile("ca.crl", e.pki.crl(e.t, e.pki.ca, e.pki.caKey, crlSpec{}), "X509 CRL")}
			},
		},
		{
			name: "CRL at its URL past its nextUpdate: unknown",
			mode: ModeCRL,
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setCRL("/crl/ca.crl", e.pki.crl(e.t, e.pki.ca, e.pki.caKey, crlSpec{thisUpdate: base.Add(-25 * time.Hour), nextUpdate: base.Add(-time.Minute)}))
				return nil
			},
			want: ErrUnknown,
			why:  "went stale",
		},
		{
			name: "CRL file past its nextUpdate: unknown",
			mode: ModeCRL,
			arrange: func(e *env, card *x509.Certificate) []string {
				return []string{e.writeFile("ca.crl", e.pki.crl(e.t, e.pki.ca, e.pki.caKey, crlSpec{thisUpdate: base.Add(-25 * time.Hour), nextUpdate: base.Add(-time.Minute)}), "")}
			},
			want: ErrUnknown,
			why:  "went stale",
		},
		{
			name: "CRL at its URL unreachable: unknown",
			mode: ModeCRL,
			card: func(e *env) *x509.Certificate { return e.pki.card(e.t, []string{e.down + "/crl/ca.crl"}, nil) },
			want: ErrUnknown,
			why:  "connection refused",
		},
		{
			name: "responder unreachable, mode ocsp: unknown",
			mode: ModeOCSP,
			card: func(e *env) *x509.Certificate {
				return e.pki.card(e.t, []string{e.crlURL()}, []string{e.down + "/ocsp"})
			},
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setCRL("/crl/ca.crl", e.pki.crl(e.t, e.pki.ca, e.pki.caKey, crlSpec{}))
				return nil
			},
			want: ErrUnknown,
			why:  "connection refused",
		},
		{
			name: "responder unreachable, mode ocsp,crl: revoked by the fresh CRL",
			mode: ModeOCSPThenCRL,
			card: func(e *env) *x509.Certificate {
				return e.pki.card(e.t, []string{e.crlURL()}, []string{e.down + "/ocsp"})
			},
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setCRL("/crl/ca.crl", e.pki.crl(e.t, e.pki.ca, e.pki.caKey, crlSpec{revoked: []*x509.Certificate{card}}))
				return nil
			},
			want: ErrRevoked,
		},
		{
			name: "responder unreachable, mode ocsp,crl: good by the fresh CRL",
			mode: ModeOCSPThenCRL,
			card: func(e *env) *x509.Certificate {
				return e.pki.card(e.t, []string{e.crlURL()}, []string{e.down + "/ocsp"})
			},
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setCRL("/crl/ca.crl", e.pki.crl(e.t, e.pki.ca, e.pki.caKey, crlSpec{}))
				return nil
			},
		},
		{
			name: "responder says tryLater, mode ocsp,crl, CRL stale: unknown",
			mode: ModeOCSPThenCRL,
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setResponder(respond(ocsp.TryLaterErrorResponse))
				e.srv.setCRL("/crl/ca.crl", e.pki.crl(e.t, e.pki.ca, e.pki.caKey, crlSpec{thisUpdate: base.Add(-25 * time.Hour), nextUpdate: base.Add(-time.Minute)}))
				return nil
			},
			want: ErrUnknown,
			why:  "went stale",
		},
		{
			name: "responder slower than the OCSP timeout: unknown",
			mode: ModeOCSP,
			card: func(e *env) *x509.Certificate { return e.pki.card(e.t, nil, []string{e.srv.URL + "/slow"}) },
			want: ErrUnknown,
			why:  "deadline exceeded",
		},
		{
			name: "responder answers HTTP 404: unknown",
			mode: ModeOCSP,
			card: func(e *env) *x509.Certificate { return e.pki.card(e.t, nil, []string{e.srv.URL + "/nothing"}) },
			want: ErrUnknown,
			why:  "404",
		},
		{
			name: "responder answers malformed bytes: unknown",
			mode: ModeOCSP,
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setResponder(respond([]byte("<html>service unavailable</html>")))
				return nil
			},
			want: ErrUnknown,
			why:  "malformed OCSP answer",
		},
		{
			name: "responder says unauthorized: unknown",
			mode: ModeOCSP,
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setResponder(respond(ocsp.UnauthorizedErrorResponse))
				return nil
			},
			want: ErrUnknown,
			why:  "unauthorized",
		},
		{
			name: "responder says tryLater: unknown",
			mode: ModeOCSP,
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setResponder(respond(ocsp.TryLaterErrorResponse))
				return nil
			},
			want: ErrUnknown,
			why:  "try later",
		},
		{
			name: "responder says unknown: unknown",
			mode: ModeOCSP,
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setResponder(respond(e.pki.ocspAnswer(e.t, card, e.pki.ca, e.pki.caKey, answer{status: ocsp.Unknown})))
				return nil
			},
			want: ErrUnknown,
			why:  "does not know the card",
		},
		{
			name: "good answer signed by a foreign key with the CA's name: unknown",
			mode: ModeOCSP,
			arrange: func(e *env, card *x509.Certificate) []string {
				// Signed as if by the CA (no embedded certificate), with the impostor's key.
				der, err := ocsp.CreateResponse(e.pki.ca, e.pki.ca, ocsp.Response{Status: ocsp.Good, SerialNumber: card.SerialNumber, ThisUpdate: base, NextUpdate: base.Add(time.Hour)}, e.pki.impostorKey)
				if err != nil {
					e.t.Fatal(err)
				}
				e.srv.setResponder(respond(der))
				return nil
			},
			want: ErrUnknown,
			why:  "verification error",
		},
		{
			name: "good answer from a responder certificate the CA did not sign: unknown",
			mode: ModeOCSP,
			arrange: func(e *env, card *x509.Certificate) []string {
				forged := e.pki.issue(e.t, &x509.Certificate{
					Subject: e.pki.responder.Subject, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
				}, e.pki.impostor, e.pki.impostorKey, e.pki.responderKey)
				e.srv.setResponder(respond(e.pki.ocspAnswer(e.t, card, forged, e.pki.responderKey, answer{status: ocsp.Good})))
				return nil
			},
			want: ErrUnknown,
			why:  "verification error",
		},
		{
			name: "good answer signed by a CA-signed certificate not meant for OCSP (another card): unknown",
			mode: ModeOCSP,
			arrange: func(e *env, card *x509.Certificate) []string {
				other := e.pki.card(e.t, nil, nil)
				e.srv.setResponder(respond(e.pki.ocspAnswer(e.t, card, other, e.pki.cardKey, answer{status: ocsp.Good})))
				return nil
			},
			want: ErrUnknown,
			why:  "not meant for OCSP signing",
		},
		{
			name: "good answer from an expired delegated responder: unknown",
			mode: ModeOCSP,
			arrange: func(e *env, card *x509.Certificate) []string {
				expired := e.pki.issue(e.t, &x509.Certificate{
					Subject: e.pki.responder.Subject, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
					NotBefore: base.AddDate(-1, 0, 0), NotAfter: base.Add(-time.Hour),
				}, e.pki.ca, e.pki.caKey, e.pki.responderKey)
				e.srv.setResponder(respond(e.pki.ocspAnswer(e.t, card, expired, e.pki.responderKey, answer{status: ocsp.Good})))
				return nil
			},
			want: ErrUnknown,
			why:  "is valid only from",
		},
		{
			name: "good answer for another serial: unknown",
			mode: ModeOCSP,
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setResponder(respond(e.pki.ocspAnswer(e.t, card, e.pki.ca, e.pki.caKey, answer{status: ocsp.Good, serial: new(big.Int).Add(card.SerialNumber, big.NewInt(1))})))
				return nil
			},
			want: ErrUnknown,
			why:  "no response matching",
		},
		{
			name: "good answer for the card's serial under another CA: unknown",
			mode: ModeOCSP,
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setResponder(respond(e.pki.ocspAnswer(e.t, card, e.pki.ca, e.pki.caKey, answer{status: ocsp.Good, issuer: e.pki.impostor})))
				return nil
			},
			want: ErrUnknown,
			why:  "of another CA",
		},
		{
			name: "good answer whose thisUpdate is in the future: unknown",
			mode: ModeOCSP,
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setResponder(respond(e.pki.ocspAnswer(e.t, card, e.pki.ca, e.pki.caKey, answer{status: ocsp.Good, thisUpdate: base.Add(time.Hour), nextUpdate: base.Add(2 * time.Hour)})))
				return nil
			},
			want: ErrUnknown,
			why:  "in the future",
		},
		{
			name: "good answer whose nextUpdate has passed: unknown",
			mode: ModeOCSP,
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setResponder(respond(e.pki.ocspAnswer(e.t, card, e.pki.ca, e.pki.caKey, answer{status: ocsp.Good, thisUpdate: base.Add(-2 * time.Hour), nextUpdate: base.Add(-time.Hour)})))
				return nil
			},
			want: ErrUnknown,
			why:  "nextUpdate",
		},
		{
			name: "good answer signed by a foreign key, mode ocsp,crl: revoked by the CRL",
			mode: ModeOCSPThenCRL,
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setResponder(respond(e.pki.ocspAnswer(e.t, card, e.pki.impostor, e.pki.impostorKey, answer{status: ocsp.Good})))
				e.srv.setCRL("/crl/ca.crl", e.pki.crl(e.t, e.pki.ca, e.pki.caKey, crlSpec{revoked: []*x509.Certificate{card}}))
				return nil
			},
			want: ErrRevoked,
		},
		{
			name: "CRL with the CA's name signed by another CA: refused, unknown",
			mode: ModeCRL,
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setCRL("/crl/ca.crl", e.pki.crl(e.t, e.pki.impostor, e.pki.impostorKey, crlSpec{}))
				return nil
			},
			want: ErrUnknown,
			why:  "verification error",
		},
		{
			name: "CRL of another CA: refused, unknown",
			mode: ModeCRL,
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setCRL("/crl/ca.crl", e.pki.crl(e.t, e.pki.root, e.pki.rootKey, crlSpec{}))
				return nil
			},
			want: ErrUnknown,
			why:  "not by the card CA",
		},
		{
			name: "delta CRL: refused, unknown",
			mode: ModeCRL,
			arrange: func(e *env, card *x509.Certificate) []string {
				delta := pkix.Extension{Id: oidDeltaCRLIndicator, Critical: true, Value: []byte{2, 1, 1}}
				e.srv.setCRL("/crl/ca.crl", e.pki.crl(e.t, e.pki.ca, e.pki.caKey, crlSpec{extensions: []pkix.Extension{delta}}))
				return nil
			},
			want: ErrUnknown,
			why:  "delta CRL",
		},
		{
			name: "CRL with an unknown critical extension: refused, unknown",
			mode: ModeCRL,
			arrange: func(e *env, card *x509.Certificate) []string {
				odd := pkix.Extension{Id: []int{1, 3, 6, 1, 4, 1, 99999, 1}, Critical: true, Value: []byte{5, 0}}
				e.srv.setCRL("/crl/ca.crl", e.pki.crl(e.t, e.pki.ca, e.pki.caKey, crlSpec{extensions: []pkix.Extension{odd}}))
				return nil
			},
			want: ErrUnknown,
			why:  "critical extension",
		},
		{
			name: "partitioned CRL file for another partition: unknown",
			mode: ModeCRL,
			arrange: func(e *env, card *x509.Certificate) []string {
				return []string{e.writeFile("p2.crl", e.pki.crl(e.t, e.pki.ca, e.pki.caKey, crlSpec{extensions: []pkix.Extension{idp(e.t, e.srv.URL+"/crl/p2.crl")}}), "")}
			},
			want: ErrUnknown,
			why:  "does not cover",
		},
		{
			name: "partitioned CRL files: revoked by the card's partition",
			mode: ModeCRL,
			arrange: func(e *env, card *x509.Certificate) []string {
				return []string{
					e.writeFile("p2.crl", e.pki.crl(e.t, e.pki.ca, e.pki.caKey, crlSpec{extensions: []pkix.Extension{idp(e.t, e.srv.URL+"/crl/p2.crl")}}), ""),
					e.writeFile("p1.crl", e.pki.crl(e.t, e.pki.ca, e.pki.caKey, crlSpec{revoked: []*x509.Certificate{card}, extensions: []pkix.Extension{idp(e.t, e.crlURL())}}), ""),
				}
			},
			want: ErrRevoked,
		},
		{
			name: "indirect CRL (entries naming another issuer): refused, unknown",
			mode: ModeCRL,
			arrange: func(e *env, card *x509.Certificate) []string {
				// certificateIssuer: GeneralNames with a directoryName; its content does not matter.
				issuer := pkix.Extension{Id: oidCertificateIssuer, Critical: true, Value: []byte{0x30, 0x02, 0xa4, 0x00}}
				other := e.pki.card(e.t, nil, nil)
				e.srv.setCRL("/crl/ca.crl", e.pki.crl(e.t, e.pki.ca, e.pki.caKey, crlSpec{revoked: []*x509.Certificate{other}, entryExtensions: []pkix.Extension{issuer}}))
				return nil
			},
			want: ErrUnknown,
			why:  "indirect CRL",
		},
		{
			name: "card that the given issuer did not issue: unknown, whatever that issuer's CRL says",
			mode: ModeCRL,
			card: func(e *env) *x509.Certificate {
				return e.pki.issue(e.t, &x509.Certificate{
					Subject: pkix.Name{CommonName: "王小明"}, KeyUsage: x509.KeyUsageDigitalSignature, CRLDistributionPoints: []string{e.crlURL()},
				}, e.pki.root, e.pki.rootKey, e.pki.cardKey)
			},
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setCRL("/crl/ca.crl", e.pki.crl(e.t, e.pki.ca, e.pki.caKey, crlSpec{revoked: []*x509.Certificate{card}}))
				return nil
			},
			want: ErrUnknown,
			why:  "names issuer",
		},
		{
			name: "the card's first HTTP distribution point is down: the next one decides",
			mode: ModeCRL,
			card: func(e *env) *x509.Certificate {
				return e.pki.card(e.t, []string{e.down + "/crl/ca.crl", e.crlURL()}, nil)
			},
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setCRL("/crl/ca.crl", e.pki.crl(e.t, e.pki.ca, e.pki.caKey, crlSpec{revoked: []*x509.Certificate{card}}))
				return nil
			},
			want: ErrRevoked,
		},
		{
			name: "ldap distribution point ignored, the HTTP one decides",
			mode: ModeCRL,
			card: func(e *env) *x509.Certificate {
				return e.pki.card(e.t, []string{"ldap://ldap.moica.example/cn=CRL1,ou=MOICA?certificateRevocationList", e.crlURL()}, nil)
			},
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setCRL("/crl/ca.crl", e.pki.crl(e.t, e.pki.ca, e.pki.caKey, crlSpec{revoked: []*x509.Certificate{card}}))
				return nil
			},
			want: ErrRevoked,
		},
		{
			name: "no CRL source: the card names only an ldap point and there is no file",
			mode: ModeCRL,
			card: func(e *env) *x509.Certificate {
				return e.pki.card(e.t, []string{"ldap://ldap.moica.example/cn=CRL1"}, []string{e.ocspURL()})
			},
			want: ErrUnknown,
			why:  "no HTTP CRL distribution point",
		},
		{
			name: "no OCSP responder named, mode ocsp: unknown",
			mode: ModeOCSP,
			card: func(e *env) *x509.Certificate { return e.pki.card(e.t, []string{e.crlURL()}, nil) },
			want: ErrUnknown,
			why:  "no HTTP OCSP responder",
		},
		{
			name: "issuer that is not a configured CA: unknown",
			mode: ModeOCSP,
			arrange: func(e *env, card *x509.Certificate) []string {
				e.srv.setResponder(respond(e.pki.ocspAnswer(e.t, card, e.pki.impostor, e.pki.impostorKey, answer{status: ocsp.Good, issuer: e.pki.impostor})))
				return nil
			},
			issuer: func(e *env) *x509.Certificate { return e.pki.impostor },
			want:   ErrUnknown,
			why:    "not a configured card CA",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			card := e.card()
			if tc.card != nil {
				card = tc.card(e)
			}
			var files []string
			if tc.arrange != nil {
				files = tc.arrange(e, card)
			}
			issuer := e.pki.ca
			if tc.issuer != nil {
				issuer = tc.issuer(e)
			}
			c := e.checker(e.config(tc.mode, files...))
			err := c.Check(context.Background(), card, issuer)
			wantStatus(t, err, tc.want)
			if err != nil && !strings.Contains(err.Error(), tc.why) {
				t.Errorf("Check = %v, which does not say %q", err, tc.why)
			}
			if why := e.srv.refused(); why != "" {
				t.Errorf("the responder refused the request: %s", why)
			}
			if t.Failed() {
				t.Logf("logs:\n%s", e.logs)
			}
		})
	}
}

func TestModeNoneChecksNothing(t *testing.T) {
	e := newEnv(t)
	card := e.card()
	e.srv.setResponder(respond(e.pki.ocspAnswer(t, card, e.pki.ca, e.pki.caKey, answer{status: ocsp.Revoked})))
	e.srv.setCRL("/crl/ca.crl", e.pki.crl(t, e.pki.ca, e.pki.caKey, crlSpec{revoked: []*x509.Certificate{card}}))
	c := e.checker(Config{Mode: ModeNone})
	if err := c.Check(context.Background(), card, e.pki.ca); err != nil {
		t.Fatalf("Check in mode none = %v, want nil", err)
	}
	if crls, ocsps := e.srv.calls(); crls+ocsps != 0 {
		t.Fatalf("mode none made %d CRL and %d OCSP requests, want none", crls, ocsps)
	}
	if ok, problems := c.Health(); !ok {
		t.Fatalf("Health in mode none = %v", problems)
	}
}

func TestOCSPCache(t *testing.T) {
	ctx := context.Background()
	t.Run("a good answer is kept until its nextUpdate", func(t *testing.T) {
		e := newEnv(t)
		card := e.card()
		e.srv.setResponder(func(*ocsp.Request) []byte {
			now := e.clock.Now()
			return e.pki.ocspAnswer(t, card, e.pki.responder, e.pki.responderKey, answer{status: ocsp.Good, thisUpdate: now, nextUpdate: now.Add(time.Hour)})
		})
		c := e.checker(e.config(ModeOCSP))
		for range 3 {
			wantStatus(t, c.Check(ctx, card, e.pki.ca), nil)
			e.clock.Advance(15 * time.Minute)
		}
		if _, n := e.srv.calls(); n != 1 {
			t.Fatalf("%d OCSP requests within the answer's nextUpdate, want 1", n)
		}
		e.clock.Advance(15 * time.Minute) // an hour after the answer: its nextUpdate
		wantStatus(t, c.Check(ctx, card, e.pki.ca), nil)
		if _, n := e.srv.calls(); n != 2 {
			t.Fatalf("%d OCSP requests once the answer's nextUpdate came, want 2", n)
		}
	})
	t.Run("an answer without nextUpdate is kept for the TTL", func(t *testing.T) {
		e := newEnv(t)
		card := e.card()
		e.srv.setResponder(func(*ocsp.Request) []byte {
			return e.pki.ocspAnswer(t, card, e.pki.ca, e.pki.caKey, answer{status: ocsp.Good, thisUpdate: e.clock.Now(), noNextUpdate: true})
		})
		cfg := e.config(ModeOCSP)
		cfg.OCSPTTL = 2 * time.Minute
		c := e.checker(cfg)
		wantStatus(t, c.Check(ctx, card, e.pki.ca), nil)
		e.clock.Advance(time.Minute)
		wantStatus(t, c.Check(ctx, card, e.pki.ca), nil)
		if _, n := e.srv.calls(); n != 1 {
			t.Fatalf("%d OCSP requests within the TTL, want 1", n)
		}
		e.clock.Advance(time.Minute)
		wantStatus(t, c.Check(ctx, card, e.pki.ca), nil)
		if _, n := e.srv.calls(); n != 2 {
			t.Fatalf("%d OCSP requests after the TTL, want 2", n)
		}
	})
	t.Run("a revoked answer is final", func(t *testing.T) {
		e := newEnv(t)
		card := e.card()
		e.srv.setResponder(respond(e.pki.ocspAnswer(t, card, e.pki.ca, e.pki.caKey, answer{status: ocsp.Revoked})))
		c := e.checker(e.config(ModeOCSP))
		wantStatus(t, c.Check(ctx, card, e.pki.ca), ErrRevoked)
		// Even a responder that now says good, long after, is not asked again.
		e.srv.setResponder(func(*ocsp.Request) []byte {
			now := e.clock.Now()
			return e.pki.ocspAnswer(t, card, e.pki.ca, e.pki.caKey, answer{status: ocsp.Good, thisUpdate: now, nextUpdate: now.Add(time.Hour)})
		})
		e.clock.Advance(48 * time.Hour)
		c.tick(ctx)
		wantStatus(t, c.Check(ctx, card, e.pki.ca), ErrRevoked)
		if _, n := e.srv.calls(); n != 1 {
			t.Fatalf("%d OCSP requests, want 1", n)
		}
	})
	t.Run("a certificate on hold is asked about again", func(t *testing.T) {
		e := newEnv(t)
		card := e.card()
		e.srv.setResponder(respond(e.pki.ocspAnswer(t, card, e.pki.ca, e.pki.caKey, answer{status: ocsp.Revoked, reason: ocsp.CertificateHold})))
		c := e.checker(e.config(ModeOCSP))
		if err := c.Check(ctx, card, e.pki.ca); !errors.Is(err, ErrRevoked) {
			t.Fatalf("Check of a card on hold = %v, want revoked", err)
		}
		e.srv.setResponder(func(*ocsp.Request) []byte {
			now := e.clock.Now()
			return e.pki.ocspAnswer(t, card, e.pki.ca, e.pki.caKey, answer{status: ocsp.Good, thisUpdate: now, nextUpdate: now.Add(time.Hour)})
		})
		e.clock.Advance(time.Hour) // the hold answer's nextUpdate
		wantStatus(t, c.Check(ctx, card, e.pki.ca), nil)
	})
	t.Run("failures are not cached", func(t *testing.T) {
		e := newEnv(t)
		card := e.card()
		e.srv.setResponder(respond(ocsp.TryLaterErrorResponse))
		c := e.checker(e.config(ModeOCSP))
		wantStatus(t, c.Check(ctx, card, e.pki.ca), ErrUnknown)
		e.srv.setResponder(respond(e.pki.ocspAnswer(t, card, e.pki.ca, e.pki.caKey, answer{status: ocsp.Good})))
		wantStatus(t, c.Check(ctx, card, e.pki.ca), nil)
	})
	t.Run("answers are per issuer and serial", func(t *testing.T) {
		e := newEnv(t)
		good, revoked := e.card(), e.card()
		e.srv.setResponder(func(req *ocsp.Request) []byte {
			status := ocsp.Good
			if req.SerialNumber.Cmp(revoked.SerialNumber) == 0 {
				status = ocsp.Revoked
			}
			return e.pki.ocspAnswer(t, good, e.pki.ca, e.pki.caKey, answer{status: status, serial: req.SerialNumber})
		})
		c := e.checker(e.config(ModeOCSP))
		wantStatus(t, c.Check(ctx, good, e.pki.ca), nil)
		wantStatus(t, c.Check(ctx, revoked, e.pki.ca), ErrRevoked)
		wantStatus(t, c.Check(ctx, good, e.pki.ca), nil)
	})
}

func TestCRLFileReplaced(t *testing.T) {
	ctx := context.Background()
	for _, how := range []string{"next refresh", "Reload"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t)
			card := e.card()
			file := e.writeFile("ca.crl", e.pki.crl(t, e.pki.ca, e.pki.caKey, crlSpec{number: 1}), "X509 CRL")
			c := e.checker(e.config(ModeCRL, file))
			wantStatus(t, c.Check(ctx, card, e.pki.ca), nil)

			e.clock.Advance(time.Minute)
			e.writeFile("ca.crl", e.pki.crl(t, e.pki.ca, e.pki.caKey, crlSpec{number: 2, thisUpdate: e.clock.Now(), revoked: []*x509.Certificate{card}}), "X509 CRL")
			// Until the refresh, the CRL in memory decides.
			wantStatus(t, c.Check(ctx, card, e.pki.ca), nil)
			if how == "Reload" {
				if err := c.Reload(ctx); err != nil {
					t.Fatal(err)
				}
			} else {
				c.tick(ctx)
			}
			wantStatus(t, c.Check(ctx, card, e.pki.ca), ErrRevoked)
		})
	}
}

func TestCRLURLReplaced(t *testing.T) {
	ctx := context.Background()
	for _, how := range []string{"next refresh", "Reload"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t)
			card := e.card()
			e.srv.setCRL("/crl/ca.crl", e.pki.crl(t, e.pki.ca, e.pki.caKey, crlSpec{number: 1}))
			c := e.checker(e.config(ModeCRL))
			wantStatus(t, c.Check(ctx, card, e.pki.ca), nil)
			wantStatus(t, c.Check(ctx, card, e.pki.ca), nil)
			if n, _ := e.srv.calls(); n != 1 {
				t.Fatalf("%d CRL downloads for two logins, want 1", n)
			}

			e.srv.setCRL("/crl/ca.crl", e.pki.crl(t, e.pki.ca, e.pki.caKey, crlSpec{number: 2, thisUpdate: base, revoked: []*x509.Certificate{card}}))
			c.tick(ctx) // not due yet: nothing fetched
			wantStatus(t, c.Check(ctx, card, e.pki.ca), nil)
			if how == "Reload" {
				if err := c.Reload(ctx); err != nil {
					t.Fatal(err)
				}
			} else {
				e.clock.Advance(time.Hour) // the refresh interval
				c.tick(ctx)
			}
			wantStatus(t, c.Check(ctx, card, e.pki.ca), ErrRevoked)
		})
	}
}

func TestCRLRefreshedBeforeNextUpdate(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	card := e.card()
	// Valid for 10 hours, so 80% of it (8 hours) comes long before a 24-hour interval.
	e.srv.setCRL("/crl/ca.crl", e.pki.crl(t, e.pki.ca, e.pki.caKey, crlSpec{thisUpdate: base, nextUpdate: base.Add(10 * time.Hour)}))
	cfg := e.config(ModeCRL)
	cfg.RefreshInterval = 24 * time.Hour
	c := e.checker(cfg)
	wantStatus(t, c.Check(ctx, card, e.pki.ca), nil)
	e.srv.setCRL("/crl/ca.crl", e.pki.crl(t, e.pki.ca, e.pki.caKey, crlSpec{number: 2, thisUpdate: base.Add(7 * time.Hour), nextUpdate: base.Add(17 * time.Hour)}))
	e.clock.Advance(7*time.Hour + 59*time.Minute)
	c.tick(ctx)
	if n, _ := e.srv.calls(); n != 1 {
		t.Fatalf("%d CRL downloads before 80%% of its validity, want 1", n)
	}
	e.clock.Advance(time.Minute)
	c.tick(ctx)
	if n, _ := e.srv.calls(); n != 2 {
		t.Fatalf("%d CRL downloads at 80%% of its validity, want 2", n)
	}
	e.clock.Advance(3 * time.Hour) // past the first CRL's nextUpdate, within the second's
	wantStatus(t, c.Check(ctx, card, e.pki.ca), nil)
}

func TestRunRefreshesInTheBackground(t *testing.T) {
	e := newEnv(t)
	card := e.card()
	file := e.writeFile("ca.crl", e.pki.crl(t, e.pki.ca, e.pki.caKey, crlSpec{number: 1}), "")
	cfg := e.config(ModeCRL, file)
	cfg.TickInterval = 10 * time.Millisecond
	c := e.checker(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		c.Run(ctx)
		close(done)
	}()
	defer func() {
		cancel()
		<-done
	}()
	wantStatus(t, c.Check(ctx, card, e.pki.ca), nil)
	e.writeFile("ca.crl", e.pki.crl(t, e.pki.ca, e.pki.caKey, crlSpec{number: 2, revoked: []*x509.Certificate{card}}), "")
	deadline := time.Now().Add(5 * time.Second)
	for !errors.Is(c.Check(ctx, card, e.pki.ca), ErrRevoked) {
		if time.Now().After(deadline) {
			t.Fatal("Run did not pick up the replaced CRL file within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCRLDistributionPointsAreAlternatives(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	card := e.pki.card(t, []string{e.crlURL(), e.down + "/crl/ca.crl"}, nil)
	e.srv.setCRL("/crl/ca.crl", e.pki.crl(t, e.pki.ca, e.pki.caKey, crlSpec{}))
	c := e.checker(e.config(ModeCRL))
	wantStatus(t, c.Check(ctx, card, e.pki.ca), nil)
	// The first point gave a usable CRL, so the second, which is down, was not tried.
	if ok, problems := c.Health(); !ok {
		t.Fatalf("Health = %v", problems)
	}
}

func TestOnDemandLoadsAreSpaced(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	card := e.card()
	e.srv.failCRLs(503)
	c := e.checker(e.config(ModeCRL))
	for range 3 {
		wantStatus(t, c.Check(ctx, card, e.pki.ca), ErrUnknown)
	}
	if n, _ := e.srv.calls(); n != 1 {
		t.Fatalf("%d CRL downloads for three logins within %s, want 1", n, onDemandRetry)
	}
	e.srv.failCRLs(0)
	e.srv.setCRL("/crl/ca.crl", e.pki.crl(t, e.pki.ca, e.pki.caKey, crlSpec{}))
	e.clock.Advance(onDemandRetry)
	wantStatus(t, c.Check(ctx, card, e.pki.ca), nil)
}

func TestAbandonedLoadDoesNotCountAsAFailure(t *testing.T) {
	e := newEnv(t)
	card := e.card()
	e.srv.setCRL("/crl/ca.crl", e.pki.crl(t, e.pki.ca, e.pki.caKey, crlSpec{}))
	hold := make(chan struct{})
	e.srv.holdCRLs(hold)
	c := e.checker(e.config(ModeCRL))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	wantStatus(t, c.Check(ctx, card, e.pki.ca), ErrUnknown)
	close(hold)
	e.srv.holdCRLs(nil)
	// At the same instant: the login that gave up must not hold the next one back.
	wantStatus(t, c.Check(context.Background(), card, e.pki.ca), nil)
}

func TestConcurrentLoginsShareOneDownload(t *testing.T) {
	e := newEnv(t)
	card := e.card()
	e.srv.setCRL("/crl/ca.crl", e.pki.crl(t, e.pki.ca, e.pki.caKey, crlSpec{}))
	hold := make(chan struct{})
	e.srv.holdCRLs(hold)
	c := e.checker(e.config(ModeCRL))
	errs := make(chan error, 20)
	for range cap(errs) {
		go func() { errs <- c.Check(context.Background(), card, e.pki.ca) }()
	}
	// Hold the first download until the other logins have had time to queue behind it.
	for n := 0; n == 0; n, _ = e.srv.calls() {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(hold)
	for range cap(errs) {
		wantStatus(t, <-errs, nil)
	}
	if n, _ := e.srv.calls(); n != 1 {
		t.Fatalf("%d CRL downloads for %d concurrent logins, want 1", n, cap(errs))
	}
}

func TestFailedRefreshKeepsTheLastGoodCRL(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	card := e.card()
	e.srv.setCRL("/crl/ca.crl", e.pki.crl(t, e.pki.ca, e.pki.caKey, crlSpec{revoked: []*x509.Certificate{card}}))
	c := e.checker(e.config(ModeCRL))
	wantStatus(t, c.Check(ctx, card, e.pki.ca), ErrRevoked)

	e.srv.failCRLs(503)
	e.clock.Advance(2 * time.Hour)
	if err := c.Reload(ctx); err == nil {
		t.Fatal("Reload against a failing CRL server succeeded")
	}
	if !strings.Contains(e.logs.String(), "CRL refresh failed") {
		t.Errorf("the failed refresh was not logged:\n%s", e.logs)
	}
	wantStatus(t, c.Check(ctx, card, e.pki.ca), ErrRevoked)
	if ok, problems := c.Health(); !ok {
		t.Fatalf("Health with a fresh CRL = %v", problems)
	}

	// A day after its thisUpdate the kept CRL is stale, and the server still fails.
	e.clock.Advance(22 * time.Hour)
	wantStatus(t, c.Check(ctx, card, e.pki.ca), ErrUnknown)
	ok, problems := c.Health()
	if ok || len(problems) != 1 || !strings.Contains(problems[0], "stale") || !strings.Contains(problems[0], "503") {
		t.Fatalf("Health with a stale CRL = %v %q, want one problem saying stale and why", ok, problems)
	}
}

func TestOlderCRLDoesNotReplaceNewer(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	card := e.card()
	older := e.pki.crl(t, e.pki.ca, e.pki.caKey, crlSpec{number: 1, thisUpdate: base.Add(-2 * time.Hour)})
	e.srv.setCRL("/crl/ca.crl", e.pki.crl(t, e.pki.ca, e.pki.caKey, crlSpec{number: 2, revoked: []*x509.Certificate{card}}))
	c := e.checker(e.config(ModeCRL))
	wantStatus(t, c.Check(ctx, card, e.pki.ca), ErrRevoked)
	e.srv.setCRL("/crl/ca.crl", older) // replayed: still within its validity
	if err := c.Reload(ctx); err == nil || !strings.Contains(err.Error(), "older") {
		t.Fatalf("Reload of an older CRL = %v, want it refused as older", err)
	}
	wantStatus(t, c.Check(ctx, card, e.pki.ca), ErrRevoked)
}

func TestHealthAndMetrics(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	card := e.card()
	file := e.writeFile("ca.crl", e.pki.crl(t, e.pki.ca, e.pki.caKey, crlSpec{}), "")
	e.srv.setResponder(respond(ocsp.TryLaterErrorResponse))
	c := e.checker(e.config(ModeOCSPThenCRL, file))
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.Collectors()...)

	wantStatus(t, c.Check(ctx, card, e.pki.ca), nil) // by the CRL, after tryLater
	e.srv.setResponder(respond(e.pki.ocspAnswer(t, card, e.pki.ca, e.pki.caKey, answer{status: ocsp.Good})))
	wantStatus(t, c.Check(ctx, card, e.pki.ca), nil)
	other := e.card()
	e.srv.setResponder(respond(e.pki.ocspAnswer(t, other, e.pki.ca, e.pki.caKey, answer{status: ocsp.Unknown})))
	wantStatus(t, c.Check(ctx, other, e.pki.ca), nil) // by the CRL, after unknown
	if ok, problems := c.Health(); !ok {
		t.Fatalf("Health = %v", problems)
	}
	got := gather(t, reg)
	for name, want := range map[string]float64{
		`mcert_revocation_crl_age_seconds{ca="` + e.pki.ca.Subject.String() + `",source="` + file + `"}`:         3600,
		`mcert_revocation_crl_next_update_seconds{ca="` + e.pki.ca.Subject.String() + `",source="` + file + `"}`: 23 * 3600,
		`mcert_revocation_ocsp_queries_total{outcome="error"}`:                                                   1,
		`mcert_revocation_ocsp_queries_total{outcome="good"}`:                                                    1,
		`mcert_revocation_ocsp_queries_total{outcome="revoked"}`:                                                 0,
		`mcert_revocation_ocsp_queries_total{outcome="unknown"}`:                                                 1,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}

	e.clock.Advance(24 * time.Hour)
	ok, problems := c.Health()
	if ok || len(problems) != 1 || !strings.Contains(problems[0], file) {
		t.Fatalf("Health with a stale CRL = %v %q, want one problem naming %s", ok, problems, file)
	}
	if v := gather(t, reg)[`mcert_revocation_crl_next_update_seconds{ca="`+e.pki.ca.Subject.String()+`",source="`+file+`"}`]; v != -3600 {
		t.Errorf("seconds until nextUpdate of the stale CRL = %v, want -3600", v)
	}
}

// gather reads reg's metrics as name{labels} → value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			v := m.GetGauge().GetValue()
			if m.Counter != nil {
				v = m.GetCounter().GetValue()
			}
			out[f.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	return out
}

func TestNewRefusesABadCRLFile(t *testing.T) {
	e := newEnv(t)
	for name, file := range map[string]string{
		"missing":              e.dir + "/missing.crl",
		"not a CRL":            e.writeFile("junk.crl", []byte("not a CRL"), ""),
		"a certificate in PEM": e.writeFile("cert.pem", e.pki.ca.Raw, "CERTIFICATE"),
		"another CA's CRL":     e.writeFile("impostor.crl", e.pki.crl(t, e.pki.impostor, e.pki.impostorKey, crlSpec{}), ""),
	} {
		if _, err := New(e.config(ModeCRL, file)); err == nil {
			t.Errorf("New with a CRL file that is %s succeeded", name)
		}
	}
}

func TestParseMode(t *testing.T) {
	tests := []struct {
		in   string
		want Mode
		ok   bool
	}{
		{"ocsp,crl", ModeOCSPThenCRL, true},
		{" OCSP, CRL ", ModeOCSPThenCRL, true},
		{"crl", ModeCRL, true},
		{"ocsp", ModeOCSP, true},
		{"none", ModeNone, true},
		{"crl,ocsp", "", false},
		{"", "", false},
		{"off", "", false},
	}
	for _, tc := range tests {
		got, err := ParseMode(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseMode(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), `"ocsp,crl", "crl", "ocsp", "none"`) {
			t.Errorf("ParseMode(%q) error %q does not list the choices", tc.in, err)
		}
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	e := newEnv(t)
	card := e.card()
	err := Config{
		Mode:        ModeOCSP,
		CAs:         []CA{{Certificate: card}, {}, {Certificate: e.pki.ca, CRLFiles: []string{"a.crl"}}},
		OCSPTimeout: -time.Second,
	}.Validate()
	if err == nil {
		t.Fatal("Validate accepted a bad configuration")
	}
	for _, want := range []string{"not a CA certificate", "has no certificate", "reads no CRL", "OCSP timeout is negative"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %q, which does not say %q", err, want)
		}
	}
	if err := (Config{Mode: "sometimes"}).Validate(); err == nil || !strings.Contains(err.Error(), "not one of") {
		t.Errorf("Validate of an unknown mode = %v", err)
	}
	if err := (Config{Mode: ModeCRL}).Validate(); err == nil {
		t.Error("Validate accepted mode crl without CAs")
	}
}
