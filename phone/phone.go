// Package phone is mcert's reference phone app: a software authenticator that answers WebAuthn
// ceremonies as a phone's platform authenticator does, with its keys in a file, and a client
// for the phone endpoints of PROTOCOL.md. The end-to-end tests use it as their phone.
package phone

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/go-webauthn/webauthn/protocol"
)

// keyFileVersion is written into the key file so that a later format can tell old files apart.
const keyFileVersion = 1

// Credential is one passkey the phone holds.
type Credential struct {
	ID         []byte
	RPID       string
	UserHandle []byte
	UserName   string // what the server named the account, shown in the phone's passkey list
	SignCount  uint32

	// Set when the credential was bound through Client.Bind: the server's base URL, and the
	// device the server made of it with the secret for reading its inbox.
	Server      string
	DeviceID    string
	DeviceToken string
	// BackupEligible: the key may be synced, as a passkey in a cloud account is (the BE flag).
	BackupEligible bool

	key *ecdsa.PrivateKey
}

// Phone is a software authenticator whose credentials live in a key file. Its methods may be
// called from several goroutines.
type Phone struct {
	path  string
	mu    sync.Mutex
	creds []*Credential // in creation order
}

// Open loads the key file at path. A missing file is a phone with no credentials yet; Save
// creates it.
func Open(path string) (*Phone, error) {
	p := &Phone{path: path}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the phone key file: %w", err)
	}
	var f keyFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("phone key file %s is not valid JSON (%v); restore it from a backup or move it away to start an empty phone", path, err)
	}
	if f.Version != keyFileVersion {
		return nil, fmt.Errorf("phone key file %s has version %d, this program reads version %d; use a matching mcert", path, f.Version, keyFileVersion)
	}
	for i, fc := range f.Credentials {
		c, err := fc.credential()
		if err != nil {
			return nil, fmt.Errorf("phone key file %s, credential %d: %w; restore the file from a backup", path, i+1, err)
		}
		p.creds = append(p.creds, c)
	}
	return p, nil
}

// Save writes the key file, readable by its owner only. It writes a new file and renames it
// over the old one, so a crash leaves either the old keys or the new, never half of them.
func (p *Phone) Save() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.path == "" {
		return errors.New("this phone has no key file; make it with phone.Open")
	}
	f := keyFile{Version: keyFileVersion, Credentials: make([]fileCredential, 0, len(p.creds))}
	for _, c := range p.creds {
		fc, err := toFileCredential(c)
		if err != nil {
			return err
		}
		f.Credentials = append(f.Credentials, fc)
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the phone key file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p.path), "."+filepath.Base(p.path)+".*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("save the phone key file: %w", err)
	}
	_, err = tmp.Write(append(data, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p.path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("save the phone key file %s: %w", p.path, err)
	}
	return nil
}

// Add puts into the phone a credential made elsewhere, with its P-256 private key: one of a
// load test's phones, whose keys derive from a seed and are registered with the server
// beforehand. Save would write it to the key file like the others.
func (p *Phone) Add(c Credential, key *ecdsa.PrivateKey) error {
	if len(c.ID) == 0 || c.RPID == "" {
		return errors.New("the credential has no id or no rp_id")
	}
	if key == nil || key.Curve != elliptic.P256() {
		return errors.New("the credential's key is not a P-256 key")
	}
	c.key = key
	p.mu.Lock()
	defer p.mu.Unlock()
	p.creds = append(p.creds, &c)
	return nil
}

// Credentials lists copies of the phone's credentials, oldest first.
func (p *Phone) Credentials() []Credential {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Credential, 0, len(p.creds))
	for _, c := range p.creds {
		out = append(out, *c)
	}
	return out
}

// forget removes a credential that the server refused to bind, so that a later discoverable
// login does not pick it.
func (p *Phone) forget(c *Credential) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.creds = slices.DeleteFunc(p.creds, func(x *Credential) bool { return x == c })
}

// bound records the device the server made of credential c.
func (p *Phone) bound(c *Credential, server, deviceID, deviceToken string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c.Server, c.DeviceID, c.DeviceToken = server, deviceID, deviceToken
}

// boundTo is the newest credential bound to the server at base: a phone bound again keeps its
// old credential, which the server has most likely revoked.
func (p *Phone) boundTo(base string) (Credential, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range slices.Backward(p.creds) {
		if c.Server == base && c.DeviceToken != "" {
			return *c, true
		}
	}
	return Credential{}, false
}

// Servers lists the servers the phone is bound to, in the order it was first bound to each.
func (p *Phone) Servers() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var servers []string
	for _, c := range p.creds {
		if c.Server != "" && c.DeviceToken != "" && !slices.Contains(servers, c.Server) {
			servers = append(servers, c.Server)
		}
	}
	return servers
}

// keyFile and fileCredential are the key file's format, kept apart from Credential so that the
// stored format changes only on purpose.
type keyFile struct {
	Version     int              `json:"version"`
	Credentials []fileCredential `json:"credentials"`
}

type fileCredential struct {
	ID          protocol.URLEncodedBase64 `json:"id"`
	RPID        string                    `json:"rp_id"`
	UserHandle  protocol.URLEncodedBase64 `json:"user_handle"`
	UserName    string                    `json:"user_name,omitempty"`
	PrivateKey  protocol.URLEncodedBase64 `json:"private_key"` // PKCS#8 DER
	SignCount   uint32                    `json:"sign_count"`
	Server      string                    `json:"server,omitempty"`
	DeviceID    string                    `json:"device_id,omitempty"`
	DeviceToken string                    `json:"device_token,omitempty"`
	Synced      bool                      `json:"backup_eligible,omitempty"`
}

func toFileCredential(c *Credential) (fileCredential, error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		return fileCredential{}, fmt.Errorf("encode the private key of credential for %s: %w", c.RPID, err)
	}
	return fileCredential{
		ID: c.ID, RPID: c.RPID, UserHandle: c.UserHandle, UserName: c.UserName, PrivateKey: der,
		SignCount: c.SignCount, Server: c.Server, DeviceID: c.DeviceID, DeviceToken: c.DeviceToken, Synced: c.BackupEligible,
	}, nil
}

func (fc fileCredential) credential() (*Credential, error) {
	if len(fc.ID) == 0 || fc.RPID == "" {
		return nil, errors.New("the credential has no id or no rp_id")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(fc.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("the private key is not PKCS#8: %w", err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, errors.New("the private key is not a P-256 key")
	}
	return &Credential{
		ID: fc.ID, RPID: fc.RPID, UserHandle: fc.UserHandle, UserName: fc.UserName, SignCount: fc.SignCount,
		Server: fc.Server, DeviceID: fc.DeviceID, DeviceToken: fc.DeviceToken, BackupEligible: fc.Synced, key: key,
	}, nil
}
