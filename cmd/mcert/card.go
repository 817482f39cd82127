package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
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
	id := fs.String("id", "", "the citizen's national ID, e.g. A123456789 (required; a --moica card carries only its last four digits)")
	out := fs.String("out", "card.pem", "file to write the card (certificate and private key, PEM) to")
	rsa := fs.Bool("rsa", false, "issue an RSA-2048 card instead of ECDSA P-256")
	moica := fs.Bool("moica", false, "shape the card like a MOICA citizen card: RSA-2048, subject CN = --name and C = TW only, the last four digits of --id in the Subject Directory Attributes, key usage digitalSignature and nonRepudiation")
	pin := fs.String("pin", "", "the card's PIN, 4 to 12 letters or digits: the key is written encrypted under it (ENCRYPTED PRIVATE KEY, which openssl pkey -passin pass:PIN reads), and the card agent checks it")
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
	card, err := ca.Issue(*name, *id, authn.IssueOptions{Now: now, RSA: *rsa, MOICA: *moica, PIN: *pin})
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
	shape, protection := "development card", "without a PIN"
	if *moica {
		shape = fmt.Sprintf("MOICA-shaped development card (it carries only %s)", (*id)[len(*id)-4:])
	}
	if *pin != "" {
		protection = "protected by its PIN"
	}
	fmt.Fprintf(stdout, "issued a %s for %s (%s) to %s, valid 5 years, %s\n", shape, *name, authn.MaskCitizenID(*id), *out, protection)
	return nil
}

func runCardAgent(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	cardFile := fs.String("card", "card.pem", "the card: a PEM file with its CERTIFICATE and its PRIVATE KEY or ENCRYPTED PRIVATE KEY, from mcert card issue")
	origin := fs.String("origin", "http://localhost:8080", "the mcert server's origin (its --public-url): the agent signs for its pages only")
	addr := fs.String("addr", "127.0.0.1:61161", "loopback address to listen on (MOICA's card component listens on port 61161)")
	pin := fs.String("pin", "", "the card's PIN: it unlocks a card with a PIN for POST /sign (the popup checks the PIN each page sends); for a card without a PIN, the PIN the popup must be sent, without which it takes any")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// The agent logs to stderr, where the flag set writes.
	log := slog.New(slog.NewTextHandler(fs.Output(), nil))
	pemBytes, err := os.ReadFile(*cardFile)
	if err != nil {
		return fmt.Errorf("read the card: %w (issue one with: mcert card issue --name 王小明 --id A123456789)", err)
	}
	file, err := authn.ReadCardFile(pemBytes)
	if err != nil {
		return fmt.Errorf("%s: %w", *cardFile, err)
	}
	agent, err := web.NewCardAgent(web.CardAgentConfig{Origin: *origin, Card: file, PIN: *pin, Log: log})
	if errors.Is(err, authn.ErrWrongPIN) {
		return fmt.Errorf("--pin does not open the card in %s; give the PIN it was issued with", *cardFile)
	}
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
	srv := &http.Server{Handler: agent, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	name, maskedID := authn.CardHolder(file.Certificate)
	log.Info(fmt.Sprintf("card agent listening on http://%s, signing for %s only, with the card of %s (%s)", ln.Addr(), *origin, name, maskedID))
	switch {
	case file.HasPIN() && *pin == "":
		log.Info("the card has a PIN: the popup checks the PIN each page sends; POST /sign refuses until the agent is started with --pin")
	case !file.HasPIN() && *pin == "":
		log.Warn("the card has no PIN and --pin is not set: the popup takes any PIN it is sent; set --pin to check it")
	}
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
