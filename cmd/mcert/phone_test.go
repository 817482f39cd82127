package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/binding"
	"github.com/mcert/mcert/qr"
	"github.com/mcert/mcert/signing"
	"github.com/mcert/mcert/storage"
)

// TestPhoneInboxCommands answers decoupled logins with phone inbox, approve and deny, as a
// citizen would from a terminal.
func TestPhoneInboxCommands(t *testing.T) {
	s := startServer(t)
	e := registerAndShowQR(t, s, s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{}))
	keys := t.TempDir() + "/phone.json"
	t.Setenv("MCERT_KEYS", keys) // no --server: the phone asks the server it was bound to
	mcert := func(wantStatus int, args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if got := run(context.Background(), args, &stdout, &stderr); got != wantStatus {
			t.Fatalf("mcert %v: status %d, want %d\nstdout: %s\nstderr: %s", args, got, wantStatus, stdout.String(), stderr.String())
		}
		return stdout.String() + stderr.String()
	}
	rp := storage.Client{ID: "rp", Name: "戶政線上申辦", CIBA: true}
	push := func(message string) {
		t.Helper()
		if _, _, err := s.service.StartDecoupledLogin(context.Background(), rp, "A123456789", message, 0, nil, ""); err != nil {
			t.Fatal(err)
		}
	}

	mcert(0, "phone", "bind", "--text", e.binding["qr_text"].(string))
	if out := mcert(1, "phone", "approve"); !strings.Contains(out, "no request is waiting") {
		t.Errorf("approve with an empty inbox: %s", out)
	}
	push("轉帳 1000 元")
	if out := mcert(0, "phone", "inbox"); !strings.Contains(out, `"戶政線上申辦"  "轉帳 1000 元"  code `) {
		t.Errorf("inbox: %s", out)
	}
	if out := mcert(0, "phone", "approve"); !strings.Contains(out, `approved: login to "戶政線上申辦"`) {
		t.Errorf("approve: %s", out)
	}

	push("first")
	push("second")
	out := mcert(1, "phone", "deny")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "choose one with --token") {
		t.Fatalf("deny with two requests waiting: %s", out)
	}
	if out := mcert(0, "phone", "deny", "--token", strings.Fields(lines[1])[0]); out != "denied\n" {
		t.Errorf("deny --token: %s", out)
	}
	mcert(0, "phone", "deny") // the only one left
	if out := mcert(0, "phone", "inbox"); out != "no requests are waiting\n" {
		t.Errorf("inbox after answering every request: %s", out)
	}
	if out := mcert(1, "phone", "inbox", "--server", "http://localhost:1"); !strings.Contains(out, "this phone is bound to "+s.PublicURL+", not to http://localhost:1; leave out --server") {
		t.Errorf("inbox of a server the phone is not bound to: %s", out)
	}

	// Bound to two servers, the phone must be told which one to ask.
	other := startServer(t)
	e = registerAndShowQR(t, other, other.issueCard(t, "王小明", "A123456789", authn.IssueOptions{}))
	mcert(0, "phone", "bind", "--text", e.binding["qr_text"].(string))
	if out := mcert(1, "phone", "inbox"); !strings.Contains(out, "bound to 2 servers; choose one with --server: "+s.PublicURL+", "+other.PublicURL) {
		t.Errorf("inbox of a phone bound to two servers: %s", out)
	}
	mcert(0, "phone", "inbox", "--server", other.PublicURL+"/")
}

// TestPhoneSignCommands: mcert phone lists a signing request in its inbox, approves it, and
// signs one shown as a QR code.
func TestPhoneSignCommands(t *testing.T) {
	s := startServer(t)
	e := registerAndShowQR(t, s, s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{}))
	t.Setenv("MCERT_KEYS", t.TempDir()+"/phone.json")
	mcert := func(wantStatus int, args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if got := run(context.Background(), args, &stdout, &stderr); got != wantStatus {
			t.Fatalf("mcert %v: status %d, want %d\nstdout: %s\nstderr: %s", args, got, wantStatus, stdout.String(), stderr.String())
		}
		return stdout.String() + stderr.String()
	}
	mcert(0, "phone", "bind", "--text", e.binding["qr_text"].(string))
	rp := storage.Client{ID: "rp", Name: "地政事務所", Sign: true}
	digest := sha256.Sum256([]byte("契約"))
	docs := []signing.Document{{Name: "契約.pdf", Digest: digest[:]}}
	if _, err := s.service.StartSign(context.Background(), rp, binding.SignRequest{CitizenID: "A123456789", Text: "簽署契約", Format: "cms", Documents: docs}); err != nil {
		t.Fatal(err)
	}
	if out := mcert(0, "phone", "inbox"); !strings.Contains(out, `sign  "地政事務所"  "簽署契約"  契約.pdf`) {
		t.Fatalf("inbox: %s", out)
	}
	if out := mcert(0, "phone", "approve"); !strings.HasPrefix(out, `approved: signed for "地政事務所": "簽署契約"`) || !strings.Contains(out, "契約.pdf") {
		t.Fatalf("approve: %s", out)
	}
	started, err := s.service.StartSign(context.Background(), rp, binding.SignRequest{Text: "確認", Format: "raw", Documents: docs})
	if err != nil {
		t.Fatal(err)
	}
	if out := mcert(0, "phone", "sign", "--text", qr.SignText(s.PublicURL, started.QRToken)); !strings.HasPrefix(out, `approved: signed for "地政事務所": "確認"`) {
		t.Fatalf("sign: %s", out)
	}
	if out := mcert(1, "phone", "login", "--text", qr.SignText(s.PublicURL, started.QRToken)); !strings.Contains(out, "not login") {
		t.Fatalf("a signing QR code at phone login: %s", out)
	}
}
