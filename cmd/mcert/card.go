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
	"net/url"
	"os"
	"strings"
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

// defaultServer is where mcert serve is reached when nothing says otherwise.
const defaultServer = "http://localhost:8080"

// agentOrigin is the origin the agent signs for, from --server or --origin, else from
// MCERT_PUBLIC_URL, the variable mcert serve reads its public URL from, else the default
// server's; from says where it came from when no flag gave it.
func agentOrigin(server, origin string) (signFor, from string, err error) {
	env := os.Getenv("MCERT_PUBLIC_URL")
	switch {
	case server != "":
		var ok bool
		if signFor, ok = originOf(server); !ok {
			return "", "", fmt.Errorf("--server %q is not a URL such as http://localhost:8080", server)
		}
		if origin != "" && !strings.EqualFold(signFor, strings.TrimSuffix(origin, "/")) {
			return "", "", fmt.Errorf("--server %s and --origin %s disagree; give one of them", server, origin)
		}
		return signFor, "", nil
	case origin != "":
		return origin, "", nil
	case env != "":
		var ok bool
		if signFor, ok = originOf(env); !ok {
			return "", "", fmt.Errorf("MCERT_PUBLIC_URL %q is not a URL such as http://localhost:8080; give --server", env)
		}
		return signFor, "the server's MCERT_PUBLIC_URL", nil
	}
	return defaultServer, "the default: start the agent with --server <the server's public URL> to sign for another", nil
}

// originOf is the origin of the pages under the absolute URL raw.
func originOf(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", false
	}
	return u.Scheme + "://" + u.Host, true
}

func runCardAgent(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	cardFile := fs.String("card", "card.pem", "the card: a PEM file with its CERTIFICATE and its PRIVATE KEY or ENCRYPTED PRIVATE KEY, from mcert card issue")
	server := fs.String("server", "", "the mcert server's public URL (its --public-url): the agent signs for the pages of its origin only (default: $MCERT_PUBLIC_URL, as mcert serve reads it, else "+defaultServer+")")
	origin := fs.String("origin", "", "the origin of the mcert server's pages: --server without a path")
	addr := fs.String("addr", "127.0.0.1:61161", "loopback address to listen on (MOICA's card component listens on port 61161; elsewhere, start mcert serve with --card-agent-url to match)")
	pin := fs.String("pin", "", "the card's PIN: it unlocks a card with a PIN for POST /sign (the popup checks the PIN each page sends); for a card without a PIN, the PIN the popup must be sent, without which it takes any")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	signFor, from, err := agentOrigin(*server, *origin)
	if err != nil {
		fmt.Fprintln(fs.Output(), err)
		fs.Usage()
		return errUsage
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
	agent, err := web.NewCardAgent(web.CardAgentConfig{Origin: signFor, Card: file, PIN: *pin, Log: log})
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
	log.Info(fmt.Sprintf("card agent listening on http://%s, signing for %s only, with the card of %s (%s)", ln.Addr(), signFor, name, maskedID))
	if from != "" {
		log.Info(fmt.Sprintf("the agent signs for %s, %s", signFor, from))
	}
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
