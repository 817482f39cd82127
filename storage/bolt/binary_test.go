package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/mcert/mcert/storage"
)

var (
	formatTime = time.Date(2026, 11, 26, 8, 30, 15, 123456789, time.UTC)
	fullDevice = storage.Device{
		ID: "device", AccountID: "account", Name: "Pixel 8", CredentialID: []byte("credential"), PublicKey: []byte("cose key"),
		AttestationType: "none", AttestationFmt: "packed", AAGUID: make([]byte, 16), SignCount: 1<<32 - 1,
		Transports: []string{"internal", "hybrid"}, BackupEligible: true, BackupState: true, TokenHash: []byte("device token hash"),
		Status: storage.DeviceRevoked, CreatedAt: formatTime, ExpiresAt: formatTime.AddDate(1, 0, 0),
		LastUsedAt: new(formatTime.Add(time.Hour)), RevokedAt: new(formatTime.Add(2 * time.Hour)), CloneWarningAt: new(formatTime.Add(3 * time.Hour)),
		Attestation: storage.AttestationTrusted,
		Push:        storage.PushSubscription{Endpoint: "https://push.example/abc", P256dh: "BPub", Auth: "auth"},
	}
	fullAccount = storage.Account{
		ID: "account", CitizenID: "A123456789", Name: "王小明", Email: "ming@example.tw", Phone: "0912345678",
		WebAuthnID: []byte("user handle"), Status: storage.AccountSuspended, CreatedAt: formatTime, UpdatedAt: formatTime.Add(time.Minute),
		EmailVerified: true, Lang: storage.LangEn,
	}
	fullLogin = storage.Login{
		Hash: []byte("login hash"), Kind: storage.LoginCIBA, ClientID: "client", ClientName: "健保署", Status: storage.LoginApproved,
		CreatedAt: formatTime, ExpiresAt: formatTime.Add(10 * time.Minute), TokenExpiresAt: formatTime.Add(2 * time.Minute), TokenSerial: 3,
		TokenHashes: [][]byte{[]byte("token 1"), []byte("token 2")}, Code: "0042", BindingMessage: "登入確認",
		Request: []byte(`{"scope":"openid"}`), CodeHash: []byte("code hash"), WebAuthnSession: []byte(`{"challenge":"x"}`),
		LastPolledAt: new(formatTime.Add(time.Second)), AccountID: "account", DeviceID: "device", AuthTime: new(formatTime.Add(time.Minute)),
		BrowserHash: []byte("browser hash"), Browser: "Chrome on Windows", Reason: "too_many_failures",
		RequiredACR: "urn:mcert:acr:phone-hardware", ACR: "urn:mcert:acr:phone-hardware", AMR: []string{"hwk", "user"},
	}
)

