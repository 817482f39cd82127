package authn

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mcert/mcert"
)

var testNow = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)

func newTestCA(t testing.TB) *DevCA {
	t.Helper()
	ca, _, err := LoadOrCreateDevCA(t.TempDir(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func parseIssued(t testing.TB, pemBytes []byte, err error) *Card {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	card, err := ParseCard(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	return card
}

func issueCard(t testing.TB, ca *DevCA, id string, opts IssueOptions) *Card {
	t.Helper()
	pemBytes, err := ca.Issue("王小明", id, opts)
	return parseIssued(t, pemBytes, err)
}

func sign(t testing.TB, card *Card, challenge []byte) []byte {
	t.Helper()
	sig, err := card.Sign(challenge)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func newVerifier(t testing.TB, cas ...*DevCA) *CardVerifier {
	t.Helper()
	var bundle []byte
	for _, ca := range cas {
		bundle = append(bundle, ca.CertPEM()...)
	}
	v, err := NewCardVerifier(bundle, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCardVerifierVerify(t *testing.T) {
	ca, foreign := newTestCA(t), newTestCA(t)
	challenge := []byte("32 bytes of challenge from mcert")
	ecCard := issueCard(t, ca, "A123456789", IssueOptions{Now: testNow})
	rsaCard := issueCard(t, ca, "F131104093", IssueOptions{Now: testNow, RSA: true})
	otherCard := issueCard(t, ca, "A123456789", IssueOptions{Now: testNow})
	noIDPEM, err := ca.issue(pkix.Name{CommonName: "王小明", SerialNumber: "A123456788"}, nil, IssueOptions{Now: testNow})
	noIDCard := parseIssued(t, noIDPEM, err)
	twoIDs := pkix.Name{CommonName: "王小明", ExtraNames: []pkix.AttributeTypeAndValue{
		{Type: oidSerialNumber, Value: "A123456789"}, {Type: oidSerialNumber, Value: "F131104093"}}}
	twoIDsPEM, err := ca.issue(twoIDs, nil, IssueOptions{Now: testNow})
	twoIDsCard := parseIssued(t, twoIDsPEM, err)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weakPEM, err := ca.Issue("王小明", "A123456789", IssueOptions{Now: testNow, Key: weak})
	if err != nil {
		t.Fatal(err)
	}
	weakBlock, _ := pem.Decode(weakPEM)
	weakCard := &Card{Key: weak}
	if weakCard.Certificate, err = x509.ParseCertificate(weakBlock.Bytes); err != nil {
		t.Fatal(err)
	}
	tlsServer := issueCard(t, ca, "A123456789", IssueOptions{Now: testNow, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	clientAuth := issueCard(t, ca, "A123456789", IssueOptions{Now: testNow, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})

	plain := newVerifier(t, ca)

	tests := []struct {
		name      string
		verifier  *CardVerifier // plain when nil
		card      *Card
		certDER   []byte    // the card's certificate when nil
		signed    []byte    // challenge when nil
		signature []byte    // the card's signature over signed when nil
		at        time.Time // testNow when zero
		wantKind  mcert.Kind
		wantCode  string // success when ""
	}{
		{name: "ECDSA card", card: ecCard},
		{name: "RSA card", card: rsaCard},
		{name: "last second of validity", card: ecCard, at: ecCard.Certificate.NotAfter},
		{name: "restricted to client authentication", card: clientAuth},
		{name: "foreign CA", card: issueCard(t, foreign, "A123456789", IssueOptions{Now: testNow}),
			wantKind: mcert.Unauthorized, wantCode: "card_untrusted"},
		{name: "expired", card: ecCard, at: testNow.AddDate(5, 0, 1),
			wantKind: mcert.Unauthorized, wantCode: "card_expired"},
		{name: "not yet valid", card: issueCard(t, ca, "A123456789", IssueOptions{Now: testNow.Add(time.Hour)}),
			wantKind: mcert.Unauthorized, wantCode: "card_not_yet_valid"},
		{name: "no digitalSignature", card: issueCard(t, ca, "A123456789", IssueOptions{Now: testNow, KeyUsage: x509.KeyUsageKeyEncipherment}),
			wantKind: mcert.Unauthorized, wantCode: "card_key_usage"},
		{name: "the CA certificate as a card", card: ecCard, certDER: ca.cert.Raw,
			wantKind: mcert.Unauthorized, wantCode: "card_key_usage"},
		{name: "a TLS server's certificate from the card CA", card: tlsServer,
			wantKind: mcert.Unauthorized, wantCode: "card_key_usage"},
		{name: "RSA-1024", card: weakCard,
			wantKind: mcert.Unauthorized, wantCode: "card_key_type"},
		{name: "two serial numbers", card: twoIDsCard,
			wantKind: mcert.Unauthorized, wantCode: "card_no_citizen_id"},
		{name: "another card's signature", card: ecCard, signature: sign(t, otherCard, challenge),
			wantKind: mcert.Unauthorized, wantCode: "bad_signature"},
		{name: "garbage signature", card: rsaCard, signature: bytes.Repeat([]byte{0x30}, 256),
			wantKind: mcert.Unauthorized, wantCode: "bad_signature"},
		{name: "empty signature", card: ecCard, signature: []byte{},
			wantKind: mcert.Unauthorized, wantCode: "bad_signature"},
		{name: "signature over another challenge", card: ecCard, signed: []byte("an older challenge"),
			wantKind: mcert.Unauthorized, wantCode: "bad_signature"},
		{name: "RSA signature over another challenge", card: rsaCard, signed: []byte("an older challenge"),
			wantKind: mcert.Unauthorized, wantCode: "bad_signature"},
		{name: "serialNumber not a national ID", card: noIDCard,
			wantKind: mcert.Unauthorized, wantCode: "card_no_citizen_id"},
		{name: "garbage DER", card: ecCard, certDER: []byte("not a certificate"),
			wantKind: mcert.Invalid, wantCode: "bad_certificate"},
		{name: "empty DER", card: ecCard, certDER: []byte{},
			wantKind: mcert.Invalid, wantCode: "bad_certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := cmp.Or(tc.verifier, plain)
			certDER := tc.certDER
			if certDER == nil {
				certDER = tc.card.Certificate.Raw
			}
			signed := tc.signed
			if signed == nil {
				signed = challenge
			}
			signature := tc.signature
			if signature == nil {
				signature = sign(t, tc.card, signed)
			}
			citizen, err := v.Verify(context.Background(), certDER, challenge, signature, cmp.Or(tc.at, testNow))
			if tc.wantCode == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				subject := tc.card.Certificate.Subject
				if citizen.ID != subject.SerialNumber || citizen.Name != "王小明" || !citizen.Certificate.Equal(tc.card.Certificate) {
					t.Errorf("Verify = %+v, want the card's citizen %s", citizen, subject)
				}
				return
			}
			var e *mcert.Error
			if !errors.As(err, &e) || e.Kind != tc.wantKind || e.Code != tc.wantCode {
				t.Fatalf("Verify error = %v, want %s %s", err, tc.wantKind, tc.wantCode)
			}
		})
	}
}

func TestNewCardVerifier(t *testing.T) {
	ca, foreign := newTestCA(t), newTestCA(t)
	card := issueCard(t, ca, "A123456789", IssueOptions{Now: testNow})
	badBlock := []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	cardPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: card.Certificate.Raw})

	tests := []struct {
		name    string
		bundle  []byte
		wantErr string // a part of the message; "" for success
	}{
		{name: "one CA", bundle: ca.CertPEM()},
		{name: "two CAs", bundle: append(ca.CertPEM(), foreign.CertPEM()...)},
		{name: "empty bundle", bundle: nil, wantErr: "no PEM CERTIFICATE"},
		{name: "not PEM", bundle: []byte("hello"), wantErr: "no PEM CERTIFICATE"},
		{name: "bad first block", bundle: badBlock, wantErr: "block 1 is not a valid certificate"},
		{name: "bad second block", bundle: append(ca.CertPEM(), badBlock...), wantErr: "block 2 is not a valid certificate"},
		{name: "key in bundle", bundle: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), wantErr: `block 1 is a "PRIVATE KEY"`},
		{name: "card in bundle", bundle: cardPEM, wantErr: "not a CA certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewCardVerifier(tc.bundle, nil)
			succeeded(t, err, tc.wantErr)
		})
	}
}

func TestParseCard(t *testing.T) {
	ca := newTestCA(t)
	ecPEM, err := ca.Issue("王小明", "A123456789", IssueOptions{Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM, err := ca.Issue("王小明", "A123456789", IssueOptions{Now: testNow, RSA: true})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := splitPEM(t, ecPEM)
	rsaCertPEM, rsaKeyPEM := splitPEM(t, rsaPEM)

	tests := []struct {
		name    string
		pem     []byte
		wantErr string // a part of the message; "" for success
	}{
		{name: "ECDSA", pem: ecPEM},
		{name: "RSA", pem: rsaPEM},
		{name: "key first", pem: append(keyPEM, certPEM...)},
		{name: "text around blocks", pem: []byte("card of 王小明\n" + string(certPEM) + "\nkey:\n" + string(keyPEM))},
		{name: "empty", pem: nil, wantErr: "no CERTIFICATE block"},
		{name: "certificate only", pem: certPEM, wantErr: "no PRIVATE KEY block"},
		{name: "key only", pem: keyPEM, wantErr: "no CERTIFICATE block"},
		{name: "another card's key", pem: append(certPEM, rsaKeyPEM...), wantErr: "does not belong to the certificate"},
		{name: "two certificates", pem: append(append(certPEM, rsaCertPEM...), keyPEM...), wantErr: "more than one CERTIFICATE"},
		{name: "SEC 1 key", pem: append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}})...), wantErr: "openssl pkcs8"},
		{name: "bad key", pem: append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})...), wantErr: "not a valid PKCS#8 key"},
		{name: "bad certificate", pem: append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), keyPEM...), wantErr: "not a valid certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			card, err := ParseCard(tc.pem)
			if succeeded(t, err, tc.wantErr) {
				if err := verifyChallenge(card.Certificate.PublicKey, []byte("c"), sign(t, card, []byte("c"))); err != nil {
					t.Fatalf("the parsed card signs badly: %v", err)
				}
			}
		})
	}
}

