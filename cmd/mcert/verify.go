package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/mcert/mcert/pki"
	"github.com/mcert/mcert/signing"
)

// verifyTimeout bounds each request to the server or the OCSP responder: a verifier that waits
// for ever says nothing.
const verifyTimeout = 10 * time.Second

// maxVerifyDownload bounds what is read of ca.pem and of an OCSP answer; both are a few KB.
const maxVerifyDownload = 1 << 20

func runVerify(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	file := fs.String("file", "", "the signed document (required)")
	cmsPath := fs.String("cms", "", "the detached CMS signature, DER")
	sigPath := fs.String("signature", "", "the raw ECDSA signature, DER (with --certificate and --evidence)")
	certPath := fs.String("certificate", "", "the signer's certificate of a raw signature, DER")
	evidencePath := fs.String("evidence", "", "the evidence of the phone's approval, as mcert gave it")
	caPath := fs.String("ca", "", "mcert's CA, PEM (the server's /pki/ca.pem)")
	server := fs.String("server", "", "the mcert server's URL, to fetch its CA from /pki/ca.pem")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *file == "":
		return usageError(fs, "--file is required")
	case (*cmsPath == "") == (*sigPath == "" && *certPath == ""):
		return usageError(fs, "give --cms, or --signature with --certificate")
	case *cmsPath == "" && (*sigPath == "" || *certPath == ""):
		return usageError(fs, "a raw signature needs both --signature and --certificate")
	case *cmsPath == "" && *evidencePath == "":
		return usageError(fs, "a raw signature carries no signing time: give --evidence, whose signing time it is")
	case *caPath == "" && *server == "":
		return usageError(fs, "give mcert's CA with --ca, or the server to fetch it from with --server")
	case *caPath != "" && *server != "":
		return usageError(fs, "give --ca or --server, not both")
	}

	content, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	digest := sha256.Sum256(content)
	roots, err := loadRoots(ctx, *caPath, *server)
	if err != nil {
		return err
	}
	var evidence *signing.Evidence
	if *evidencePath != "" {
		b, err := os.ReadFile(*evidencePath)
		if err != nil {
			return err
		}
		e, err := signing.ParseEvidence(b)
		if err != nil {
			return err
		}
		evidence = &e
	}

	var v pki.Verified
	kind := "CMS"
	if *cmsPath != "" {
		sig, err := os.ReadFile(*cmsPath)
		if err != nil {
			return err
		}
		if v, err = pki.VerifyCMS(sig, content, roots); err != nil {
			return err
		}
	} else {
		kind = "raw"
		sig, err := os.ReadFile(*sigPath)
		if err != nil {
			return err
		}
		cert, err := os.ReadFile(*certPath)
		if err != nil {
			return err
		}
		if v, err = pki.VerifyRaw(sig, content, cert, roots, evidence.SignedAt); err != nil {
			return err
		}
	}
	// The chain ends at one of ca.pem's certificates, all taken as roots: the next one up is
	// always the issuer, which signs the OCSP answers.
	if len(v.Chain) < 2 {
		return fmt.Errorf("the signer's certificate of %q is itself a CA of --ca, not a citizen's", v.Cert.Subject)
	}
	issuer := v.Chain[1]

	// The approval is checked before the network is asked: it needs none.
	if evidence != nil {
		if err := evidence.Verify(digest[:], v.Cert); err != nil {
			return fmt.Errorf("the evidence does not show the phone's approval of this signature: %w", err)
		}
		if d := evidence.SignedAt.Sub(v.SigningTime).Abs(); d > time.Second {
			return fmt.Errorf("the evidence's signing time (%s) is not the signature's (%s)", stampUTC(evidence.SignedAt), stampUTC(v.SigningTime))
		}
	}
	revocation, err := checkRevocation(ctx, v.Cert, issuer, v.SigningTime)
	if err != nil {
		return err
	}

	fmt.Fprintf(stdout, "valid %s signature of %s (SHA-256 %x)\n", kind, *file, digest)
	fmt.Fprintf(stdout, "signer: %s, %s\n", v.Cert.Subject.CommonName, v.Cert.Subject.SerialNumber)
	fmt.Fprintf(stdout, "certificate serial number: %x, issued by %s\n", v.Cert.SerialNumber, issuer.Subject.CommonName)
	fmt.Fprintf(stdout, "signing time: %s\n", stampUTC(v.SigningTime))
	fmt.Fprintln(stdout, revocation)
	if evidence != nil {
		fmt.Fprintf(stdout, "approved on the phone %s for %s (request %s): %q\n", evidence.DeviceID, evidence.Request.ClientID, evidence.Request.ID, evidence.Request.Text)
	}
	return nil
}

// loadRoots is mcert's CA, every certificate of its ca.pem, from the file or the server.
func loadRoots(ctx context.Context, path, server string) (*x509.CertPool, error) {
	var data []byte
	var from string
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		data, from = b, path
	} else {
		from = strings.TrimRight(server, "/") + "/pki/ca.pem"
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, from, nil)
		if err != nil {
			return nil, fmt.Errorf("--server: %w", err)
		}
		if data, err = fetch(req); err != nil {
			return nil, fmt.Errorf("fetching mcert's CA: %w", err)
		}
	}
	roots := x509.NewCertPool()
	n := 0
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d of %s: %w", n+1, from, err)
		}
		roots.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", from)
	}
	return roots, nil
}

// checkRevocation asks cert's OCSP responder whether a signature made at the given time
// counts, and says what it answered.
func checkRevocation(ctx context.Context, cert, issuer *x509.Certificate, at time.Time) (string, error) {
	if len(cert.OCSPServer) == 0 {
		return "", errors.New("the signer's certificate names no OCSP responder, so its revocation cannot be checked")
	}
	responder := cert.OCSPServer[0]
	reqDER, err := ocsp.CreateRequest(cert, issuer, &ocsp.RequestOptions{Hash: crypto.SHA256})
	if err != nil {
		return "", fmt.Errorf("OCSP request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, responder, bytes.NewReader(reqDER))
	if err != nil {
		return "", fmt.Errorf("the certificate's OCSP responder %q: %w", responder, err)
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	answer, err := fetch(req)
	if err != nil {
		return "", fmt.Errorf("the certificate's revocation could not be checked: its OCSP responder: %w", err)
	}
	resp, err := pki.CheckOCSP(answer, cert, issuer, at)
	if err != nil {
		return "", err
	}
	if resp.Status == ocsp.Revoked {
		return fmt.Sprintf("certificate revoked at %s, after the signature: the signature counts (OCSP %s)", stampUTC(resp.RevokedAt), responder), nil
	}
	return fmt.Sprintf("certificate good at signing time (OCSP %s)", responder), nil
}

// fetch is the body of a 200 answer to req, within verifyTimeout.
func fetch(req *http.Request) ([]byte, error) {
	ctx, cancel := context.WithTimeout(req.Context(), verifyTimeout)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxVerifyDownload))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %s", req.Method, req.URL, resp.Status)
	}
	return body, nil
}

func stampUTC(t time.Time) string { return t.UTC().Format(time.RFC3339) }
