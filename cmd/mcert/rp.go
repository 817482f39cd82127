package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/mcert/mcert/provider"
	"github.com/mcert/mcert/storage/bolt"
)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runRPAdd(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	dataDir := fs.String("data", "./data", "data directory of the stopped server")
	var spec provider.ClientSpec
	var redirects, logouts listFlag
	fs.StringVar(&spec.Name, "name", "", "the relying party's name, shown to citizens on the login page and the phone (required)")
	fs.Var(&redirects, "redirect-uri", "a redirect URI (repeat for more); https, or http on localhost")
	fs.Var(&logouts, "post-logout-redirect-uri", "a URI to return to after logout (repeat for more)")
	fs.BoolVar(&spec.Public, "public", false, "a public client (native or browser app): no secret, PKCE required")
	fs.BoolVar(&spec.CitizenID, "citizen-id", false, "may receive the citizen_id claim (the full national ID)")
	fs.BoolVar(&spec.CIBA, "ciba", false, "may start decoupled (push) logins by national ID")
	fs.StringVar(&spec.IDTokenAlg, "id-token-alg", "", "id_token_signed_response_alg: RS256 (the default) or ES256")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	spec.RedirectURIs, spec.PostLogoutRedirectURIs = redirects, logouts
	store, err := bolt.Open(filepath.Join(*dataDir, "mcert.db"), bolt.Options{})
	if err != nil {
		return fmt.Errorf("%w (while the server runs, register through its admin API: POST /api/v1/admin/clients)", err)
	}
	defer store.Close()
	out, err := provider.RegisterClient(ctx, store, spec, time.Now())
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
