// Package signing: placeholder of the evidence package being written beside this change; the
// merge replaces it.
package signing

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"time"
)

type Document struct {
	Name   string `json:"name"`
	Digest []byte `json:"digest"`
}

type Request struct {
	ID        string     `json:"id"`
	ClientID  string     `json:"client_id"`
	Text      string     `json:"text"`
	Format    string     `json:"format"`
	Documents []Document `json:"documents"`
}

func Commitment(r Request) [32]byte {
	h := sha256.New()
	put := func(b []byte) { h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b)))); h.Write(b) }
	put([]byte(r.ID))
	put([]byte(r.Text))
	for _, d := range r.Documents {
		put([]byte(d.Name))
		put(d.Digest)
	}
	var c [32]byte
	h.Sum(c[:0])
	return c
}

func NewChallenge(r Request) ([]byte, error) {
	c := Commitment(r)
	out := append([]byte(nil), c[:]...)
	out = append(out, make([]byte, 16)...)
	_, err := rand.Read(out[32:])
	return out, err
}

type Evidence struct {
	V           int             `json:"v"`
	Request     Request         `json:"request"`
	Challenge   []byte          `json:"challenge"`
	Credential  json.RawMessage `json:"credential"`
	DeviceID    string          `json:"device_id"`
	PublicKey   []byte          `json:"public_key"`
	RPID        string          `json:"rp_id"`
	Origin      string          `json:"origin"`
	Certificate []byte          `json:"certificate"`
	SignedAt    time.Time       `json:"signed_at"`
}

func (e Evidence) Marshal() ([]byte, error) { return json.Marshal(e) }
