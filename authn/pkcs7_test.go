package authn

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/smallstep/pkcs7"

	"github.com/mcert/mcert"
)

const testOrigin = "http://localhost:8080"

// moicaCard makes a card shaped like a MOICA one from ca: RSA-2048, the holder's name in CN,
// no serialNumber, and the last four digits of the ID in the Subject Directory Attributes
// (or in MOICA's own extension, when ownExtension).
func moicaCard(t testing.TB, ca *DevCA, name, lastFour string, ownExtension bool) *Card {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := MOICALastFourExtension(lastFour)
	if err != nil {
		t.Fatal(err)
	}
	if ownExtension {
		value, _ := asn1.MarshalWithParams(lastFour, "printable")
		ext = pkix.Extension{Id: oidMOICALastFourExtension, Value: value}
	}
	template := &x509.Certificate{
		Subject:         pkix.Name{CommonName: name, Country: []string{"TW"}},
		NotBefore:       testNow,
		NotAfter:        testNow.AddDate(5, 0, 0),
		KeyUsage:        x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		ExtraExtensions: []pkix.Extension{ext},
	}
	certPEM, err := createCertificate(template, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return &Card{Certificate: cert, Key: key}
}

func signedData(t testing.TB, content []byte, build func(sd *pkcs7.SignedData)) []byte {
	t.Helper()
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		t.Fatal(err)
	}
	build(sd)
	der, err := sd.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestVerifyPKCS7(t *testing.T) {
	ca, foreign := newTestCA(t), newTestCA(t)
	v := newVerifier(t, ca)
	tbs := []byte(CardLoginTBS(testOrigin, "Y2hhbGxlbmdl"))
	whole := issueCard(t, ca, "A123456789", IssueOptions{Now: testNow, RSA: true})
	moica := moicaCard(t, ca, "王小明", "6789", false)
	moicaOwn := moicaCard(t, ca, "王小明", "6789", true)
	sign := func(c *Card, content []byte) []byte {
		der, err := c.SignPKCS7(content)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	detached := signedData(t, tbs, func(sd *pkcs7.SignedData) {
		sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
		if err := sd.AddSigner(moica.Certificate, moica.Key, pkcs7.SignerInfoConfig{}); err != nil {
			t.Fatal(err)
		}
		sd.Detach()
	})
	sha1 := signedData(t, tbs, func(sd *pkcs7.SignedData) {
		sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA1)
		if err := sd.AddSigner(moica.Certificate, moica.Key, pkcs7.SignerInfoConfig{}); err != nil {
			t.Fatal(err)
		}
	})
	twoSigners := signedData(t, tbs, func(sd *pkcs7.SignedData) {
		sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
		for _, c := range []*Card{moica, whole} {
			if err := sd.AddSigner(c.Certificate, c.Key, pkcs7.SignerInfoConfig{}); err != nil {
				t.Fatal(err)
			}
		}
	})
	tampered := sign(moica, tbs)
	tampered[len(tampered)-10] ^= 0xff // inside the signature, which is last

	tests := []struct {
		name     string
		der      []byte
		wantID   string
		wantLast string
		wantCode string
	}{
		{name: "whole ID, attached", der: sign(whole, tbs), wantID: "A123456789"},
		{name: "MOICA, attached", der: sign(moica, tbs), wantLast: "6789"},
		{name: "MOICA's own extension", der: sign(moicaOwn, tbs), wantLast: "6789"},
		{name: "detached", der: detached, wantLast: "6789"},
		{name: "signed for another site", der: sign(moica, []byte(CardLoginTBS("https://evil.example", "Y2hhbGxlbmdl"))), wantCode: "bad_signature"},
		{name: "another challenge", der: sign(moica, []byte(CardLoginTBS(testOrigin, "b3RoZXI"))), wantCode: "bad_signature"},
		{name: "tampered signature", der: tampered, wantCode: "bad_signature"},
		{name: "foreign CA", der: sign(moicaCard(t, foreign, "王小明", "6789", false), tbs), wantCode: "card_untrusted"},
		{name: "SHA-1", der: sha1, wantCode: "bad_pkcs7"},
		{name: "two signers", der: twoSigners, wantCode: "bad_pkcs7"},
		{name: "garbage", der: []byte("not DER at all"), wantCode: "bad_pkcs7"},
		{name: "empty", der: []byte{}, wantCode: "bad_pkcs7"},
		{name: "truncated", der: sign(moica, tbs)[:200], wantCode: "bad_pkcs7"},
		{name: "a certificate, not a SignedData", der: moica.Certificate.Raw, wantCode: "bad_pkcs7"},
		{name: "too large", der: make([]byte, 40<<10), wantCode: "bad_pkcs7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.VerifyPKCS7(context.Background(), tc.der, tbs, testNow)
			if tc.wantCode != "" {
				var e *mcert.Error
				if !errors.As(err, &e) || e.Code != tc.wantCode {
					t.Fatalf("VerifyPKCS7: %v, want %s", err, tc.wantCode)
				}
				return
			}
			if err != nil || c.ID != tc.wantID || c.LastFour != tc.wantLast || c.Name != "王小明" || c.Issuer == nil {
				t.Fatalf("VerifyPKCS7 = %+v, %v; want ID %q, last four %q", c, err, tc.wantID, tc.wantLast)
			}
		})
	}
}

