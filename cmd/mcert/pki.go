package main

import (
	"context"

	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/mcert/mcert/binding"
	"github.com/mcert/mcert/seal"
)

// The operator's own root may certify mcert's signing CA: mcert pki csr prints a request for
// the CA's key, the root issues a CA certificate for it, and mcert pki install puts that
// certificate and its chain in the store, in place of the self-signed one.

// pkiFlags are where the CA is: the store and the key file that seals it.
type pkiFlags struct {
	where     func() (storeSpec, error)
	dataDir   string
	keyFile   string
	publicURL string
}

func (f *pkiFlags) define(fs *flag.FlagSet) {
	f.where = storeFlags(fs)
	fs.StringVar(&f.keyFile, "key-file", "", "the key file the store's secrets are sealed with (default <data>/mcert.key)")
	fs.StringVar(&f.publicURL, "public-url", "", "the server's public URL, which names a CA made now (one the server made already keeps its name)")
}

// service opens the store, sealed with the key file, for the CA's use cases.
func (f *pkiFlags) service(ctx context.Context, fs *flag.FlagSet) (*binding.Service, func(), error) {
	spec, err := f.where()
	if err != nil {
		return nil, nil, usageError(fs, err.Error())
	}
	keyFile := f.keyFile
	if keyFile == "" {
		keyFile = filepath.Join(fs.Lookup("data").Value.String(), "mcert.key")
	}
	if _, err := os.Stat(keyFile); err != nil {
		return nil, nil, fmt.Errorf("the key file %s: %w; give the server's with --key-file", keyFile, err)
	}
	sealer, _, err := seal.LoadOrCreate(keyFile)
	if err != nil {
		return nil, nil, err
	}
	store, err := spec.open(ctx)
	if err != nil && spec.boltPath != "" {
		err = fmt.Errorf("%w (with a bbolt store, stop the server first)", err)
	}
	if err != nil {
		return nil, nil, err
	}
	svc := &binding.Service{Store: seal.Store(store, sealer), Now: time.Now, PublicURL: f.publicURL}
	return svc, func() { store.Close() }, nil
}

func runPKICSR(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	var f pkiFlags
	f.define(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	svc, done, err := f.service(ctx, fs)
	if err != nil {
		return err
	}
	defer done()
	csr, err := svc.CACSR(ctx)
	if err != nil {
		return err
	}
	_, err = stdout.Write(csr)
	return err
}

func runPKIInstall(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	var f pkiFlags
	f.define(fs)
	chainFile := fs.String("chain", "", "PEM: the CA certificate the operator's root issued for mcert pki csr's request, then its chain up to the root (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *chainFile == "" {
		return usageError(fs, "give the certificate chain with --chain")
	}
	chain, err := os.ReadFile(*chainFile)
	if err != nil {
		return err
	}
	svc, done, err := f.service(ctx, fs)
	if err != nil {
		return err
	}
	defer done()
	ca, err := svc.InstallCAChain(ctx, chain)
	if err != nil {
		return fmt.Errorf("%s: %w", *chainFile, err)
	}
	c := ca.Certificate()
	fmt.Fprintf(stdout, "installed the signing CA %q, issued by %q, valid until %s, with %d certificates in its chain; restart the servers to use it\n",
		c.Subject.CommonName, c.Issuer.CommonName, c.NotAfter.Format(time.DateOnly), len(ca.ChainDER()))
	return nil
}
