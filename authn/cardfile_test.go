package authn

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestIssueMOICA(t *testing.T) {
	ca := newTestCA(t)
	v := newVerifier(t, ca)
	card := issueCard(t, ca, "A123456789", IssueOptions{Now: testNow, MOICA: true})
	cert := card.Certificate

	if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || pub.N.BitLen() != 2048 {
		t.Errorf("key %T, want RSA-2048", cert.PublicKey)
	}
	if got := cert.Subject.String(); got != "CN=王小明,C=TW" {
		t.Errorf("subject %q, want CN and C only", got)
	}
	if serials := serialNumbers(cert); len(serials) != 0 {
		t.Errorf("subject serialNumber %q, want none", serials)
	}
	if cert.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment || len(cert.ExtKeyUsage)+len(cert.UnknownExtKeyUsage) != 0 {
		t.Errorf("key usage %b, extended %v %v; want digitalSignature|nonRepudiation and none", cert.KeyUsage, cert.ExtKeyUsage, cert.UnknownExtKeyUsage)
	}
	if bytes.Contains(cert.Raw, []byte("A123456789")) || bytes.Contains(cert.Raw, []byte("A12345")) {
		t.Error("the certificate carries more of the ID than its last four digits")
	}
	if name, masked := CardHolder(cert); name != "王小明" || masked != "******6789" {
		t.Errorf("CardHolder = %s %s", name, masked)
	}

	challenge := []byte("challenge")
	citizen, err := v.Verify(context.Background(), cert.Raw, challenge, sign(t, card, challenge), testNow)
	if err != nil || citizen.ID != "" || citizen.LastFour != "6789" || citizen.Name != "王小明" {
		t.Fatalf("Verify = %+v, %v; want last four 6789 and no whole ID", citizen, err)
	}
	tbs := []byte(CardLoginTBS("http://localhost:8080", "Y2hhbGxlbmdl"))
	p7, err := card.SignPKCS7(tbs)
	if err != nil {
		t.Fatal(err)
	}
	if citizen, err := v.VerifyPKCS7(context.Background(), p7, tbs, testNow); err != nil || citizen.LastFour != "6789" {
		t.Fatalf("VerifyPKCS7 = %+v, %v", citizen, err)
	}

	// The CA takes the whole ID, check digit and all, though it writes only four digits.
	if _, err := ca.Issue("王小明", "A123456788", IssueOptions{Now: testNow, MOICA: true}); err == nil || !strings.Contains(err.Error(), "check digit") {
		t.Fatalf("a MOICA card for an ID with a bad check digit: %v", err)
	}
}

func TestCardPIN(t *testing.T) {
	ca := newTestCA(t)
	for _, opts := range []IssueOptions{{Now: testNow, PIN: "123456"}, {Now: testNow, PIN: "Ab12", MOICA: true}} {
		pemBytes, err := ca.Issue("王小明", "A123456789", opts)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(pemBytes, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----")) || bytes.Contains(pemBytes, []byte("-----BEGIN PRIVATE KEY-----")) {
			t.Fatalf("a card with a PIN keeps its key in clear:\n%s", pemBytes)
		}
		_, keyDER := splitEncryptedPEM(t, pemBytes)
		for _, oid := range []asn1.ObjectIdentifier{oidPBES2, oidPBKDF2, oidHMACWithSHA256, oidAES256CBC} {
			if der, _ := asn1.Marshal(oid); !bytes.Contains(keyDER, der) {
				t.Errorf("the encrypted key does not use %s (PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC)", oid)
			}
		}
		if _, err := ParseCard(pemBytes); !errors.Is(err, ErrPINRequired) {
			t.Fatalf("ParseCard of a card with a PIN: %v, want ErrPINRequired", err)
		}
		if _, err := ParseCardWithPIN(pemBytes, opts.PIN+"0"); !errors.Is(err, ErrWrongPIN) {
			t.Fatalf("a wrong PIN: %v, want ErrWrongPIN", err)
		}
		if _, err := ParseCardWithPIN(pemBytes, "12"); errors.Is(err, ErrWrongPIN) || err == nil {
			t.Fatalf("a malformed PIN: %v, want a PIN format error", err)
		}
		card, err := ParseCardWithPIN(pemBytes, opts.PIN)
		if err != nil {
			t.Fatalf("the right PIN: %v", err)
		}
		if err := verifyChallenge(card.Certificate.PublicKey, []byte("c"), sign(t, card, []byte("c"))); err != nil {
			t.Fatalf("the unlocked card signs badly: %v", err)
		}
		f, err := ReadCardFile(pemBytes)
		if err != nil || !f.HasPIN() || f.Key != nil {
			t.Fatalf("ReadCardFile = %+v, %v; want a locked card", f, err)
		}
	}

	clear, err := ca.Issue("王小明", "A123456789", IssueOptions{Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if card, err := ParseCardWithPIN(clear, "anything"); err != nil || card.Key == nil {
		t.Fatalf("ParseCardWithPIN of a card without a PIN: %v", err)
	}
	certPEM, _ := splitPEM(t, clear)
	notEncrypted := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{0x30, 0}})
	if _, err := ReadCardFile(append(certPEM, notEncrypted...)); err == nil || !strings.Contains(err.Error(), "not an encrypted PKCS#8 key") {
		t.Fatalf("a bad ENCRYPTED PRIVATE KEY block: %v", err)
	}
}

