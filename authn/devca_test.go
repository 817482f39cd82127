package authn

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLoadOrCreateDevCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ca, created, err := LoadOrCreateDevCA(dir, testNow)
	if err != nil || !created {
		t.Fatalf("LoadOrCreateDevCA on an empty dir = %v, created %v; want a new CA", err, created)
	}
	cert := ca.cert
	if cert.Subject.CommonName != "mcert development card CA (not for production)" || !cert.IsCA ||
		!cert.NotAfter.Equal(testNow.AddDate(10, 0, 0)) || cert.SerialNumber.BitLen() > 128 {
		t.Errorf("CA certificate %s, CA %v, until %s, serial %s", cert.Subject, cert.IsCA, cert.NotAfter, cert.SerialNumber)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, filepath.Join(dir, devCAKeyFile): 0o600} {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode() != want {
			t.Errorf("%s has mode %s, want %s", path, info.Mode(), want)
		}
	}

	again, created, err := LoadOrCreateDevCA(dir, testNow.AddDate(1, 0, 0))
	if err != nil || created {
		t.Fatalf("reloading the CA = %v, created %v; want the existing CA", err, created)
	}
	if !bytes.Equal(again.CertPEM(), ca.CertPEM()) {
		t.Error("reloading gave another CA")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("the data dir holds %d files, want the certificate and the key only", len(entries))
	}

	if _, _, err := LoadOrCreateDevCA(dir, testNow.AddDate(10, 0, 1)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("loading an expired CA: %v, want an error saying it expired", err)
	}
}

func TestLoadOrCreateDevCAConcurrently(t *testing.T) {
	for round := range 5 {
		dir := t.TempDir()
		const n = 8
		cas := make([]*DevCA, n)
		created := make([]bool, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				var err error
				cas[i], created[i], err = LoadOrCreateDevCA(dir, testNow)
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		creators := 0
		for i := range n {
			if created[i] {
				creators++
			}
			if !bytes.Equal(cas[i].CertPEM(), cas[0].CertPEM()) {
				t.Fatalf("round %d: process %d ended with another CA than process 0", round, i)
			}
		}
		if creators != 1 {
			t.Errorf("round %d: %d processes say they created the CA, want 1", round, creators)
		}
	}
}

func TestLoadOrCreateDevCAHalfCreated(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := LoadOrCreateDevCA(dir, testNow)
	if err != nil {
		t.Fatal(err)
	}
	certPath := filepath.Join(dir, devCACertFile)
	// A process that died between publishing the key and the certificate leaves the key alone.
	if err := os.Remove(certPath); err != nil {
		t.Fatal(err)
	}
	again, created, err := LoadOrCreateDevCA(dir, testNow)
	if err != nil || !created {
		t.Fatalf("LoadOrCreateDevCA with only the key = %v, created %v; want a certificate for that key", err, created)
	}
	if !again.cert.PublicKey.(*ecdsa.PublicKey).Equal(ca.cert.PublicKey) {
		t.Error("the new certificate is not for the key that was left")
	}

	if err := os.Remove(filepath.Join(dir, devCAKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateDevCA(dir, testNow); err == nil || !strings.Contains(err.Error(), "without its key") {
		t.Errorf("LoadOrCreateDevCA with only the certificate = %v, want an error saying the key is missing", err)
	}
	if _, err := os.Stat(certPath); err != nil {
		t.Errorf("the certificate without its key was touched: %v", err)
	}
}

func TestDevCAIssue(t *testing.T) {
	ca := newTestCA(t)
	v := newVerifier(t, ca)
	challenge := []byte("challenge")
	tests := []struct {
		name     string
		cardName string
		id       string
		opts     IssueOptions
		wantErr  string // a part of the message; "" for success
	}{
		{name: "ECDSA", cardName: "王小明", id: "A123456789", opts: IssueOptions{Now: testNow}},
		{name: "RSA", cardName: "Wang Hsiao-ming", id: "B222222228", opts: IssueOptions{Now: testNow, RSA: true}},
		{name: "short validity", cardName: "王小明", id: "A123456789", opts: IssueOptions{Now: testNow, Validity: time.Hour}},
		{name: "64 runes", cardName: strings.Repeat("王", 64), id: "A123456789", opts: IssueOptions{Now: testNow}},
		{name: "invalid ID", cardName: "王小明", id: "A123456788", opts: IssueOptions{Now: testNow}, wantErr: "check digit"},
		{name: "empty name", cardName: " ", id: "A123456789", opts: IssueOptions{Now: testNow}, wantErr: "name"},
		{name: "65 runes", cardName: strings.Repeat("王", 65), id: "A123456789", opts: IssueOptions{Now: testNow}, wantErr: "name"},
		{name: "not UTF-8", cardName: "\xff", id: "A123456789", opts: IssueOptions{Now: testNow}, wantErr: "name"},
		{name: "no time", cardName: "王小明", id: "A123456789", wantErr: "Now"},
		{name: "negative validity", cardName: "王小明", id: "A123456789", opts: IssueOptions{Now: testNow, Validity: -time.Hour}, wantErr: "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pemBytes, err := ca.Issue(tc.cardName, tc.id, tc.opts)
			if !succeeded(t, err, tc.wantErr) {
				return
			}
			card := parseIssued(t, pemBytes, err)
			citizen, err := v.Verify(context.Background(), card.Certificate.Raw, challenge, sign(t, card, challenge), testNow)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if citizen.ID != tc.id || citizen.Name != tc.cardName {
				t.Errorf("Verify = %s %s, want %s %s", citizen.ID, citizen.Name, tc.id, tc.cardName)
			}
			validity := tc.opts.Validity
			if validity == 0 {
				validity = testNow.AddDate(5, 0, 0).Sub(testNow)
			}
			if got := card.Certificate.NotAfter.Sub(card.Certificate.NotBefore); got != validity {
				t.Errorf("card valid for %s, want %s", got, validity)
			}
			if card.Certificate.SerialNumber.BitLen() > 128 || card.Certificate.Subject.Country[0] != "TW" {
				t.Errorf("card serial %s, subject %s", card.Certificate.SerialNumber, card.Certificate.Subject)
			}
		})
	}

	late, err := ca.Issue("王小明", "A123456789", IssueOptions{Now: testNow.AddDate(8, 0, 0)})
	card := parseIssued(t, late, err)
	if !card.Certificate.NotAfter.Equal(ca.cert.NotAfter) {
		t.Errorf("a card issued 8 years into a 10-year CA ends %s, want the CA's end %s", card.Certificate.NotAfter, ca.cert.NotAfter)
	}
}
