package authn

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/mcert/mcert"
)

// The PKCS#7 form of a card login (PROTOCOL.md section 1b) is what MOICA's card component
// makes: a CMS SignedData over a text. The text names the site, so that a signature a card
// made for one site is worthless at another.

const tbsPrefix = "mcert card login\n"

// CardLoginTBS is the text a card signs to log in at origin with a challenge (in its base64url
// form, as the challenge endpoint answers it).
func CardLoginTBS(origin, challenge string) string {
	return tbsPrefix + origin + "\n" + challenge
}

// ParseCardLoginTBS splits a card-login text into its origin and challenge.
func ParseCardLoginTBS(tbs string) (origin, challenge string, ok bool) {
	rest, ok := strings.CutPrefix(tbs, tbsPrefix)
	if !ok {
		return "", "", false
	}
	origin, challenge, ok = strings.Cut(rest, "\n")
	return origin, challenge, ok && origin != "" && challenge != "" && !strings.Contains(challenge, "\n")
}

// SignPKCS7 signs content as MOICA's card component does: an attached CMS SignedData with
// SHA-256, signed attributes and the card's certificate.
func (c *Card) SignPKCS7(content []byte) ([]byte, error) {
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		return nil, err
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSigner(c.Certificate, c.Key, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, err
	}
	return sd.Finish()
}

// maxPKCS7 bounds the SignedData a login may send: a card's certificate chain and a signature
// over a short text are a few kilobytes.
const maxPKCS7 = 32 << 10

func errBadPKCS7(why string) error {
	return mcert.BadPKCS7.Newf(why)
}

// VerifyPKCS7 checks that der is a CMS SignedData of a trusted card over exactly tbs (the
// content may be carried in it or be detached), and returns the citizen the card names.
func (v *CardVerifier) VerifyPKCS7(ctx context.Context, der, tbs []byte, now time.Time) (Citizen, error) {
	if len(der) > maxPKCS7 {
		return Citizen{}, errBadPKCS7("it is larger than 32 KB")
	}
	p7, err := parsePKCS7(der)
	if err != nil {
		return Citizen{}, err
	}
	switch {
	case len(p7.Signers) != 1:
		return Citizen{}, errBadPKCS7("it must have exactly one signer")
	case len(p7.Content) == 0:
		p7.Content = tbs // detached: the content is the text the server asked for
	case !bytes.Equal(p7.Content, tbs):
		return Citizen{}, mcert.SignedOtherText.New()
	}
	switch p7.Signers[0].DigestAlgorithm.Algorithm.String() {
	case pkcs7.OIDDigestAlgorithmSHA256.String(), pkcs7.OIDDigestAlgorithmSHA384.String(), pkcs7.OIDDigestAlgorithmSHA512.String():
	default:
		return Citizen{}, errBadPKCS7("its digest algorithm must be SHA-256, SHA-384 or SHA-512")
	}
	cert := p7.GetOnlySigner()
	if cert == nil {
		return Citizen{}, errBadPKCS7("it does not carry the signer's certificate")
	}
	intermediates := x509.NewCertPool()
	for _, c := range p7.Certificates {
		if !c.Equal(cert) {
			intermediates.AddCert(c)
		}
	}
	citizen, err := v.checkCard(ctx, cert, intermediates, now)
	if err != nil {
		return citizen, err
	}
	if err := p7.VerifyWithChainAtTime(nil, now); err != nil {
		return citizen, mcert.BadTBSSignature.New()
	}
	return citizen, nil
}

// parsePKCS7 reads a SignedData, which no bytes from outside may make panic.
func parsePKCS7(der []byte) (p7 *pkcs7.PKCS7, err error) {
	defer func() {
		if recover() != nil {
			p7, err = nil, errBadPKCS7("it is not valid DER")
		}
	}()
	p7, err = pkcs7.Parse(der)
	if err != nil {
		return nil, errBadPKCS7("it is not a CMS SignedData in DER")
	}
	return p7, nil
}

// DecodeSignature reads a base64 signature in either of the encodings the card component and
// API clients send: standard with padding, or base64url without.
func DecodeSignature(s string) ([]byte, bool) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, true
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	return b, err == nil
}