var (
	oidPBES2          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHMACWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidAES256CBC      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

// splitEncryptedPEM splits a card file with a PIN into its certificate and the DER of its key.
func splitEncryptedPEM(t *testing.T, card []byte) (certPEM, keyDER []byte) {
	t.Helper()
	for _, b := range pemBlocks(card) {
		switch b.Type {
		case "CERTIFICATE":
			certPEM = pem.EncodeToMemory(b)
		case "ENCRYPTED PRIVATE KEY":
			keyDER = b.Bytes
		}
	}
	if certPEM == nil || keyDER == nil {
		t.Fatalf("not a card file with a PIN:\n%s", card)
	}
	return certPEM, keyDER
}

func TestValidatePIN(t *testing.T) {
	tests := []struct {
		pin string
		ok  bool
	}{
		{"1234", true}, {"123456789012", true}, {"Ab3dE6", true},
		{"", false}, {"123", false}, {"1234567890123", false}, {"12 34", false},
		{"1234%", false}, {"１２３４", false}, {"12345\n", false},
	}
	for _, tc := range tests {
		err := ValidatePIN(tc.pin)
		if (err == nil) != tc.ok {
			t.Errorf("ValidatePIN(%q) = %v, want ok %v", tc.pin, err, tc.ok)
		}
		if err != nil && tc.pin != "" && strings.Contains(err.Error(), tc.pin) {
			t.Errorf("the error repeats the PIN: %v", err)
		}
	}
	if _, err := newTestCA(t).Issue("王小明", "A123456789", IssueOptions{Now: testNow, PIN: "12"}); err == nil || !strings.Contains(err.Error(), "4 to 12 letters or digits") {
		t.Fatalf("a card with a 2-digit PIN: %v", err)
	}
}

// TestCardPINOpenSSL checks the encrypted key with the real openssl binary both ways: OpenSSL
// reads a card mcert wrote, and mcert reads keys OpenSSL encrypted (PBKDF2 and scrypt).
func TestCardPINOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl is missing; install the openssl package")
		}
		t.Skip("openssl is not installed")
	}
	ca := newTestCA(t)
	dir := t.TempDir()
	for _, moica := range []bool{false, true} {
		pemBytes, err := ca.Issue("王小明", "A123456789", IssueOptions{Now: testNow, PIN: "123456", MOICA: moica})
		if err != nil {
			t.Fatal(err)
		}
		cardFile := filepath.Join(dir, "card.pem")
		if err := os.WriteFile(cardFile, pemBytes, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(openssl, "pkey", "-in", cardFile, "-passin", "pass:123456", "-pubout").CombinedOutput()
		if err != nil {
			t.Fatalf("openssl pkey with the PIN: %v\n%s", err, out)
		}
		block, _ := pem.Decode(out)
		card, err := ParseCardWithPIN(pemBytes, "123456")
		if err != nil || block == nil {
			t.Fatalf("%v; openssl printed %s", err, out)
		}
		want, _ := x509.MarshalPKIXPublicKey(card.Certificate.PublicKey)
		if !bytes.Equal(block.Bytes, want) {
			t.Fatal("openssl decrypted another key than the certificate's")
		}
		if out, err := exec.Command(openssl, "pkey", "-in", cardFile, "-passin", "pass:654321", "-noout").CombinedOutput(); err == nil {
			t.Fatalf("openssl opened the card with a wrong PIN:\n%s", out)
		}

		// A key OpenSSL encrypts, put back with the certificate, opens with the PIN.
		plain := filepath.Join(dir, "plain.pem")
		if out, err := exec.Command(openssl, "pkey", "-in", cardFile, "-passin", "pass:123456", "-out", plain).CombinedOutput(); err != nil {
			t.Fatalf("openssl pkey: %v\n%s", err, out)
		}
		certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: card.Certificate.Raw})
		for _, kdf := range [][]string{{"-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA256"}, {"-scrypt"}} {
			args := append([]string{"pkcs8", "-topk8", "-in", plain, "-passout", "pass:Ab12"}, kdf...)
			keyPEM, err := exec.Command(openssl, args...).Output()
			if err != nil {
				t.Fatalf("openssl %v: %v", args, err)
			}
			if _, err := ParseCardWithPIN(append(certPEM, keyPEM...), "Ab12"); err != nil {
				t.Fatalf("a key from openssl %v: %v", kdf, err)
			}
			if _, err := ParseCardWithPIN(append(certPEM, keyPEM...), "Ab13"); !errors.Is(err, ErrWrongPIN) {
				t.Fatalf("a key from openssl %v with a wrong PIN: %v, want ErrWrongPIN", kdf, err)
			}
		}
	}
}
