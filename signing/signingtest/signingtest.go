// Package signingtest makes the evidence of a phone's approval as mcert's server makes it, with
// the project's software phone answering a real WebAuthn challenge, for the tests of those who
// verify that evidence.
package signingtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"math/big"
	"path/filepath"
	"time"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/pki"
	"github.com/mcert/mcert/signing"
)

// Device is a software phone with one credential for an RP ID, as a bound device is.
type Device struct {
	ID        string
	RPID      string
	Origin    string
	PublicKey []byte // the credential's COSE key, as the server stores it at the binding
	phone     *phone.Phone
}

// NewDevice makes a phone whose key file is in dir, with a new credential for rpID at origin.
func NewDevice(dir, id, rpID, origin string) (*Device, error) {
	p, err := phone.Open(filepath.Join(dir, id+".json"))
	if err != nil {
		return nil, err
	}
	response, err := p.Create(origin, protocol.PublicKeyCredentialCreationOptions{
		Challenge:    make([]byte, 32),
		RelyingParty: protocol.RelyingPartyEntity{ID: rpID},
		User:         protocol.UserEntity{ID: []byte("user handle"), CredentialEntity: protocol.CredentialEntity{Name: "A12****789"}},
	}, phone.CreateOptions{})
	if err != nil {
		return nil, err
	}
	created, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return nil, fmt.Errorf("the phone's registration: %w", err)
	}
	return &Device{
		ID:        id,
		RPID:      rpID,
		Origin:    origin,
		PublicKey: created.Response.AttestationObject.AuthData.AttData.CredentialPublicKey,
		phone:     p,
	}, nil
}

// Approve is the evidence of the device's approval of r, made with a new challenge for r, for
// the signing certificate cert (DER) at signedAt; o changes the phone's answer as in a login.
func (d *Device) Approve(r signing.Request, cert []byte, signedAt time.Time, o phone.GetOptions) (signing.Evidence, error) {
	challenge, err := signing.NewChallenge(r)
	if err != nil {
		return signing.Evidence{}, err
	}
	credential, err := d.phone.Get(d.Origin, protocol.PublicKeyCredentialRequestOptions{Challenge: challenge, RelyingPartyID: d.RPID}, o)
	if err != nil {
		return signing.Evidence{}, err
	}
	return signing.Evidence{
		V:           signing.EvidenceVersion,
		Request:     r,
		Challenge:   challenge,
		Credential:  credential,
		DeviceID:    d.ID,
		PublicKey:   d.PublicKey,
		RPID:        d.RPID,
		Origin:      d.Origin,
		Certificate: cert,
		SignedAt:    signedAt,
	}, nil
}

// Certificate is a phone's signing certificate from ca, valid an hour before now until
// notAfter, naming the CA's CRL and OCSP responder at those URLs, with its key and serial.
func Certificate(ca *pki.CA, now, notAfter time.Time, crlURL, ocspURL string) (*ecdsa.PrivateKey, []byte, *big.Int, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	serial, err := pki.NewSerial(rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	der, err := ca.Issue(rand.Reader, pki.IssueRequest{
		PublicKey: &key.PublicKey, Subject: pki.Subject{Name: "王小明", MaskedID: "A12****789"}, Serial: serial,
		NotBefore: now.Add(-time.Hour), NotAfter: notAfter, CRLURL: crlURL, OCSPURL: ocspURL,
	})
	return key, der, serial, err
}
