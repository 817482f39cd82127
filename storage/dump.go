package storage

import (
	"bytes"
	"fmt"
	"reflect"
	"time"
)

// Record is one record of a dump (Store.Dump): exactly one field is set.
type Record struct {
	Challenge   *Challenge
	Session     *Session
	Account     *Account
	Binding     *Binding
	Device      *Device
	Client      *Client
	Login       *Login
	Token       *Token
	Secret      *NamedSecret
	SigningKey  *SigningKey
	Certificate *Certificate
	Ticket      *Ticket
	Mail        *Mail
	Event       *Event
}

// NamedSecret is a server secret and its name.
type NamedSecret struct {
	Name  string
	Value []byte
}

// Kinds are the kinds of record a dump holds, in the order it holds them.
var Kinds = []string{"challenges", "sessions", "accounts", "bindings", "devices", "clients", "logins", "tokens", "secrets", "signing keys", "certificates", "tickets", "mails", "events"}

// Kind is which of Kinds r is.
func (r Record) Kind() string {
	switch {
	case r.Challenge != nil:
		return "challenges"
	case r.Session != nil:
		return "sessions"
	case r.Account != nil:
		return "accounts"
	case r.Binding != nil:
		return "bindings"
	case r.Device != nil:
		return "devices"
	case r.Client != nil:
		return "clients"
	case r.Login != nil:
		return "logins"
	case r.Token != nil:
		return "tokens"
	case r.Secret != nil:
		return "secrets"
	case r.SigningKey != nil:
		return "signing keys"
	case r.Certificate != nil:
		return "certificates"
	case r.Ticket != nil:
		return "tickets"
	case r.Mail != nil:
		return "mails"
	case r.Event != nil:
		return "events"
	}
	return ""
}

// Restore writes r into tx as it was: created, a secret put, an event appended (which gives it
// an ID of tx's store, in the order the events are restored).
func (r Record) Restore(tx Tx) error {
	switch {
	case r.Challenge != nil:
		return tx.CreateChallenge(*r.Challenge)
	case r.Session != nil:
		return tx.CreateSession(*r.Session)
	case r.Account != nil:
		return tx.CreateAccount(*r.Account)
	case r.Binding != nil:
		return tx.CreateBinding(*r.Binding)
	case r.Device != nil:
		return tx.CreateDevice(*r.Device)
	case r.Client != nil:
		return tx.CreateClient(*r.Client)
	case r.Login != nil:
		return tx.CreateLogin(*r.Login)
	case r.Token != nil:
		return tx.CreateToken(*r.Token)
	case r.Secret != nil:
		return tx.PutSecret(r.Secret.Name, r.Secret.Value)
	case r.SigningKey != nil:
		return tx.CreateSigningKey(*r.SigningKey)
	case r.Certificate != nil:
		return tx.CreateCertificate(*r.Certificate)
	case r.Ticket != nil:
		return tx.CreateTicket(*r.Ticket)
	case r.Mail != nil:
		return tx.CreateMail(*r.Mail)
	case r.Event != nil:
		_, err := tx.AppendEvent(*r.Event)
		return err
	}
	return fmt.Errorf("storage: an empty record")
}

// Reread reads r's counterpart in tx by its key: what a copy of r in another store holds.
// Events have no key that survives a copy; Reread returns r for them.
func (r Record) Reread(tx ReadTx) (Record, error) {
	var out Record
	var err error
	switch {
	case r.Challenge != nil:
		out.Challenge, err = read(tx.Challenge(r.Challenge.Hash))
	case r.Session != nil:
		out.Session, err = read(tx.Session(r.Session.Hash))
	case r.Account != nil:
		out.Account, err = read(tx.Account(r.Account.ID))
	case r.Binding != nil:
		out.Binding, err = read(tx.Binding(r.Binding.ID))
	case r.Device != nil:
		out.Device, err = read(tx.Device(r.Device.ID))
	case r.Client != nil:
		out.Client, err = read(tx.Client(r.Client.ID))
	case r.Login != nil:
		out.Login, err = read(tx.Login(r.Login.Hash))
	case r.Token != nil:
		out.Token, err = read(tx.Token(r.Token.ID))
	case r.Secret != nil:
		var v []byte
		v, err = tx.Secret(r.Secret.Name)
		out.Secret = &NamedSecret{Name: r.Secret.Name, Value: v}
	case r.SigningKey != nil:
		var keys []SigningKey
		if keys, err = tx.SigningKeys(); err == nil {
			err = ErrNotFound
			for i := range keys {
				if keys[i].ID == r.SigningKey.ID {
					out.SigningKey, err = &keys[i], nil
				}
			}
		}
	case r.Certificate != nil:
		out.Certificate, err = read(tx.Certificate(r.Certificate.Serial))
	case r.Ticket != nil:
		out.Ticket, err = read(tx.Ticket(r.Ticket.Hash))
	case r.Mail != nil:
		out.Mail, err = read(tx.Mail(r.Mail.ID))
	default:
		return r, nil
	}
	return out, err
}

func read[T any](v T, err error) (*T, error) { return &v, err }

// Same reports whether a and b hold the same record: times the same instant, nil and empty
// slices alike (not every database tells them apart), an event's ID aside, which is its store's.
func Same(a, b Record) bool {
	if a.Event != nil && b.Event != nil {
		x, y := *a.Event, *b.Event
		x.ID, y.ID = "", ""
		return same(reflect.ValueOf(x), reflect.ValueOf(y))
	}
	return same(reflect.ValueOf(a), reflect.ValueOf(b))
}

var timeType = reflect.TypeFor[time.Time]()

func same(a, b reflect.Value) bool {
	if a.Type() == timeType {
		return a.Interface().(time.Time).Equal(b.Interface().(time.Time))
	}
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return same(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := range a.NumField() {
			if !same(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice:
		if a.Type().Elem().Kind() == reflect.Uint8 {
			return bytes.Equal(a.Bytes(), b.Bytes())
		}
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !same(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	}
	return a.Interface() == b.Interface()
}
