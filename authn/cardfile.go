package authn

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/youmark/pkcs8"

	"github.com/mcert/mcert"
)

// A card file is the development stand-in for a smart card: a PEM CERTIFICATE and its PKCS#8
// key, either in clear (PRIVATE KEY) or, for a card with a PIN, encrypted under the PIN
// (ENCRYPTED PRIVATE KEY), which OpenSSL reads with `openssl pkey -passin pass:PIN`. Unlike a
// card, a file cannot count wrong PINs: whoever copies it can guess offline, so the PIN only
// makes the development flow look like the real one. Keep card files private.

var (
	// ErrWrongPIN is a PIN that does not open the card's key.
	ErrWrongPIN = errors.New("the PIN does not open the card's key; check the PIN and try again")
	// ErrPINRequired is a card whose key is encrypted, read without its PIN.
	ErrPINRequired = errors.New("the card's key is encrypted under its PIN; read the card with its PIN")
)

// The PIN rule of the development cards: what PKCS#11 smart cards commonly take, and one rule
// for both card shapes so that tests and demonstrations may use short PINs.
const (
	minPIN = 4
	maxPIN = 12
)

// ValidatePIN reports whether pin is one a card may have: 4 to 12 ASCII letters or digits.
// The error never repeats the PIN.
func ValidatePIN(pin string) error {
	ok := len(pin) >= minPIN && len(pin) <= maxPIN
	for i := 0; ok && i < len(pin); i++ {
		c := pin[i]
		ok = '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z'
	}
	if !ok {
		return mcert.InvalidPIN.Newf(minPIN, maxPIN)
	}
	return nil
}

// pinEncryption is how a card's key is encrypted under its PIN: PBES2 with AES-256-CBC and
// PBKDF2-HMAC-SHA256, which OpenSSL 1.1 and 3 read. The PIN space is small, so the iteration
// count only slows guessing; it is kept where unlocking the card takes a few tens of
// milliseconds, since the agent does it for every signature.
var pinEncryption = &pkcs8.Opts{
	Cipher:  pkcs8.AES256CBC,
	KDFOpts: pkcs8.PBKDF2Opts{SaltSize: 16, IterationCount: 100_000, HMACHash: crypto.SHA256},
}

// CardFile is a card file as read without its PIN: the certificate, and the key in clear or
// still encrypted.
type CardFile struct {
	Certificate *x509.Certificate
	Key         crypto.Signer // nil while the key is encrypted under the card's PIN

	encryptedKey []byte // DER EncryptedPrivateKeyInfo
}

// ReadCardFile reads a card from PEM holding a CERTIFICATE and its PKCS#8 PRIVATE KEY or
// ENCRYPTED PRIVATE KEY, in either order. An encrypted key is only checked to be one; Unlock
// decrypts it.
func ReadCardFile(pemBytes []byte) (*CardFile, error) {
	var f CardFile
	keys := 0
	for _, block := range pemBlocks(pemBytes) {
		switch block.Type {
		case "CERTIFICATE":
			if f.Certificate != nil {
				return nil, errors.New("more than one CERTIFICATE block; a card file holds one certificate and its key")
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("the CERTIFICATE block is not a valid certificate: %w", err)
			}
			f.Certificate = cert
		case "PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
			if keys++; keys > 1 {
				return nil, errors.New("more than one key block; a card file holds one certificate and its key")
			}
			if block.Type == "ENCRYPTED PRIVATE KEY" {
				if !isEncryptedPrivateKeyInfo(block.Bytes) {
					return nil, errors.New("the ENCRYPTED PRIVATE KEY block is not an encrypted PKCS#8 key; issue the card again")
				}
				f.encryptedKey = block.Bytes
				continue
			}
			key, err := parsePrivateKey(block.Bytes)
			if err != nil {
				return nil, err
			}
			f.Key = key
		default:
			return nil, fmt.Errorf("unexpected PEM block %q; a card file holds a CERTIFICATE and a PKCS#8 PRIVATE KEY or ENCRYPTED PRIVATE KEY (convert other keys with openssl pkcs8 -topk8)", block.Type)
		}
	}
	if f.Certificate == nil {
		return nil, errors.New("no CERTIFICATE block; a card file holds a CERTIFICATE and its PKCS#8 PRIVATE KEY")
	}
	if keys == 0 {
		return nil, errors.New("no PRIVATE KEY block; a card file holds a CERTIFICATE and its PKCS#8 PRIVATE KEY")
	}
	if f.Key != nil {
		if err := keyMatches(f.Key, f.Certificate); err != nil {
			return nil, err
		}
	}
	return &f, nil
}

