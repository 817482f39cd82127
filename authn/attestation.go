package authn

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/metadata"
	"github.com/go-webauthn/webauthn/protocol"
	"github.com/google/uuid"

	"github.com/mcert/mcert/storage"
)

// AttestationTrust is what a binding's attestation certificate chain may chain to: roots the
// operator configured (--attestation-roots), and the attestation roots that FIDO's metadata
// (MDS3, --fido-mds) lists for each authenticator model by its AAGUID.
type AttestationTrust struct {
	Roots *x509.CertPool               // nil: none
	MDS   map[uuid.UUID]*x509.CertPool // an AAGUID's roots from the metadata blob
	Now   func() time.Time             // nil: time.Now
}

// ParseAttestationRoots reads a PEM bundle of attestation root certificates: every block must
// be a CERTIFICATE that parses, and there must be at least one.
func ParseAttestationRoots(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is a %q, not a CERTIFICATE", n, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d is not an X.509 certificate: %w", n, err)
		}
		certs = append(certs, c)
	}
	if len(bytes.TrimSpace(data)) != 0 {
		return nil, errors.New("the file holds something after its last PEM certificate, or is not PEM")
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate in the file")
	}
	return certs, nil
}

// ParseFIDOMetadata reads a FIDO Metadata Service (MDS3) blob, the JWT as FIDO publishes it,
// with go-webauthn's own decoder, which checks its signature chains to root (FIDO's MDS root,
// metadata.ProductionMDSRoot, when root is ""). It returns each FIDO2 authenticator's
// attestation roots by AAGUID. Entries the decoder cannot parse are skipped, as FIDO's blob has
// some of those; a blob that does not decode or verify is an error.
func ParseFIDOMetadata(blob []byte, root string) (map[uuid.UUID]*x509.CertPool, error) {
	opts := []metadata.DecoderOption{metadata.WithIgnoreEntryParsingErrors()}
	if root != "" {
		opts = append(opts, metadata.WithRootCertificate(root))
	}
	d, err := metadata.NewDecoder(opts...)
	if err != nil {
		return nil, err
	}
	payload, err := d.DecodeBytes(bytes.TrimSpace(blob))
	if err != nil {
		return nil, fmt.Errorf("not a FIDO metadata blob signed by the FIDO root: %w", err)
	}
	md, err := d.Parse(payload)
	if err != nil {
		return nil, fmt.Errorf("read the FIDO metadata: %w", err)
	}
	pools := map[uuid.UUID]*x509.CertPool{}
	for _, e := range md.Parsed.Entries {
		if e.AaGUID == uuid.Nil || len(e.MetadataStatement.AttestationRootCertificates) == 0 {
			continue
		}
		pool := x509.NewCertPool()
		for _, c := range e.MetadataStatement.AttestationRootCertificates {
			pool.AddCert(c)
		}
		pools[e.AaGUID] = pool
	}
	return pools, nil
}

// classify says what a registration's attestation showed (storage.Attestation*), once
// go-webauthn has verified its signature: none, self (no certificate), or a certificate chain
// that is trusted when it chains to a configured root or to its AAGUID's metadata roots.
func (t AttestationTrust) classify(att protocol.AttestationObject, aaguid []byte) string {
	if att.Format == "none" || att.Format == "" {
		return storage.AttestationNone
	}
	raw, ok := att.AttStatement["x5c"].([]any)
	if !ok || len(raw) == 0 {
		return storage.AttestationSelf
	}
	var chain []*x509.Certificate
	for _, r := range raw {
		der, ok := r.([]byte)
		if !ok {
			return storage.AttestationUntrusted
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return storage.AttestationUntrusted
		}
		chain = append(chain, c)
	}
	now := time.Now()
	if t.Now != nil {
		now = t.Now()
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	verify := func(roots *x509.CertPool) bool {
		_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		return err == nil
	}
	if t.Roots != nil && verify(t.Roots) {
		return storage.AttestationTrusted
	}
	if id, err := uuid.FromBytes(aaguid); err == nil && id != uuid.Nil {
		if pool := t.MDS[id]; pool != nil && verify(pool) {
			return storage.AttestationTrusted
		}
	}
	return storage.AttestationUntrusted
}