// succeeded fails t unless err is nil when wantErr is "" and otherwise an error saying wantErr,
// and tells whether there is a result to check.
func succeeded(t *testing.T, err error, wantErr string) bool {
	t.Helper()
	if wantErr == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return true
	}
	if err == nil || !strings.Contains(err.Error(), wantErr) {
		t.Fatalf("error = %v, want one saying %q", err, wantErr)
	}
	return false
}

// splitPEM splits a card file into its certificate and key blocks.
func splitPEM(t *testing.T, card []byte) (certPEM, keyPEM []byte) {
	t.Helper()
	i := bytes.Index(card, []byte("-----BEGIN PRIVATE KEY-----"))
	if i < 0 {
		t.Fatalf("no private key in %s", card)
	}
	return card[:i:i], card[i:]
}

func FuzzCardVerify(f *testing.F) {
	ca := newTestCA(f)
	v := newVerifier(f, ca)
	challenge := []byte("fuzz challenge")
	for _, opts := range []IssueOptions{{Now: testNow}, {Now: testNow, RSA: true}} {
		card := issueCard(f, ca, "A123456789", opts)
		sig := sign(f, card, challenge)
		f.Add(card.Certificate.Raw, sig)
		f.Add(card.Certificate.Raw, sig[:len(sig)-1])
		f.Add(card.Certificate.Raw[:len(card.Certificate.Raw)/2], sig)
	}
	f.Add(ca.cert.Raw, []byte{})
	f.Add([]byte{}, []byte{})
	f.Add([]byte{0x30, 0x82, 0xff, 0xff}, []byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, certDER, signature []byte) {
		citizen, err := v.Verify(context.Background(), certDER, challenge, signature, testNow)
		if err != nil {
			if kind := mcert.ErrorKind(err); kind != mcert.Invalid && kind != mcert.Unauthorized {
				t.Fatalf("Verify error %v is %s, want invalid or unauthorized", err, kind)
			}
			return
		}
		if err := citizen.Certificate.CheckSignatureFrom(ca.cert); err != nil {
			t.Fatalf("Verify accepted a certificate the CA did not sign: %v", err)
		}
		if err := verifyChallenge(citizen.Certificate.PublicKey, challenge, signature); err != nil {
			t.Fatalf("Verify accepted a bad signature: %v", err)
		}
	})
}