// TestOpenSSLSignedData checks that a SignedData made by OpenSSL, a standard producer and not
// our own code, is accepted: attached, detached, and with a MOICA-shaped certificate.
func TestOpenSSLSignedData(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed")
	}
	ca := newTestCA(t)
	v := newVerifier(t, ca)
	card := moicaCard(t, ca, "王小明", "6789", false)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(card.Key)
	if err != nil {
		t.Fatal(err)
	}
	certPath := write("card.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: card.Certificate.Raw}))
	keyPath := write("key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	tbs := []byte(CardLoginTBS(testOrigin, "Y2hhbGxlbmdl"))
	tbsPath := write("tbs.txt", tbs)
	for _, tc := range []struct{ name, flags, wantCode string }{
		{"attached", "-nodetach", ""},
		{"detached", "", ""},
		{"without the signer's certificate", "-nocerts", "bad_pkcs7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, tc.name+".der")
			args := []string{"cms", "-sign", "-binary", "-md", "sha256", "-signer", certPath, "-inkey", keyPath, "-in", tbsPath, "-outform", "DER", "-out", out}
			if tc.flags != "" {
				args = append(args, tc.flags)
			}
			if msg, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
				t.Fatalf("openssl cms -sign: %v: %s", err, msg)
			}
			der, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			c, err := v.VerifyPKCS7(context.Background(), der, tbs, testNow)
			if tc.wantCode != "" {
				var e *mcert.Error
				if !errors.As(err, &e) || e.Code != tc.wantCode {
					t.Fatalf("OpenSSL's SignedData: %v, want %s", err, tc.wantCode)
				}
				return
			}
			if err != nil || c.LastFour != "6789" {
				t.Fatalf("OpenSSL's SignedData: %+v, %v", c, err)
			}
			if _, err := v.VerifyPKCS7(context.Background(), der, []byte(CardLoginTBS("https://evil.example", "Y2hhbGxlbmdl")), testNow); err == nil {
				t.Fatal("OpenSSL's SignedData verified for another text")
			}
		})
	}
}

func TestMOICALastFour(t *testing.T) {
	ca := newTestCA(t)
	card := moicaCard(t, ca, "王小明", "6789", false)
	if got, err := moicaLastFour(card.Certificate); err != nil || got != "6789" {
		t.Fatalf("moicaLastFour = %q, %v", got, err)
	}
	bad := func(ext pkix.Extension, extra ...pkix.Extension) *x509.Certificate {
		return &x509.Certificate{Extensions: append([]pkix.Extension{ext}, extra...)}
	}
	sda := func(values ...string) pkix.Extension {
		var raw []asn1.RawValue
		for _, v := range values {
			b, _ := asn1.MarshalWithParams(v, "printable")
			raw = append(raw, asn1.RawValue{FullBytes: b})
		}
		der, _ := asn1.Marshal([]directoryAttribute{{Type: oidMOICALastFour, Values: raw}})
		return pkix.Extension{Id: oidSubjectDirectoryAttributes, Value: der}
	}
	own := func(v string) pkix.Extension {
		b, _ := asn1.MarshalWithParams(v, "printable")
		return pkix.Extension{Id: oidMOICALastFourExtension, Value: b}
	}
	for _, tc := range []struct {
		name string
		cert *x509.Certificate
	}{
		{"three digits", bad(sda("678"))},
		{"letters", bad(sda("67a9"))},
		{"two values", bad(sda("6789", "1234"))},
		{"disagreeing extensions", bad(sda("6789"), own("1234"))},
		{"malformed attributes", bad(pkix.Extension{Id: oidSubjectDirectoryAttributes, Value: []byte{0x30, 0x05, 0x01}})},
		{"an integer", bad(pkix.Extension{Id: oidMOICALastFourExtension, Value: []byte{0x02, 0x01, 0x05}})},
	} {
		if got, err := moicaLastFour(tc.cert); err == nil || errors.Is(err, errNoLastFour) {
			t.Errorf("%s: moicaLastFour = %q, %v; want an error", tc.name, got, err)
		}
	}
	if _, err := moicaLastFour(&x509.Certificate{}); !errors.Is(err, errNoLastFour) {
		t.Errorf("no extension: %v, want errNoLastFour", err)
	}
}

// FuzzVerifyPKCS7 feeds the verifier any bytes as a SignedData: it must refuse with a
// citizen's error, never panic, and accept only a signature over the text.
func FuzzVerifyPKCS7(f *testing.F) {
	ca := newTestCA(f)
	v := newVerifier(f, ca)
	tbs := []byte(CardLoginTBS(testOrigin, "Y2hhbGxlbmdl"))
	for _, c := range []*Card{moicaCard(f, ca, "王小明", "6789", false), issueCard(f, ca, "A123456789", IssueOptions{Now: testNow})} {
		der, err := c.SignPKCS7(tbs)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
		f.Add(der[:len(der)/2])
	}
	f.Add([]byte{0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02})
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := v.VerifyPKCS7(context.Background(), der, tbs, testNow)
		if err != nil {
			if kind := mcert.ErrorKind(err); kind != mcert.Invalid && kind != mcert.Unauthorized {
				t.Fatalf("VerifyPKCS7 error %v is %s, want invalid or unauthorized", err, kind)
			}
			return
		}
		if c.ID == "" && c.LastFour == "" {
			t.Fatalf("accepted a SignedData naming nobody: %+v", c)
		}
	})
}