// HasPIN reports whether the card's key is encrypted under a PIN.
func (f *CardFile) HasPIN() bool { return f.encryptedKey != nil }

// Unlock returns the card with its key, decrypted with pin when the file has a PIN; a file
// without one ignores pin. A PIN that does not open the key is ErrWrongPIN.
func (f *CardFile) Unlock(pin string) (*Card, error) {
	if !f.HasPIN() {
		if f.Key == nil {
			return nil, errors.New("the card file holds no key; read it with ReadCardFile")
		}
		return &Card{Certificate: f.Certificate, Key: f.Key}, nil
	}
	if err := ValidatePIN(pin); err != nil {
		return nil, err
	}
	decrypted, err := decryptKey(f.encryptedKey, pin)
	if err != nil {
		return nil, err
	}
	key, err := cardSigner(decrypted)
	if err != nil {
		return nil, err
	}
	if err := keyMatches(key, f.Certificate); err != nil {
		return nil, err
	}
	return &Card{Certificate: f.Certificate, Key: key}, nil
}

// ParseCardWithPIN reads a card file and unlocks its key with pin (ignored by a card without a
// PIN). A PIN that does not open the key is ErrWrongPIN.
func ParseCardWithPIN(pemBytes []byte, pin string) (*Card, error) {
	f, err := ReadCardFile(pemBytes)
	if err != nil {
		return nil, err
	}
	return f.Unlock(pin)
}

// encryptedPrivateKeyInfo is RFC 5958's EncryptedPrivateKeyInfo.
type encryptedPrivateKeyInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	Data      []byte
}

func isEncryptedPrivateKeyInfo(der []byte) bool {
	var info encryptedPrivateKeyInfo
	rest, err := asn1.Unmarshal(der, &info)
	return err == nil && len(rest) == 0 && len(info.Data) > 0
}

// decryptKey returns the private key that der holds encrypted under pin. The library panics
// on some malformed parameters (an IV or ciphertext of the wrong length), and says "incorrect
// password" for what a wrong PIN gives: bytes that are no PKCS#8 key.
func decryptKey(der []byte, pin string) (key any, err error) {
	defer func() {
		if recover() != nil {
			key, err = nil, errors.New("the ENCRYPTED PRIVATE KEY block is malformed; issue the card again")
		}
	}()
	key, err = pkcs8.ParsePKCS8PrivateKey(der, []byte(pin))
	if err != nil && err.Error() == "pkcs8: incorrect password" {
		return nil, ErrWrongPIN
	}
	if err != nil {
		return nil, fmt.Errorf("the ENCRYPTED PRIVATE KEY block cannot be decrypted (%v); encrypt the key with PBES2, AES-CBC and PBKDF2 or scrypt (openssl pkcs8 -topk8 -v2 aes-256-cbc)", err)
	}
	return key, nil
}

func keyMatches(key crypto.Signer, cert *x509.Certificate) error {
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return errors.New("the private key does not belong to the certificate; put the certificate's own key in the card file")
	}
	return nil
}

func encodeKeyWithPIN(key crypto.Signer, pin string) ([]byte, error) {
	der, err := pkcs8.MarshalPrivateKey(key, []byte(pin), pinEncryption)
	if err != nil {
		return nil, fmt.Errorf("encrypt the card's key under its PIN: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der}), nil
}

// CardHolder is whom a card names, as logs show it: the holder's name and the masked ID
// (A12****789), or ******6789 for a card that carries only the last four digits. It does not
// check that the card is trusted.
func CardHolder(cert *x509.Certificate) (name, maskedID string) {
	c, err := identity(cert)
	switch {
	case err != nil:
		return cert.Subject.CommonName, MaskCitizenID("")
	case c.ID != "":
		return c.Name, MaskCitizenID(c.ID)
	}
	return c.Name, "******" + c.LastFour
}
