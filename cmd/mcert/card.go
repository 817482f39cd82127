package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/web"
)

func runCardIssue(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	dataDir := fs.String("data", "./data", "data directory holding the development card CA (created if missing)")
	name := fs.String("name", "", "the citizen's name, e.g. 王小明 (required)")
	id := fs.String("id", "", "the citizen's national ID, e.g. A123456789 (required)")
	out := fs.String("out", "card.pem", "file to write the card (certificate and private key, PEM) to")
	rsa := fs.Bool("rsa", false, "issue an RSA-2048 card instead of ECDSA P-256")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" || *id == "" {
		fmt.Fprintln(fs.Output(), "--name and --id are required")
		fs.Usage()
		return errUsage
	}
	now := time.Now()
	ca, created, err := authn.LoadOrCreateDevCA(*dataDir, now)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(stdout, "created a development card CA in %s\n", *dataDir)
	}
	card, err := ca.Issue(*name, *id, authn.IssueOptions{Now: now, RSA: *rsa})
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s already exists; remove it or choose another --out", *out)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(card); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "issued a development card for %s (%s) to %s, valid 5 years\n", *name, authn.MaskCitizenID(*id), *out)
	return nil
}

func runCardAgent(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	cardFile := fs.String("card", "card.pem", "the card: a PEM file with CERTIFICATE and PRIVATE KEY")
	origin := fs.String("origin", "http://localhost:8080", "the server origin whose pages may ask for signatures")
	addr := fs.String("addr", "127.0.0.1:61161", "loopback address to listen on")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	pemBytes, err := os.ReadFile(*cardFile)
	if err != nil {
		return fmt.Errorf("read the card: %w (issue one with: mcert card issue --name 王小明 --id A123456789)", err)
	}
	card, err := authn.ParseCard(pemBytes)
	if err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		return fmt.Errorf("--addr %q must be a loopback address such as 127.0.0.1:61161: the card must not sign for the network", *addr)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another card agent running?)", *addr, err)
	}
	srv := &http.Server{Handler: web.CardAgent(card, *origin), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	fmt.Fprintf(stdout, "card agent for %s (%s) listening on http://%s, signing for %s\n",
		card.Certificate.Subject.CommonName, authn.MaskCitizenID(card.Certificate.Subject.SerialNumber), ln.Addr(), *origin)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
