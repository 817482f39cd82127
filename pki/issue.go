package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"
)

// oidDocumentSigning is id-kp-documentSigning (RFC 9336), which crypto/x509 does not name.
var oidDocumentSigning = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 36}

// Subject is whom a citizen's certificate names.
type Subject struct {
	Name     string // the card's holder name: the subject's common name
	MaskedID string // the national ID as mcert shows it, A12****789: the subject's serialNumber
	// CitizenID is the whole national ID, set only when the operator has chosen to put it in
	// the certificates: it then takes MaskedID's place as the serialNumber.
	CitizenID string
}

// IssueRequest is what a citizen's certificate certifies, and where it points for revocation.
type IssueRequest struct {
	PublicKey           crypto.PublicKey // the binding's signing key: ECDSA P-256
	Subject             Subject
	Serial              *big.Int // from NewSerial, and recorded by the caller for OCSP and CRLs
	NotBefore, NotAfter time.Time
	CRLURL              string // the CRL distribution point: GET /pki/ca.crl
	OCSPURL             string // the OCSP responder: POST /pki/ocsp
	// IssuerURL, optional, is the authority information access caIssuers URL. RFC 5280 wants
	// a DER certificate or a certs-only CMS there, which /pki/ca.pem is not.
	IssuerURL string
}

// NewSerial is a new certificate serial number: 128 random bits, positive as RFC 5280 requires,
// so that serial numbers neither collide nor tell how many certificates the CA has issued.
func NewSerial(rand io.Reader) (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	n, err := crand.Int(rand, limit.Sub(limit, big.NewInt(1)))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// Issue is a DER certificate for a binding's signing key: subject CN = the name, serialNumber
// = the masked ID (or the whole ID when given), C = TW; key usage digitalSignature and
// nonRepudiation; extended key usage id-kp-documentSigning and emailProtection, the latter so
// that tools such as `openssl cms -verify` accept it with their default purpose; the CRL and
// OCSP URLs. It refuses a certificate that would outlive the CA's.
func (ca *CA) Issue(rand io.Reader, r IssueRequest) ([]byte, error) {
	pub, ok := r.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("the certified key must be ECDSA P-256, not %T", r.PublicKey)
	}
	id := r.Subject.MaskedID
	if r.Subject.CitizenID != "" {
		id = r.Subject.CitizenID
	}
	switch {
	case r.Subject.Name == "":
		return nil, errors.New("the certificate needs the holder's name")
	case id == "":
		return nil, errors.New("the certificate needs the masked ID")
	case r.Serial == nil || r.Serial.Sign() <= 0:
		return nil, errors.New("the serial number must be positive (NewSerial makes one)")
	case r.Serial.BitLen() > 159: // DER's sign bit makes 20 octets, RFC 5280's limit
		return nil, fmt.Errorf("the serial number has %d bits, over the 20 octets of RFC 5280 (NewSerial makes 128)", r.Serial.BitLen())
	case !r.NotAfter.After(r.NotBefore):
		return nil, fmt.Errorf("the validity ends (%s) before it starts (%s)", stamp(r.NotAfter), stamp(r.NotBefore))
	case r.NotAfter.After(ca.chain[0].NotAfter):
		return nil, fmt.Errorf("the certificate would be valid until %s, after the CA's own certificate expires (%s)", stamp(r.NotAfter), stamp(ca.chain[0].NotAfter))
	case r.CRLURL == "" || r.OCSPURL == "":
		return nil, errors.New("the certificate needs the CRL and OCSP URLs, for relying parties to check it")
	}
	point, err := pub.Bytes()
	if err != nil {
		return nil, fmt.Errorf("the certified key: %w", err)
	}
	// crypto/x509 makes a subject key identifier only for CAs; this is its method for them
	// (RFC 7093 section 2, method 1), so a certificate can be found by key either way.
	skid := sha256.Sum256(point)
	// The masked ID's asterisks are no PrintableString characters, so crypto/x509 writes the
	// serialNumber as a UTF8String, where X.520 names PrintableString; Go and OpenSSL read it.
	template := &x509.Certificate{
		SerialNumber: r.Serial,
		Subject: pkix.Name{
			Country:      []string{"TW"},
			CommonName:   r.Subject.Name,
			SerialNumber: id,
		},
		NotBefore:             r.NotBefore,
		NotAfter:              r.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		UnknownExtKeyUsage:    []asn1.ObjectIdentifier{oidDocumentSigning},
		BasicConstraintsValid: true,
		SubjectKeyId:          skid[:20],
		CRLDistributionPoints: []string{r.CRLURL},
		OCSPServer:            []string{r.OCSPURL},
	}
	if r.IssuerURL != "" {
		template.IssuingCertificateURL = []string{r.IssuerURL}
	}
	der, err := x509.CreateCertificate(rand, template, ca.chain[0], pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("issuing the certificate: %w", err)
	}
	return der, nil
}