// TestRecordFormats checks that accounts, devices and logins are written in the binary form,
// and that their records of format 1 (JSON, as earlier versions wrote them) are still read, and
// rewritten in the binary form by a put: a data file needs no migration.
func TestRecordFormats(t *testing.T) {
	ctx := context.Background()
	type kind struct {
		name    string
		bucket  string
		key     []byte
		json    any              // the record of format 1
		read    func(*Store) any // reads it back
		update  func(*Store) error
		written any
	}
	kinds := []kind{
		{"account", accounts.bucket, []byte(fullAccount.ID), toAccount(fullAccount),
			func(s *Store) any {
				v, _ := storage.Get(ctx, s, func(tx storage.ReadTx) (storage.Account, error) { return tx.Account(fullAccount.ID) })
				return v
			},
			func(s *Store) error {
				return s.Update(ctx, func(tx storage.Tx) error {
					a, err := tx.Account(fullAccount.ID)
					if err != nil {
						return err
					}
					return tx.PutAccount(a)
				})
			}, fullAccount},
		{"device", devices.bucket, []byte(fullDevice.ID), toDevice(fullDevice),
			func(s *Store) any {
				v, _ := storage.Get(ctx, s, func(tx storage.ReadTx) (storage.Device, error) { return tx.Device(fullDevice.ID) })
				return v
			},
			func(s *Store) error {
				return s.Update(ctx, func(tx storage.Tx) error {
					d, err := tx.Device(fullDevice.ID)
					if err != nil {
						return err
					}
					return tx.PutDevice(d)
				})
			}, fullDevice},
		{"login", logins.bucket, fullLogin.Hash, toLogin(fullLogin),
			func(s *Store) any {
				v, _ := storage.Get(ctx, s, func(tx storage.ReadTx) (storage.Login, error) { return tx.Login(fullLogin.Hash) })
				return v
			},
			func(s *Store) error {
				return s.Update(ctx, func(tx storage.Tx) error {
					l, err := tx.Login(fullLogin.Hash)
					if err != nil {
						return err
					}
					return tx.PutLogin(l)
				})
			}, fullLogin},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			s := open(t, t.TempDir()+"/mcert.db", Options{})
			old, err := json.Marshal(k.json)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket([]byte(k.bucket)).Put(k.key, old) }); err != nil {
				t.Fatal(err)
			}
			if got := k.read(s); !reflect.DeepEqual(got, k.written) {
				t.Fatalf("read from format 1:\n got %+v\nwant %+v", got, k.written)
			}
			if err := k.update(s); err != nil {
				t.Fatalf("update: %v", err)
			}
			var stored []byte
			_ = s.db.View(func(tx *bbolt.Tx) error {
				stored = append(stored, tx.Bucket([]byte(k.bucket)).Get(k.key)...)
				return nil
			})
			if len(stored) == 0 || stored[0] != binaryFormat || len(stored) >= len(old) {
				t.Errorf("after an update the record is %d bytes beginning %q; want format %d, smaller than its %d bytes of JSON", len(stored), stored[:min(len(stored), 8)], binaryFormat, len(old))
			}
			if got := k.read(s); !reflect.DeepEqual(got, k.written) {
				t.Errorf("read from format 2:\n got %+v\nwant %+v", got, k.written)
			}
		})
	}
}

// TestBinaryReadsOlderRecords checks that a record written before fields were appended to its
// list reads with those fields zero: a data file needs no migration when a record grows.
func TestBinaryReadsOlderRecords(t *testing.T) {
	l := fullLogin
	l.BrowserHash, l.Browser, l.Reason = nil, "", ""
	l.RequiredACR, l.ACR, l.AMR = "", "", nil
	full := encodeBinary(new(toLogin(l)))
	older := full[:len(full)-7] // the seven appended fields, each one byte when empty
	var r loginRecord
	if err := decodeBinary(older, &r); err != nil {
		t.Fatalf("a login written before its last seven fields existed: %v", err)
	}
	if got := fromLogin(r); !reflect.DeepEqual(got, l) {
		t.Errorf("read %+v\nwant %+v", got, l)
	}
	d := fullDevice
	d.Attestation, d.Push = "", storage.PushSubscription{}
	full = encodeBinary(new(toDevice(d)))
	var rd deviceRecord
	if err := decodeBinary(full[:len(full)-4], &rd); err != nil {
		t.Fatalf("a device written before its attestation and push subscription were recorded: %v", err)
	}
	if got := fromDevice(rd); !reflect.DeepEqual(got, d) {
		t.Errorf("read %+v\nwant %+v", got, d)
	}
	a := fullAccount
	a.EmailVerified, a.Lang = false, ""
	full = encodeBinary(new(toAccount(a)))
	var ra accountRecord
	if err := decodeBinary(full[:len(full)-2], &ra); err != nil { // the two appended fields, each one byte when empty
		t.Fatalf("an account written before its email was verified and its language recorded: %v", err)
	}
	if got := fromAccount(ra); !reflect.DeepEqual(got, a) {
		t.Errorf("read %+v\nwant %+v", got, a)
	}
	// An account written before the language, with its email verified, reads so.
	a.EmailVerified = true
	full = encodeBinary(new(toAccount(a)))
	if err := decodeBinary(full[:len(full)-1], &ra); err != nil {
		t.Fatalf("an account written before its language was recorded: %v", err)
	}
	if got := fromAccount(ra); !reflect.DeepEqual(got, a) {
		t.Errorf("read %+v\nwant %+v", got, a)
	}
}

