package pki

import (
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"time"
)

// Revoked is a revoked certificate, as the CRL lists it.
type Revoked struct {
	Serial *big.Int
	At     time.Time
	Reason int // an RFC 5280 CRLReason; 0, unspecified, is left out of the CRL as it asks
}

// reasons names the RFC 5280 CRLReason codes (section 5.3.1), for errors; 7 is unused.
var reasons = map[int]string{
	0:  "unspecified",
	1:  "keyCompromise",
	2:  "cACompromise",
	3:  "affiliationChanged",
	4:  "superseded",
	5:  "cessationOfOperation",
	6:  "certificateHold",
	8:  "removeFromCRL",
	9:  "privilegeWithdrawn",
	10: "aACompromise",
}

func reasonName(code int) string {
	if name, ok := reasons[code]; ok {
		return name
	}
	return fmt.Sprintf("reason %d", code)
}

// CRL is the CA's DER CRL, what GET /pki/ca.crl serves (application/pkix-crl): number must
// grow with every CRL the CA issues (RFC 5280 5.2.3), and relying parties fetch the next one
// at nextUpdate.
func (ca *CA) CRL(rand io.Reader, number *big.Int, thisUpdate, nextUpdate time.Time, revoked []Revoked) ([]byte, error) {
	entries := make([]x509.RevocationListEntry, len(revoked))
	for i, r := range revoked {
		if _, ok := reasons[r.Reason]; !ok {
			return nil, fmt.Errorf("revoked serial number %v: %d is not a CRL reason code", r.Serial, r.Reason)
		}
		entries[i] = x509.RevocationListEntry{SerialNumber: r.Serial, RevocationTime: r.At, ReasonCode: r.Reason}
	}
	der, err := x509.CreateRevocationList(rand, &x509.RevocationList{
		Number:                    number,
		ThisUpdate:                thisUpdate,
		NextUpdate:                nextUpdate,
		RevokedCertificateEntries: entries,
	}, ca.chain[0], ca.key)
	if err != nil {
		return nil, fmt.Errorf("CRL: %w", err)
	}
	return der, nil
}
