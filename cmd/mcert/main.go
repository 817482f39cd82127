// Command mcert is the one binary: the server, the development card tools and the reference
// phone app (PROTOCOL.md section 8).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand: it parses its own flags from args.
type command struct {
	summary string
	// run defines its flags on fs, parses args with parseFlags, and does the work.
	run func(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error
}

var commands = map[string]command{
	"serve":            {"run the server", runServe},
	"card issue":       {"issue a development citizen card from the development CA", runCardIssue},
	"card agent":       {"run the card agent that signs for the pages (127.0.0.1:61161)", runCardAgent},
	"phone bind":       {"bind this software phone by QR code (PNG file or text)", runPhoneBind},
	"phone show":       {"list the credentials in the phone's key file", runPhoneShow},
	"phone login":      {"approve a website's login by its QR code (PNG file or text)", runPhoneLogin},
	"phone sign":       {"approve a website's signing request by its QR code (PNG file or text)", runPhoneSign},
	"phone inbox":      {"list the login requests waiting for this phone", runPhoneInbox},
	"phone approve":    {"approve a waiting login request (--token, or the only one)", runPhoneApprove},
	"phone deny":       {"refuse a waiting login request (--token, or the only one)", runPhoneDeny},
	"pki csr":          {"print a certificate request for the signing CA's key, for the operator's own root to certify", runPKICSR},
	"pki install":      {"install the CA certificate the operator's root issued, with its chain", runPKIInstall},
	"rp add":           {"register a relying party (with a bbolt store, while the server is stopped; the admin API does it live)", runRPAdd},
	"rp list":          {"list the relying parties (with a bbolt store, while the server is stopped; the admin API does it live)", runRPList},
	"rp edit":          {"change a relying party's name, redirect URIs, claims or CIBA (with a bbolt store, while the server is stopped; the admin API does it live)", runRPEdit},
	"rp disable":       {"refuse a relying party and its access tokens until it is enabled, (with a bbolt store, while the server is stopped; the admin API does it live)", runRPDisabled(true)},
	"rp enable":        {"enable a disabled relying party again (with a bbolt store, while the server is stopped; the admin API does it live)", runRPDisabled(false)},
	"rp delete":        {"delete a relying party and its access tokens (with a bbolt store, while the server is stopped; the admin API does it live)", runRPDelete},
	"rp rotate-secret": {"give a relying party a new secret, printed once, (with a bbolt store, while the server is stopped; the admin API does it live)", runRPRotateSecret},
	"qr show":          {"draw a QR code (PNG file or text) in the terminal, for a real phone's camera", runQRShow},
	"store copy":       {"copy every record of a stopped server's store into an empty one (bbolt to PostgreSQL, say), then verify the copy by counts and by reading every record back", runStoreCopy},
	"backup":           {"copy a running server's data file through its admin API; checked before it is written to --out", runBackup},
	"restore":          {"put a backup in place of the data file while the server is stopped (the old file is kept)", runRestore},
	"verify":           {"check a signature with the mobile certificate against mcert's CA, the certificate's OCSP status at signing time and, with --evidence, the phone's approval", runVerify},
}

// errUsage marks a usage error: exit status 2. The flag package has already said what is wrong.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr, "") // a command is required: bad usage (PROTOCOL.md section 8)
		return 2
	}
	name, rest := lookup(args)
	cmd, ok := commands[name]
	if !ok {
		group := ""
		if len(args) > 0 && isGroup(args[0]) {
			group, args = args[0], args[1:]
		}
		if len(args) > 0 && args[0] != "-h" && args[0] != "--help" && args[0] != "help" {
			fmt.Fprintf(stderr, "mcert: unknown command %q\n\n", strings.TrimSpace(group+" "+strings.Join(args, " ")))
			usage(stderr, group)
			return 2
		}
		if group != "" && len(args) == 0 {
			usage(stderr, group) // "mcert card" alone is a usage error
			return 2
		}
		usage(stdout, group)
		return 0
	}
	err := cmd.run(ctx, newFlags(name, cmd.summary, stderr), rest, stdout)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(stderr, "mcert %s: %v\n", name, err)
	return 1
}

// lookup finds the longest command name that args start with.
func lookup(args []string) (string, []string) {
	for n := min(2, len(args)); n > 0; n-- {
		name := strings.Join(args[:n], " ")
		if _, ok := commands[name]; ok {
			return name, args[n:]
		}
	}
	return "", args
}

// isGroup reports whether word starts multi-word commands, such as "card" or "phone".
func isGroup(word string) bool {
	for n := range commands {
		if strings.HasPrefix(n, word+" ") {
			return true
		}
	}
	return false
}

// usage lists the commands, or only those of a group such as "card".
func usage(w io.Writer, group string) {
	fmt.Fprintln(w, "mcert: mobile citizen-certificate authentication server\n\nUsage: mcert <command> [flags]   (mcert <command> --help for its flags)\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		if group == "" || strings.HasPrefix(n, group+" ") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	width := 0
	for _, n := range names {
		width = max(width, len(n))
	}
	for _, n := range names {
		fmt.Fprintf(w, "  %-*s %s\n", width, n, commands[n].summary)
	}
}

// parseFlags parses args, then fills every flag not given on the command line from its
// MCERT_* environment variable (--public-url from MCERT_PUBLIC_URL).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := "MCERT_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok && !given[f.Name] && err == nil {
			if e := fs.Set(f.Name, v); e != nil {
				fmt.Fprintf(fs.Output(), "bad value in %s: %v\n", env, e)
				err = errUsage
			}
		}
	})
	return err
}

// newFlags makes a flag set whose --help names the command and its environment variables.
func newFlags(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("mcert "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: mcert %s [flags]\n\n%s.\n\nFlags (each may also come from MCERT_<FLAG>, e.g. MCERT_DATA):\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}