// TestBinaryStringsStayPut checks that the strings of a decoded record, which share the
// record's one copy with its byte slices, change with neither: not when bbolt reuses the bytes
// it gave (the data, valid only in its transaction), not when a caller writes into or appends
// to a byte slice of the record.
func TestBinaryStringsStayPut(t *testing.T) {
	data := encodeBinary(new(toLogin(fullLogin)))
	var r loginRecord
	if err := decodeBinary(data, &r); err != nil {
		t.Fatal(err)
	}
	clear(data)
	l := fromLogin(r)
	for _, p := range append([][]byte{l.Hash, l.Request, l.CodeHash, l.WebAuthnSession, l.BrowserHash}, l.TokenHashes...) {
		for i := range p {
			p[i] = 'x'
		}
		_ = append(p, "more than the slice holds"...)
	}
	want := fullLogin
	got := fromLogin(r)
	got.Hash, got.Request, got.CodeHash, got.WebAuthnSession, got.BrowserHash, got.TokenHashes = want.Hash, want.Request, want.CodeHash, want.WebAuthnSession, want.BrowserHash, want.TokenHashes
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after the data and the byte slices were written over, the login reads\n%+v\nwant\n%+v", got, want)
	}
}

// TestBinaryRefusesDamage checks that a damaged binary record is an error, never a record with
// fields shifted or a huge allocation.
func TestBinaryRefusesDamage(t *testing.T) {
	good := encodeBinary(new(toDevice(fullDevice)))
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not a record of format 2"},
		{"JSON", []byte(`{"v":1}`), "not a record of format 2"},
		{"truncated", good[:len(good)-3], "truncated or malformed"},
		{"trailing bytes", append(good[:len(good):len(good)], 0), "bytes after the last field"},
		{"huge length", append([]byte{binaryFormat}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), "truncated or malformed string"},
		// Eight empty fields and a zero counter, then the transports: 2²⁸ of them.
		{"huge list", []byte{binaryFormat, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f}, "truncated or malformed list"},
		{"counter over 32 bits", []byte{binaryFormat, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x10}, "truncated or malformed 32-bit number"},
		// An empty device ends with the clone warning's "not set", an empty attestation and an
		// empty push subscription.
		{"boolean of 2", append(bytes.TrimSuffix(encodeBinary(new(toDevice(storage.Device{}))), []byte{0, 0, 0, 0, 0}), 2), "truncated or malformed boolean"},
	}
	for _, tc := range tests {
		var r deviceRecord
		if err := decodeBinary(tc.data, &r); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	// An account's appended fields are refused damaged as well: an empty account ends with its
	// email unverified and an empty language.
	account := encodeBinary(new(toAccount(fullAccount)))
	accountTests := []struct {
		name string
		data []byte
		want string
	}{
		{"email verified of 2", append(bytes.TrimSuffix(encodeBinary(new(toAccount(storage.Account{}))), []byte{0, 0}), 2), "truncated or malformed boolean"},
		{"language cut", account[:len(account)-1], "truncated or malformed string"},
		{"trailing bytes", append(account[:len(account):len(account)], 0), "bytes after the last field"},
	}
	for _, tc := range accountTests {
		var r accountRecord
		if err := decodeBinary(tc.data, &r); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("account %s: got %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}

// FuzzBinaryRecords decodes any bytes as each binary record: the decoder must not panic, and
// whatever it accepts must survive encoding and decoding again unchanged.
func FuzzBinaryRecords(f *testing.F) {
	older := fullAccount
	older.EmailVerified, older.Lang = false, ""
	olderAccount := encodeBinary(new(toAccount(older)))
	f.Add(olderAccount[:len(olderAccount)-2]) // written before EmailVerified and Lang
	for _, rec := range []binaryRecord{new(toAccount(fullAccount)), new(toDevice(fullDevice)), new(toLogin(fullLogin)), new(toLogin(storage.Login{TokenHashes: [][]byte{{}, nil}, Request: []byte{}}))} {
		f.Add(encodeBinary(rec))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		roundTrip(t, data, &accountRecord{}, &accountRecord{})
		roundTrip(t, data, &deviceRecord{}, &deviceRecord{})
		roundTrip(t, data, &loginRecord{}, &loginRecord{})
	})
}

func roundTrip[P binaryRecord](t *testing.T, data []byte, first, second P) {
	if decodeBinary(data, first) != nil {
		return
	}
	again := encodeBinary(first)
	if err := decodeBinary(again, second); err != nil {
		t.Fatalf("%T decoded from %x does not decode once encoded again: %v", first, data, err)
	}
	if !reflect.DeepEqual(first, second) {
		t.Fatalf("%T changed in a round trip:\n%+v\n%+v", first, first, second)
	}
}
