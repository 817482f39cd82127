package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mcert/mcert/binding"
	"github.com/mcert/mcert/provider"
)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// storeFlags adds --data and --store to fs, for a command on the store; it returns how to read
// them once parsed.
func storeFlags(fs *flag.FlagSet) func() (storeSpec, error) {
	dataDir := fs.String("data", "./data", "data directory of the server (with a bbolt store, of the stopped server)")
	store := fs.String("store", "", storeFlagHelp)
	return func() (storeSpec, error) { return parseStoreSpec(*store, *dataDir) }
}

// openClients opens the relying parties of the store. A server holds its bbolt data file while
// it runs: then live says how its admin API does the same. With existing, a bbolt store must be
// there already: a missing data file is a mistyped --data, not a server to create one for.
func openClients(ctx context.Context, spec storeSpec, live string, existing bool) (provider.Clients, func(), error) {
	if _, err := os.Stat(spec.boltPath); existing && spec.boltPath != "" && errors.Is(err, os.ErrNotExist) {
		return provider.Clients{}, nil, fmt.Errorf("there is no data file %s; give the server's data directory with --data", spec.boltPath)
	}
	store, err := spec.open(ctx)
	if err != nil && spec.boltPath != "" {
		err = fmt.Errorf("%w (while the server runs, %s)", err, live)
	}
	if err != nil {
		return provider.Clients{}, nil, err
	}
	// The service records the operator's changes in the audit log, as the admin API does.
	return provider.Clients{Service: &binding.Service{Store: store, Now: time.Now}}, func() { store.Close() }, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func runRPAdd(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	where := storeFlags(fs)
	var spec provider.ClientSpec
	var redirects, logouts listFlag
	fs.StringVar(&spec.Name, "name", "", "the relying party's name, shown to citizens on the login page and the phone (required)")
	fs.Var(&redirects, "redirect-uri", "a redirect URI (repeat for more); https, or http on localhost")
	fs.Var(&logouts, "post-logout-redirect-uri", "a URI to return to after logout (repeat for more)")
	fs.BoolVar(&spec.Public, "public", false, "a public client (native or browser app): no secret, PKCE required")
	fs.BoolVar(&spec.CitizenID, "citizen-id", false, "may receive the citizen_id claim (the full national ID)")
	fs.BoolVar(&spec.CIBA, "ciba", false, "may start decoupled (push) logins by national ID")
	fs.BoolVar(&spec.Sign, "sign", false, "may ask citizens to sign documents with their mobile certificate")
	fs.StringVar(&spec.CIBAPing, "ciba-ping", "", "with --ciba: CIBA ping mode, notifying this endpoint (https, or http on localhost) when the citizen answers")
	fs.StringVar(&spec.IDTokenAlg, "id-token-alg", "", "id_token_signed_response_alg: RS256 (the default) or ES256")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	spec.RedirectURIs, spec.PostLogoutRedirectURIs = redirects, logouts
	store, err := where()
	if err != nil {
		return usageError(fs, err.Error())
	}
	clients, done, err := openClients(ctx, store, "register through its admin API: POST /api/v1/admin/clients", false)
	if err != nil {
		return err
	}
	defer done()
	out, err := clients.Register(ctx, spec)
	if err != nil {
		return err
	}
	return printJSON(stdout, out)
}

func runRPList(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	where := storeFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	store, err := where()
	if err != nil {
		return usageError(fs, err.Error())
	}
	clients, done, err := openClients(ctx, store, "list them through its admin API: GET /api/v1/admin/clients", true)
	if err != nil {
		return err
	}
	defer done()
	list, err := clients.List(ctx)
	if err != nil {
		return err
	}
	return printJSON(stdout, map[string]any{"clients": list})
}

// clientCommand defines the flags of a command on one relying party and runs do with it once
// they are parsed.
func clientCommand(ctx context.Context, fs *flag.FlagSet, args []string, live string, do func(provider.Clients, string) error) error {
	where := storeFlags(fs)
	id := fs.String("client-id", "", "the relying party's client_id, as mcert rp list shows it (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *id == "" {
		fmt.Fprintln(fs.Output(), "--client-id is required")
		fs.Usage()
		return errUsage
	}
	store, err := where()
	if err != nil {
		return usageError(fs, err.Error())
	}
	clients, done, err := openClients(ctx, store, live, true)
	if err != nil {
		return err
	}
	defer done()
	return do(clients, *id)
}

func runRPEdit(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	var redirects, logouts listFlag
	name := fs.String("name", "", "the relying party's new name")
	fs.Var(&redirects, "redirect-uri", "a redirect URI: the ones given replace them all (repeat for more; --redirect-uri '' for none, for a CIBA-only client)")
	fs.Var(&logouts, "post-logout-redirect-uri", "a URI to return to after logout: the ones given replace them all (--post-logout-redirect-uri '' for none)")
	citizenID := fs.Bool("citizen-id", false, "whether it may receive the citizen_id claim: --citizen-id or --citizen-id=false")
	ciba := fs.Bool("ciba", false, "whether it may start decoupled (push) logins: --ciba or --ciba=false")
	sign := fs.Bool("sign", false, "whether it may ask citizens to sign: --sign or --sign=false")
	alg := fs.String("id-token-alg", "", "id_token_signed_response_alg: RS256 or ES256")
	return clientCommand(ctx, fs, args, "use its admin API: PATCH /api/v1/admin/clients/<id>", func(clients provider.Clients, id string) error {
		var ch provider.ClientChange
		changed := false
		fs.Visit(func(f *flag.Flag) {
			changed = changed || f.Name != "data" && f.Name != "store" && f.Name != "client-id"
			switch f.Name {
			case "name":
				ch.Name = name
			case "redirect-uri":
				ch.RedirectURIs = new([]string(slices.DeleteFunc(redirects, isEmpty)))
			case "post-logout-redirect-uri":
				ch.PostLogoutRedirectURIs = new([]string(slices.DeleteFunc(logouts, isEmpty)))
			case "citizen-id":
				ch.CitizenID = citizenID
			case "ciba":
				ch.CIBA = ciba
			case "sign":
				ch.Sign = sign
			case "id-token-alg":
				ch.IDTokenAlg = alg
			}
		})
		if !changed {
			fmt.Fprintln(fs.Output(), "give what to change: --name, --redirect-uri, --post-logout-redirect-uri, --citizen-id, --ciba, --sign or --id-token-alg")
			fs.Usage()
			return errUsage
		}
		info, err := clients.Edit(ctx, id, ch)
		if err != nil {
			return err
		}
		return printJSON(stdout, info)
	})
}

func isEmpty(s string) bool { return s == "" }

// runRPDisabled is rp disable (disabled true) and rp enable.
func runRPDisabled(disabled bool) func(context.Context, *flag.FlagSet, []string, io.Writer) error {
	return func(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
		return clientCommand(ctx, fs, args, fmt.Sprintf(`use its admin API: PATCH /api/v1/admin/clients/<id> {"disabled": %t}`, disabled), func(clients provider.Clients, id string) error {
			info, err := clients.Edit(ctx, id, provider.ClientChange{Disabled: &disabled})
			if err != nil {
				return err
			}
			return printJSON(stdout, info)
		})
	}
}

func runRPDelete(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	return clientCommand(ctx, fs, args, "use its admin API: DELETE /api/v1/admin/clients/<id>", func(clients provider.Clients, id string) error {
		info, err := clients.Delete(ctx, id)
		if err != nil {
			return err
		}
		return printJSON(stdout, info)
	})
}

func runRPRotateSecret(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	return clientCommand(ctx, fs, args, "use its admin API: POST /api/v1/admin/clients/<id>/secret", func(clients provider.Clients, id string) error {
		out, err := clients.RotateSecret(ctx, id)
		if err != nil {
			return err
		}
		return printJSON(stdout, out)
	})
}
