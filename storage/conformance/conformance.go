// Package conformance holds every storage test once. A backend's own test calls Run, so all
// backends are held to the same behaviour.
package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcert/mcert/storage"
)

// ctx has no deadline: callers pass context.Background(), and no backend may need more.
var ctx = context.Background()

// Run tests the stores newStore makes. newStore returns a new, empty store for one test and
// closes it when that test ends.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	t.Run("Challenge", func(t *testing.T) { testKind(t, newStore, challenges()) })
	t.Run("Session", func(t *testing.T) { testKind(t, newStore, sessions()) })
	t.Run("Account", func(t *testing.T) { testKind(t, newStore, accounts()) })
	t.Run("Binding", func(t *testing.T) { testKind(t, newStore, bindings()) })
	t.Run("Device", func(t *testing.T) { testKind(t, newStore, devices()) })
	t.Run("Client", func(t *testing.T) { testKind(t, newStore, clients()) })
	t.Run("Login", func(t *testing.T) { testKind(t, newStore, logins()) })
	t.Run("Token", func(t *testing.T) { testKind(t, newStore, tokens()) })
	t.Run("SigningKey", func(t *testing.T) { testKind(t, newStore, signingKeys()) })
	t.Run("ApproveLogin", func(t *testing.T) { testApproveLogin(t, newStore) })
	tests := []struct {
		name string
		test func(*testing.T, storage.Store)
	}{
		{"DeleteSession", testDelete(sessions(), func(s storage.Store, v storage.Session) error { return s.DeleteSession(ctx, v.Hash) })},
		{"DeleteClient", testDelete(clients(), func(s storage.Store, c storage.Client) error { return s.DeleteClient(ctx, c.ID) })},
		{"DeleteLogin", testDelete(logins(), func(s storage.Store, l storage.Login) error { return s.DeleteLogin(ctx, l.Hash) })},
		{"DeleteToken", testDelete(tokens(), func(s storage.Store, v storage.Token) error { return s.DeleteToken(ctx, v.ID) })},
		{"DeleteTokens", testDeleteTokens},
		{"DeleteClient/Tokens", testDeleteClientTokens},
		{"BindDevice/StoresBoth", testBindDevice},
		{"BindDevice/ClosureError", func(t *testing.T, s storage.Store) {
			b := binding(1)
			bindings().mustCreate(t, s, b)
			stop := errors.New("conformance: closure refused")
			testBindDeviceFails(t, s, b.ID, func(v storage.Binding) (storage.Binding, error) {
				v.Status = storage.BindingBound
				return v, stop
			}, stop)
			bindings().expect(t, s, b)
		}},
		{"BindDevice/UnknownBinding", func(t *testing.T, s storage.Store) {
			testBindDeviceFails(t, s, binding(1).ID, bindTo(device(0)), storage.ErrNotFound)
		}},
		{"UpdateLogin/EachTokenHash", testLoginTokenHashes},
		{"Secret/CreatesOnce", testSecret},
		{"Secret/Concurrent", testConcurrentSecret},
		{"Secret/Update", testUpdateSecret},
		{"GarbageCollect", testGarbageCollect},
		{"GarbageCollect/AfterUpdate/Challenge", testCollectAfterUpdate(challenges())},
		{"GarbageCollect/AfterUpdate/Binding", testCollectAfterUpdate(bindings())},
		{"GarbageCollect/AfterUpdate/Login", testCollectAfterUpdate(logins())},
		{"GarbageCollect/AfterUpdate/SigningKey", testCollectAfterUpdate(signingKeys())},
		{"ConcurrentUpdateDevice", testConcurrentUpdateDevice},
		{"ConcurrentUpdateDevice/Failing", testConcurrentFailingUpdates},
		{"Event/RoundTrip", testEventRoundTrip},
		{"Event/IDsIncrease", testEventIDs},
		{"Event/List", testListEvents},
		{"Event/Limit", testEventLimit},
		{"Event/BadCursor", testEventBadCursor},
		{"Event/KeptByGarbageCollect", testEventsKept},
		{"Event/Retention", testEventRetention},
		{"GarbageCollect/Batches", testGCBatches},
		{"Event/Concurrent", testConcurrentEvents},
		{"Hit/Counts", testHits(hitCounts())},
		{"Hit/Windows", testHits(hitWindows())},
		{"Hit/BadWindow", func(t *testing.T, s storage.Store) {
			for _, w := range []time.Duration{0, -time.Minute} {
				if _, err := s.Hit(ctx, "k", w, at(0)); err == nil {
					t.Errorf("Hit with a window of %v: got no error", w)
				}
				if _, err := s.Hits(ctx, "k", w, at(0)); err == nil {
					t.Errorf("Hits with a window of %v: got no error", w)
				}
			}
		}},
		{"Hit/Concurrent", testConcurrentHit},
		{"Hit/GarbageCollect", testHitGarbageCollect},
		{"Ping", func(t *testing.T, s storage.Store) {
			if err := s.Ping(ctx); err != nil {
				t.Errorf("Ping: %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, newStore(t)) })
	}
}

// kind describes one record type to the tests that every type shares.
type kind[T any] struct {
	// sample is the i-th of distinct records: even ones set every field, odd ones leave the
	// optional fields empty.
	sample func(i int) T
	create func(*testing.T, storage.Store, T) error
	gets   []getter[T]                                           // every way to read a record back
	update func(storage.Store, T, func(T) (T, error)) (T, error) // nil for a type without Update*
	change func(*T)                                              // a change an update may make
	unique []field[T]                                            // what no two records may share
	fixed  []field[T]                                            // what an update may not change
	// movable are the indexed fields an update may change: the index must follow them. Odd
	// samples leave each empty, taking the record out of that index.
	movable []field[T]
	expiry  func(*T) *time.Time // for a type GarbageCollect deletes
	list    *listing[T]         // for a type with a List* method
}

type getter[T any] struct {
	name string
	get  func(storage.Store, T) (T, error)
}

// field names one field and copies it from src into dst.
type field[T any] struct {
	name string
	copy func(dst *T, src T)
}

// listing is a List* method: the records of one owner (an account's devices), or every record,
// oldest first.
type listing[T any] struct {
	name    string
	list    func(s storage.Store, owner string) ([]T, error)
	owner   func(*T) *string // nil for a list of every record
	created func(*T) *time.Time
	id      func(T) string // tells records apart
	// listed says whether a record of an owner is in the owner's list, for a list of some of
	// them (waiting logins); nil: all are. include makes a sample one that is listed.
	listed  func(T) bool
	include func(*T)
}

// getter reads a record back by finding it, once, in its owner's list, which must hold no
// record of another owner. A record without an owner must be in no list; primary reads it back
// instead.
func (l listing[T]) getter(primary getter[T]) getter[T] {
	ownerOf := func(v T) string {
		if l.owner == nil {
			return ""
		}
		return *l.owner(&v)
	}
	return getter[T]{l.name, func(s storage.Store, v T) (T, error) {
		var zero T
		owner := ownerOf(v)
		list, err := l.list(s, owner)
		if err != nil {
			return zero, err
		}
		if l.owner != nil && owner == "" {
			if len(list) != 0 {
				return zero, fmt.Errorf("listed %d records for no owner, want none", len(list))
			}
			return primary.get(s, v)
		}
		if l.listed != nil && !l.listed(v) {
			if slices.ContainsFunc(list, func(got T) bool { return l.id(got) == l.id(v) }) {
				return zero, errors.New("the record is listed, but is not one the list holds")
			}
			return primary.get(s, v)
		}
		var found []T
		for _, got := range list {
			if ownerOf(got) != owner {
				return zero, fmt.Errorf("the list of %q holds a record of %q", owner, ownerOf(got))
			}
			if l.id(got) == l.id(v) {
				found = append(found, got)
			}
		}
		switch len(found) {
		case 0:
			return zero, storage.ErrNotFound
		case 1:
			return found[0], nil
		}
		return zero, fmt.Errorf("the record is listed %d times", len(found))
	}}
}

// byIndex reads a record back through an index that holds keys returns for it: each of them must
// find the same record. A record with no key must not be found by an empty key; primary reads
// it back instead.
func byIndex[T any](name string, keys func(T) [][]byte, lookup func(storage.Store, context.Context, []byte) (T, error), primary getter[T]) getter[T] {
	return getter[T]{name, func(s storage.Store, v T) (T, error) {
		var zero T
		ks := keys(v)
		if len(ks) == 0 {
			if _, err := lookup(s, ctx, nil); !errors.Is(err, storage.ErrNotFound) {
				return zero, fmt.Errorf("the empty key: got %v, want %v", err, storage.ErrNotFound)
			}
			return primary.get(s, v)
		}
		var first T
		for i, k := range ks {
			got, err := lookup(s, ctx, k)
			if err != nil {
				return zero, fmt.Errorf("key %d: %w", i, err)
			}
			if i == 0 {
				first = got
			} else if d := diff(got, first); len(d) != 0 {
				return zero, fmt.Errorf("keys 0 and %d find different records: %s", i, d)
			}
		}
		return first, nil
	}}
}

// keyIfSet is a record's one key in an index that leaves out records with an empty key.
func keyIfSet(key []byte) [][]byte {
	if len(key) == 0 {
		return nil
	}
	return [][]byte{key}
}

func testKind[T any](t *testing.T, newStore func(*testing.T) storage.Store, k kind[T]) {
	t.Run("RoundTrip", func(t *testing.T) {
		s := newStore(t)
		// Two of each shape: two records without an optional index key must not clash.
		for i := range 4 {
			k.mustCreate(t, s, k.sample(i))
			k.expect(t, s, k.sample(i))
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		s := newStore(t)
		k.mustCreate(t, s, k.sample(0))
		k.absent(t, s, k.sample(1))
	})
	for _, f := range k.unique {
		t.Run("AlreadyExists/"+f.name, func(t *testing.T) {
			s := newStore(t)
			k.mustCreate(t, s, k.sample(0))
			dup := k.sample(1)
			f.copy(&dup, k.sample(0))
			if err := k.create(t, s, dup); !errors.Is(err, storage.ErrAlreadyExists) {
				t.Errorf("create with a taken %s: got %v, want %v", f.name, err, storage.ErrAlreadyExists)
			}
			k.expect(t, s, k.sample(0))
		})
	}
	t.Run("NoAliasing", func(t *testing.T) {
		s := newStore(t)
		v := k.sample(0)
		k.mustCreate(t, s, v)
		scramble(&v)
		k.expect(t, s, k.sample(0))
		for _, g := range k.gets {
			if got, err := g.get(s, k.sample(0)); err == nil {
				scramble(&got)
			}
		}
		k.expect(t, s, k.sample(0))
		if k.update == nil {
			return
		}
		if got, err := k.update(s, k.sample(0), unchanged); err == nil {
			scramble(&got)
		}
		k.expect(t, s, k.sample(0))
	})
	if k.list != nil {
		t.Run("List", func(t *testing.T) { testList(t, newStore(t), k, *k.list) })
	}
	if k.update == nil {
		return
	}
	t.Run("Update/StoresResult", func(t *testing.T) {
		s := newStore(t)
		k.mustCreate(t, s, k.sample(0))
		want := k.sample(0)
		k.change(&want)
		var seen T
		got, err := k.update(s, k.sample(0), func(v T) (T, error) {
			seen = v
			k.change(&v)
			return v, nil
		})
		if err != nil {
			t.Fatalf("update: %v", err)
		}
		for _, d := range diff(seen, k.sample(0)) {
			t.Errorf("update closure was given %s", d)
		}
		for _, d := range diff(got, want) {
			t.Errorf("update returned %s", d)
		}
		k.expect(t, s, want)
	})
	t.Run("Update/ClosureError", func(t *testing.T) {
		s := newStore(t)
		k.mustCreate(t, s, k.sample(0))
		stop := errors.New("conformance: closure refused")
		_, err := k.update(s, k.sample(0), func(v T) (T, error) {
			// Changing v in place must not reach the store either.
			scramble(&v)
			return v, stop
		})
		if !errors.Is(err, stop) {
			t.Errorf("update: got %v, want the closure's error %v", err, stop)
		}
		k.expect(t, s, k.sample(0))
	})
	t.Run("Update/NotFound", func(t *testing.T) {
		s := newStore(t)
		k.mustCreate(t, s, k.sample(0))
		if _, err := k.update(s, k.sample(1), unchanged); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("update of an unknown record: got %v, want %v", err, storage.ErrNotFound)
		}
		k.absent(t, s, k.sample(1))
	})
	for _, f := range k.fixed {
		t.Run("Update/Immutable/"+f.name, func(t *testing.T) {
			s := newStore(t)
			k.mustCreate(t, s, k.sample(0))
			_, err := k.update(s, k.sample(0), func(v T) (T, error) {
				f.copy(&v, k.sample(1))
				return v, nil
			})
			if err == nil {
				t.Errorf("update changing %s: got no error", f.name)
			}
			k.expect(t, s, k.sample(0))
			k.absent(t, s, k.sample(1))
		})
	}
	for _, f := range k.movable {
		if slices.ContainsFunc(k.unique, func(u field[T]) bool { return u.name == f.name }) {
			t.Run("Update/AlreadyExists/"+f.name, func(t *testing.T) {
				s := newStore(t)
				// Even samples: both have a key to take.
				k.mustCreate(t, s, k.sample(0))
				k.mustCreate(t, s, k.sample(2))
				_, err := k.update(s, k.sample(0), func(v T) (T, error) {
					f.copy(&v, k.sample(2))
					return v, nil
				})
				if !errors.Is(err, storage.ErrAlreadyExists) {
					t.Errorf("update taking another record's %s: got %v, want %v", f.name, err, storage.ErrAlreadyExists)
				}
				k.expect(t, s, k.sample(0))
				k.expect(t, s, k.sample(2))
			})
		}
		t.Run("Update/Moves/"+f.name, func(t *testing.T) {
			s := newStore(t)
			prev := k.sample(0)
			k.mustCreate(t, s, prev)
			// First to the value of a record never stored, then to none: each time the record is
			// found by its new value, and what it had is left to another record alone.
			for step, from := range []int{2, 3} {
				next := prev
				f.copy(&next, k.sample(from))
				if _, err := k.update(s, prev, func(T) (T, error) { return next, nil }); err != nil {
					t.Fatalf("update of %s: %v", f.name, err)
				}
				k.expect(t, s, next)
				other := k.sample(4 + step)
				f.copy(&other, prev)
				k.mustCreate(t, s, other)
				k.expect(t, s, other)
				prev = next
			}
		})
	}
}

func (k kind[T]) mustCreate(t *testing.T, s storage.Store, v T) {
	t.Helper()
	if err := k.create(t, s, v); err != nil {
		t.Fatalf("create: %v", err)
	}
}

// expect fails t unless every way of reading want's record returns want.
func (k kind[T]) expect(t *testing.T, s storage.Store, want T) {
	t.Helper()
	for _, g := range k.gets {
		got, err := g.get(s, want)
		if err != nil {
			t.Errorf("%s: %v", g.name, err)
			continue
		}
		for _, d := range diff(got, want) {
			t.Errorf("%s: %s", g.name, d)
		}
	}
}

// absent fails t unless every way of reading v's record finds nothing.
func (k kind[T]) absent(t *testing.T, s storage.Store, v T) {
	t.Helper()
	for _, g := range k.gets {
		if _, err := g.get(s, v); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: got %v, want %v", g.name, err, storage.ErrNotFound)
		}
	}
}

func unchanged[T any](v T) (T, error) { return v, nil }

// diff lists the fields where got differs from want. Times must be the same instant and in UTC;
// nil and empty slices are alike, since not every database tells them apart.
func diff[T any](got, want T) []string {
	var out []string
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range g.NumField() {
		gf, wf := g.Field(i).Interface(), w.Field(i).Interface()
		if !same(gf, wf) {
			out = append(out, fmt.Sprintf("%s %v, want %v", g.Type().Field(i).Name, gf, inUTC(wf)))
		}
	}
	return out
}

func same(got, want any) bool {
	switch w := want.(type) {
	case time.Time:
		g := got.(time.Time)
		return g.Equal(w) && g.Location() == time.UTC
	case *time.Time:
		g := got.(*time.Time)
		if g == nil || w == nil {
			return g == nil && w == nil
		}
		return same(*g, *w)
	case []byte:
		return bytes.Equal(got.([]byte), w)
	case []string:
		return slices.Equal(got.([]string), w)
	case [][]byte:
		return slices.EqualFunc(got.([][]byte), w, bytes.Equal)
	}
	return got == want
}

// inUTC is v as a store returns it: a time in UTC.
func inUTC(v any) any {
	switch v := v.(type) {
	case time.Time:
		return v.UTC()
	case *time.Time:
		if v != nil {
			return v.UTC()
		}
	}
	return v
}

// scramble changes in place everything the struct *v shares by reference, so that a test can
// tell whether a store kept or handed out a reference instead of a copy.
func scramble(v any) {
	r := reflect.ValueOf(v).Elem()
	for i := range r.NumField() {
		switch f := r.Field(i).Interface().(type) {
		case []byte:
			for j := range f {
				f[j] ^= 0xff
			}
		case []string:
			for j := range f {
				f[j] += " scrambled"
			}
		case [][]byte:
			for _, b := range f {
				for j := range b {
					b[j] ^= 0xff
				}
			}
		case *time.Time:
			if f != nil {
				*f = f.Add(time.Hour)
			}
		}
	}
}

// at is the given minutes after a fixed instant, in a zone other than UTC and to the
// microsecond: a backend must keep the instant to the microsecond, the finest PostgreSQL keeps,
// and return it in UTC.
func at(minutes int) time.Time {
	return time.Date(2025, 3, 14, 15, 9, 26, 535_897_000, time.FixedZone("EET", 2*60*60)).Add(time.Duration(minutes) * time.Minute)
}

// hash stands for the SHA-256 of a secret.
func hash(what string, i int) []byte {
	h := sha256.Sum256(fmt.Appendf(nil, "%s %d", what, i))
	return h[:]
}

func challenge(i int) storage.Challenge {
	c := storage.Challenge{Hash: hash("challenge", i), CreatedAt: at(i), ExpiresAt: at(i + 5)}
	if i%2 == 0 {
		c.UsedAt = new(at(i + 1))
	}
	return c
}

func session(i int) storage.Session {
	return storage.Session{
		Hash:      hash("session", i),
		CitizenID: fmt.Sprintf("1103700%06d", i),
		Name:      fmt.Sprintf("Citizen %d", i),
		CreatedAt: at(i),
		ExpiresAt: at(i + 60),
	}
}

func account(i int) storage.Account {
	a := storage.Account{
		ID:         fmt.Sprintf("account-%d", i),
		CitizenID:  fmt.Sprintf("1103700%06d", i),
		Name:       fmt.Sprintf("Citizen %d", i),
		WebAuthnID: hash("user handle", i),
		Status:     storage.AccountActive,
		CreatedAt:  at(i),
		UpdatedAt:  at(i),
	}
	if i%2 == 0 {
		a.Email = fmt.Sprintf("citizen%d@example.org", i)
		a.Phone = fmt.Sprintf("+66 81 000 %04d", i)
	}
	return a
}

func binding(i int) storage.Binding {
	b := storage.Binding{
		ID:        fmt.Sprintf("binding-%d", i),
		TokenHash: hash("qr token", i),
		AccountID: fmt.Sprintf("account-%d", i),
		Status:    storage.BindingPending,
		CreatedAt: at(i),
		ExpiresAt: at(i + 2),
	}
	if i%2 == 0 {
		b.Status = storage.BindingBound
		b.SealedQR = hash("sealed qr", i)
		b.DeviceName = fmt.Sprintf("Phone %d", i)
		b.WebAuthnSession = fmt.Appendf(nil, `{"challenge":"%d"}`, i)
		b.DeviceID = fmt.Sprintf("device-%d", i)
	}
	return b
}

func device(i int) storage.Device {
	d := storage.Device{
		ID:           fmt.Sprintf("device-%d", i),
		AccountID:    fmt.Sprintf("account-%d", i),
		Name:         fmt.Sprintf("Phone %d", i),
		CredentialID: hash("credential", i),
		PublicKey:    hash("public key", i),
		Status:       storage.DeviceActive,
		CreatedAt:    at(i),
		ExpiresAt:    at(i + 365*24*60),
	}
	if i%2 == 0 {
		d.TokenHash = hash("device token", i)
		d.AttestationType = "basic_surrogate"
		d.AttestationFmt = "packed"
		d.AAGUID = hash("aaguid", i)[:16]
		d.SignCount = 7
		d.Transports = []string{"internal", "hybrid"}
		d.BackupEligible = true
		d.BackupState = true
		d.Status = storage.DeviceRevoked
		d.LastUsedAt = new(at(i + 10))
		d.RevokedAt = new(at(i + 20))
		d.CloneWarningAt = new(at(i + 15))
	}
	return d
}

func client(i int) storage.Client {
	c := storage.Client{
		ID:           fmt.Sprintf("client-%d", i),
		Name:         fmt.Sprintf("Relying party %d", i),
		RedirectURIs: []string{fmt.Sprintf("https://rp%d.example/callback", i)},
		CreatedAt:    at(i),
	}
	if i%2 == 0 {
		c.SecretHash = hash("client secret", i)
		c.RedirectURIs = append(c.RedirectURIs, fmt.Sprintf("https://rp%d.example/other", i))
		c.PostLogoutRedirectURIs = []string{fmt.Sprintf("https://rp%d.example/", i)}
		c.CitizenID, c.CIBA, c.IDTokenAlg, c.Disabled = true, true, "ES256", true
	}
	return c
}

// login is a pending redirect login when i is odd, with no key in any index but its Hash, and an
// approved CIBA login, in every index, when i is even.
func login(i int) storage.Login {
	l := storage.Login{
		Hash:           hash("login", i),
		Kind:           storage.LoginRedirect,
		ClientID:       fmt.Sprintf("client-%d", i),
		ClientName:     fmt.Sprintf("Relying party %d", i),
		Status:         storage.LoginPending,
		CreatedAt:      at(i),
		ExpiresAt:      at(i + 10),
		TokenExpiresAt: at(i + 2),
		TokenSerial:    1,
		Code:           fmt.Sprintf("%04d", i),
		Request:        fmt.Appendf(nil, `{"scope":"openid","nonce":"%d"}`, i),
	}
	if i%2 == 0 {
		l.Kind, l.Status, l.TokenSerial = storage.LoginCIBA, storage.LoginApproved, 2
		l.TokenHashes = [][]byte{hash("login token", i), hash("inbox token", i)}
		l.BindingMessage = fmt.Sprintf("Order %d", i)
		l.CodeHash = hash("authorization code", i)
		l.WebAuthnSession = fmt.Appendf(nil, `{"challenge":"%d"}`, i)
		l.LastPolledAt = new(at(i + 1))
		l.AccountID = fmt.Sprintf("account-%d", i)
		l.DeviceID = fmt.Sprintf("device-%d", i)
		l.AuthTime = new(at(i + 1))
	}
	return l
}

func token(i int) storage.Token {
	v := storage.Token{
		ID:        fmt.Sprintf("token-%d", i),
		ClientID:  fmt.Sprintf("client-%d", i),
		AccountID: fmt.Sprintf("account-%d", i),
		AuthTime:  at(i),
		CreatedAt: at(i + 1),
		ExpiresAt: at(i + 61),
	}
	if i%2 == 0 {
		v.Scopes = []string{"openid", "profile", "citizen_id"}
	}
	return v
}

func signingKey(i int) storage.SigningKey {
	k := storage.SigningKey{
		ID:         fmt.Sprintf("key-%d", i),
		Algorithm:  "ES256",
		PrivateKey: hash("private key", i),
		CreatedAt:  at(i),
	}
	if i%2 == 0 {
		k.Algorithm = "RS256"
		k.RetireAt = new(at(i + 24*60))
	}
	return k
}

func challenges() kind[storage.Challenge] {
	return kind[storage.Challenge]{
		sample: challenge,
		create: func(_ *testing.T, s storage.Store, c storage.Challenge) error { return s.CreateChallenge(ctx, c) },
		// A challenge is only ever read by updating it.
		gets: []getter[storage.Challenge]{{"UpdateChallenge", func(s storage.Store, c storage.Challenge) (storage.Challenge, error) {
			return s.UpdateChallenge(ctx, c.Hash, unchanged)
		}}},
		update: func(s storage.Store, c storage.Challenge, fn func(storage.Challenge) (storage.Challenge, error)) (storage.Challenge, error) {
			return s.UpdateChallenge(ctx, c.Hash, fn)
		},
		change: func(c *storage.Challenge) { c.UsedAt = new(at(3)) },
		unique: []field[storage.Challenge]{{"Hash", func(dst *storage.Challenge, src storage.Challenge) { dst.Hash = src.Hash }}},
		expiry: func(c *storage.Challenge) *time.Time { return &c.ExpiresAt },
	}
}

func sessions() kind[storage.Session] {
	return kind[storage.Session]{
		sample: session,
		create: func(_ *testing.T, s storage.Store, v storage.Session) error { return s.CreateSession(ctx, v) },
		gets: []getter[storage.Session]{{"GetSession", func(s storage.Store, v storage.Session) (storage.Session, error) {
			return s.GetSession(ctx, v.Hash)
		}}},
		unique: []field[storage.Session]{{"Hash", func(dst *storage.Session, src storage.Session) { dst.Hash = src.Hash }}},
		expiry: func(v *storage.Session) *time.Time { return &v.ExpiresAt },
	}
}

func accounts() kind[storage.Account] {
	fields := []field[storage.Account]{
		{"ID", func(dst *storage.Account, src storage.Account) { dst.ID = src.ID }},
		{"CitizenID", func(dst *storage.Account, src storage.Account) { dst.CitizenID = src.CitizenID }},
	}
	return kind[storage.Account]{
		sample: account,
		create: func(_ *testing.T, s storage.Store, a storage.Account) error { return s.CreateAccount(ctx, a) },
		gets: []getter[storage.Account]{
			{"GetAccount", func(s storage.Store, a storage.Account) (storage.Account, error) { return s.GetAccount(ctx, a.ID) }},
			{"GetAccountByCitizen", func(s storage.Store, a storage.Account) (storage.Account, error) {
				return s.GetAccountByCitizen(ctx, a.CitizenID)
			}},
		},
		update: func(s storage.Store, a storage.Account, fn func(storage.Account) (storage.Account, error)) (storage.Account, error) {
			return s.UpdateAccount(ctx, a.ID, fn)
		},
		change: func(a *storage.Account) {
			a.Email, a.Phone, a.Status, a.UpdatedAt = "", "+66 81 999 0000", storage.AccountSuspended, at(30)
		},
		unique: fields,
		fixed:  fields,
	}
}

func bindings() kind[storage.Binding] {
	fields := []field[storage.Binding]{
		{"ID", func(dst *storage.Binding, src storage.Binding) { dst.ID = src.ID }},
		{"TokenHash", func(dst *storage.Binding, src storage.Binding) { dst.TokenHash = src.TokenHash }},
	}
	return kind[storage.Binding]{
		sample: binding,
		create: func(_ *testing.T, s storage.Store, b storage.Binding) error { return s.CreateBinding(ctx, b) },
		gets: []getter[storage.Binding]{
			{"GetBinding", func(s storage.Store, b storage.Binding) (storage.Binding, error) { return s.GetBinding(ctx, b.ID) }},
			{"GetBindingByToken", func(s storage.Store, b storage.Binding) (storage.Binding, error) {
				return s.GetBindingByToken(ctx, b.TokenHash)
			}},
		},
		update: func(s storage.Store, b storage.Binding, fn func(storage.Binding) (storage.Binding, error)) (storage.Binding, error) {
			return s.UpdateBinding(ctx, b.ID, fn)
		},
		change: func(b *storage.Binding) {
			b.Status, b.SealedQR, b.WebAuthnSession = storage.BindingScanned, nil, []byte(`{"challenge":"scanned"}`)
		},
		unique: fields,
		fixed:  fields,
		expiry: func(b *storage.Binding) *time.Time { return &b.ExpiresAt },
	}
}

func devices() kind[storage.Device] {
	id := field[storage.Device]{"ID", func(dst *storage.Device, src storage.Device) { dst.ID = src.ID }}
	credential := field[storage.Device]{"CredentialID", func(dst *storage.Device, src storage.Device) { dst.CredentialID = src.CredentialID }}
	account := field[storage.Device]{"AccountID", func(dst *storage.Device, src storage.Device) { dst.AccountID = src.AccountID }}
	token := field[storage.Device]{"TokenHash", func(dst *storage.Device, src storage.Device) { dst.TokenHash = src.TokenHash }}
	get := getter[storage.Device]{"GetDevice", func(s storage.Store, d storage.Device) (storage.Device, error) { return s.GetDevice(ctx, d.ID) }}
	list := listing[storage.Device]{
		name: "ListDevices",
		list: func(s storage.Store, accountID string) ([]storage.Device, error) {
			return s.ListDevices(ctx, accountID)
		},
		owner:   func(d *storage.Device) *string { return &d.AccountID },
		created: func(d *storage.Device) *time.Time { return &d.CreatedAt },
		id:      func(d storage.Device) string { return d.ID },
	}
	return kind[storage.Device]{
		sample: device,
		create: bindNew,
		gets: []getter[storage.Device]{
			get,
			{"GetDeviceByCredential", func(s storage.Store, d storage.Device) (storage.Device, error) {
				return s.GetDeviceByCredential(ctx, d.CredentialID)
			}},
			byIndex("GetDeviceByToken", func(d storage.Device) [][]byte { return keyIfSet(d.TokenHash) }, storage.Store.GetDeviceByToken, get),
			list.getter(get),
		},
		update: func(s storage.Store, d storage.Device, fn func(storage.Device) (storage.Device, error)) (storage.Device, error) {
			return s.UpdateDevice(ctx, d.ID, fn)
		},
		// Moving CreatedAt tests that ListDevices still finds the device after an update.
		change: func(d *storage.Device) {
			d.SignCount, d.LastUsedAt, d.RevokedAt, d.CreatedAt = d.SignCount+1, new(at(30)), nil, at(-60)
			d.TokenHash, d.CloneWarningAt = hash("device token", 100), new(at(31))
		},
		unique:  []field[storage.Device]{id, credential, token},
		fixed:   []field[storage.Device]{id, account, credential},
		movable: []field[storage.Device]{token},
		list:    &list,
	}
}

func clients() kind[storage.Client] {
	id := field[storage.Client]{"ID", func(dst *storage.Client, src storage.Client) { dst.ID = src.ID }}
	get := getter[storage.Client]{"GetClient", func(s storage.Store, c storage.Client) (storage.Client, error) { return s.GetClient(ctx, c.ID) }}
	list := listing[storage.Client]{
		name:    "ListClients",
		list:    func(s storage.Store, _ string) ([]storage.Client, error) { return s.ListClients(ctx) },
		created: func(c *storage.Client) *time.Time { return &c.CreatedAt },
		id:      func(c storage.Client) string { return c.ID },
	}
	return kind[storage.Client]{
		sample: client,
		create: func(_ *testing.T, s storage.Store, c storage.Client) error { return s.CreateClient(ctx, c) },
		gets:   []getter[storage.Client]{get, list.getter(get)},
		update: func(s storage.Store, c storage.Client, fn func(storage.Client) (storage.Client, error)) (storage.Client, error) {
			return s.UpdateClient(ctx, c.ID, fn)
		},
		change: func(c *storage.Client) {
			c.SecretHash, c.Name, c.CIBA, c.Disabled = hash("client secret", 100), "Renamed relying party", !c.CIBA, !c.Disabled
			c.RedirectURIs, c.PostLogoutRedirectURIs = []string{"https://renamed.example/callback"}, nil
		},
		unique: []field[storage.Client]{id},
		fixed:  []field[storage.Client]{id},
		list:   &list,
	}
}

func logins() kind[storage.Login] {
	id := field[storage.Login]{"Hash", func(dst *storage.Login, src storage.Login) { dst.Hash = src.Hash }}
	// UpdateLogin/EachTokenHash tests the hashes one by one.
	tokenHashes := field[storage.Login]{"TokenHashes", func(dst *storage.Login, src storage.Login) { dst.TokenHashes = src.TokenHashes }}
	code := field[storage.Login]{"CodeHash", func(dst *storage.Login, src storage.Login) { dst.CodeHash = src.CodeHash }}
	account := field[storage.Login]{"AccountID", func(dst *storage.Login, src storage.Login) { dst.AccountID = src.AccountID }}
	get := getter[storage.Login]{"GetLogin", func(s storage.Store, l storage.Login) (storage.Login, error) { return s.GetLogin(ctx, l.Hash) }}
	list := listing[storage.Login]{
		name: "ListWaitingLogins",
		list: func(s storage.Store, accountID string) ([]storage.Login, error) {
			return s.ListWaitingLogins(ctx, accountID)
		},
		owner:   func(l *storage.Login) *string { return &l.AccountID },
		created: func(l *storage.Login) *time.Time { return &l.CreatedAt },
		id:      func(l storage.Login) string { return string(l.Hash) },
		listed:  storage.Login.Waiting,
		include: func(l *storage.Login) { l.Kind, l.Status = storage.LoginCIBA, storage.LoginPending },
	}
	return kind[storage.Login]{
		sample: login,
		create: func(_ *testing.T, s storage.Store, l storage.Login) error { return s.CreateLogin(ctx, l) },
		gets: []getter[storage.Login]{
			get,
			byIndex("GetLoginByToken", func(l storage.Login) [][]byte { return l.TokenHashes }, storage.Store.GetLoginByToken, get),
			byIndex("GetLoginByCode", func(l storage.Login) [][]byte { return keyIfSet(l.CodeHash) }, storage.Store.GetLoginByCode, get),
			list.getter(get),
		},
		update: func(s storage.Store, l storage.Login, fn func(storage.Login) (storage.Login, error)) (storage.Login, error) {
			return s.UpdateLogin(ctx, l.Hash, fn)
		},
		// Every index moves: the tokens, the code, the account and the creation time.
		change: func(l *storage.Login) {
			l.Status, l.TokenSerial, l.TokenExpiresAt = storage.LoginDone, l.TokenSerial+1, at(40)
			l.TokenHashes, l.CodeHash = [][]byte{hash("login token", 100)}, hash("authorization code", 100)
			l.WebAuthnSession, l.LastPolledAt = nil, new(at(3))
			l.AccountID, l.DeviceID, l.AuthTime, l.CreatedAt = "account-100", "device-100", new(at(4)), at(-60)
		},
		unique:  []field[storage.Login]{id, tokenHashes, code},
		fixed:   []field[storage.Login]{id},
		movable: []field[storage.Login]{tokenHashes, code, account},
		expiry:  func(l *storage.Login) *time.Time { return &l.ExpiresAt },
		list:    &list,
	}
}

func tokens() kind[storage.Token] {
	return kind[storage.Token]{
		sample: token,
		create: func(_ *testing.T, s storage.Store, v storage.Token) error { return s.CreateToken(ctx, v) },
		gets: []getter[storage.Token]{{"GetToken", func(s storage.Store, v storage.Token) (storage.Token, error) {
			return s.GetToken(ctx, v.ID)
		}}},
		unique: []field[storage.Token]{{"ID", func(dst *storage.Token, src storage.Token) { dst.ID = src.ID }}},
		expiry: func(v *storage.Token) *time.Time { return &v.ExpiresAt },
	}
}

func signingKeys() kind[storage.SigningKey] {
	id := field[storage.SigningKey]{"ID", func(dst *storage.SigningKey, src storage.SigningKey) { dst.ID = src.ID }}
	list := listing[storage.SigningKey]{
		name:    "ListSigningKeys",
		list:    func(s storage.Store, _ string) ([]storage.SigningKey, error) { return s.ListSigningKeys(ctx) },
		created: func(k *storage.SigningKey) *time.Time { return &k.CreatedAt },
		id:      func(k storage.SigningKey) string { return k.ID },
	}
	return kind[storage.SigningKey]{
		sample: signingKey,
		create: func(_ *testing.T, s storage.Store, k storage.SigningKey) error { return s.CreateSigningKey(ctx, k) },
		// Signing keys are only ever read as a list; a list of every record needs no other getter.
		gets: []getter[storage.SigningKey]{list.getter(getter[storage.SigningKey]{})},
		update: func(s storage.Store, k storage.SigningKey, fn func(storage.SigningKey) (storage.SigningKey, error)) (storage.SigningKey, error) {
			return s.UpdateSigningKey(ctx, k.ID, fn)
		},
		change: func(k *storage.SigningKey) { k.RetireAt = new(at(90)) },
		unique: []field[storage.SigningKey]{id},
		fixed:  []field[storage.SigningKey]{id},
		// Only a retired key goes: the expiry it is given is its RetireAt.
		expiry: func(k *storage.SigningKey) *time.Time {
			k.RetireAt = new(time.Time)
			return k.RetireAt
		},
		list: &list,
	}
}

// bindNew stores d as mcert makes every device: through a new pending binding. When that fails,
// the binding must be as it was.
func bindNew(t *testing.T, s storage.Store, d storage.Device) error {
	t.Helper()
	b := storage.Binding{
		ID:        rand.Text(),
		AccountID: d.AccountID,
		Status:    storage.BindingPending,
		CreatedAt: d.CreatedAt,
		ExpiresAt: d.CreatedAt.Add(2 * time.Minute),
	}
	b.TokenHash = hash(b.ID, 0)
	bindings().mustCreate(t, s, b)
	_, err := s.BindDevice(ctx, b.ID, d, bindTo(d))
	if err != nil {
		bindings().expect(t, s, b)
	}
	return err
}

func bindTo(d storage.Device) func(storage.Binding) (storage.Binding, error) {
	return func(b storage.Binding) (storage.Binding, error) {
		b.Status, b.DeviceID = storage.BindingBound, d.ID
		return b, nil
	}
}

// testDelete checks that del removes one record, from every lookup, and no other; that its keys
// are free again; and that deleting it again is ErrNotFound.
func testDelete[T any](k kind[T], del func(storage.Store, T) error) func(*testing.T, storage.Store) {
	return func(t *testing.T, s storage.Store) {
		gone, kept := k.sample(0), k.sample(1)
		k.mustCreate(t, s, gone)
		k.mustCreate(t, s, kept)
		if err := del(s, gone); err != nil {
			t.Fatalf("delete: %v", err)
		}
		k.absent(t, s, gone)
		k.expect(t, s, kept)
		if err := del(s, gone); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("delete of a deleted record: got %v, want %v", err, storage.ErrNotFound)
		}
		if err := k.create(t, s, gone); err != nil {
			t.Errorf("create again after delete: %v", err)
		}
	}
}

func testDeleteTokens(t *testing.T, s storage.Store) {
	grant := func(i int, accountID, clientID string) storage.Token {
		v := token(i)
		v.AccountID, v.ClientID = accountID, clientID
		return v
	}
	gone := []storage.Token{grant(0, "account-1", "client-1"), grant(1, "account-1", "client-1"), grant(2, "account-1", "client-1")}
	// IDs that start with the others' catch a prefix scan without separators.
	kept := []storage.Token{
		grant(3, "account-1", "client-10"),
		grant(4, "account-10", "client-1"),
		grant(5, "account-1", "client-2"),
		grant(6, "account-2", "client-1"),
	}
	for _, v := range slices.Concat(gone, kept) {
		tokens().mustCreate(t, s, v)
	}
	if n, err := s.DeleteTokens(ctx, "account-1", "client-1"); err != nil || n != len(gone) {
		t.Errorf("DeleteTokens: got %d and %v, want %d and no error", n, err, len(gone))
	}
	for _, v := range gone {
		tokens().absent(t, s, v)
	}
	for _, v := range kept {
		tokens().expect(t, s, v)
	}
	if n, err := s.DeleteTokens(ctx, "account-1", "client-1"); err != nil || n != 0 {
		t.Errorf("DeleteTokens again: got %d and %v, want 0 and no error", n, err)
	}
}

// testDeleteClientTokens: a deleted client's tokens go with it, every account's, and no other
// client's.
func testDeleteClientTokens(t *testing.T, s storage.Store) {
	gone, kept := client(1), client(10) // IDs that start alike catch a prefix scan without separators
	clients().mustCreate(t, s, gone)
	clients().mustCreate(t, s, kept)
	grant := func(i int, accountID string, c storage.Client) storage.Token {
		v := token(i)
		v.AccountID, v.ClientID = accountID, c.ID
		return v
	}
	deleted := []storage.Token{grant(0, "account-1", gone), grant(1, "account-2", gone)}
	others := []storage.Token{grant(2, "account-1", kept), grant(3, "account-2", kept)}
	for _, v := range slices.Concat(deleted, others) {
		tokens().mustCreate(t, s, v)
	}
	if err := s.DeleteClient(ctx, gone.ID); err != nil {
		t.Fatalf("DeleteClient: %v", err)
	}
	clients().absent(t, s, gone)
	for _, v := range deleted {
		tokens().absent(t, s, v)
	}
	clients().expect(t, s, kept)
	for _, v := range others {
		tokens().expect(t, s, v)
	}
}

func testBindDevice(t *testing.T, s storage.Store) {
	b, d := binding(1), device(0)
	bindings().mustCreate(t, s, b)
	got, err := s.BindDevice(ctx, b.ID, d, bindTo(d))
	if err != nil {
		t.Fatalf("BindDevice: %v", err)
	}
	want := b
	want.Status, want.DeviceID = storage.BindingBound, d.ID
	for _, d := range diff(got, want) {
		t.Errorf("BindDevice returned %s", d)
	}
	bindings().expect(t, s, want)
	devices().expect(t, s, d)
}

// testBindDeviceFails checks that a BindDevice failing with want creates no device.
func testBindDeviceFails(t *testing.T, s storage.Store, bindingID string, update func(storage.Binding) (storage.Binding, error), want error) {
	t.Helper()
	if _, err := s.BindDevice(ctx, bindingID, device(0), update); !errors.Is(err, want) {
		t.Errorf("BindDevice: got %v, want %v", err, want)
	}
	devices().absent(t, s, device(0))
}

// testList checks that a List* method returns its owner's records, oldest first, and no others.
func testList[T any](t *testing.T, s storage.Store, k kind[T], l listing[T]) {
	// Neither the order of creation nor that of the IDs is the order of CreatedAt, so that only
	// a store that sorts by CreatedAt passes.
	var want []T
	for i, minutes := range []int{20, 0, 30, 10} {
		v := k.sample(i)
		*l.created(&v) = at(minutes)
		if l.owner != nil {
			*l.owner(&v) = "account-1"
		}
		if l.include != nil {
			l.include(&v)
		}
		k.mustCreate(t, s, v)
		want = append(want, v)
	}
	if l.listed != nil { // and one of the owner's records that the list does not hold
		v := k.sample(8)
		*l.owner(&v) = "account-1"
		if l.listed(v) {
			t.Fatalf("%s: sample 8 is listed; the test needs one that is not", l.name)
		}
		k.mustCreate(t, s, v)
	}
	slices.SortFunc(want, func(a, b T) int { return l.created(&a).Compare(*l.created(&b)) })
	if l.owner != nil {
		// An owner ID that starts with the other catches a prefix scan without a separator.
		other := k.sample(9)
		*l.owner(&other) = "account-10"
		k.mustCreate(t, s, other)
	}

	got, err := l.list(s, "account-1")
	if err != nil {
		t.Fatalf("%s: %v", l.name, err)
	}
	if len(got) != len(want) {
		t.Fatalf("%s returned %d records, want %d", l.name, len(got), len(want))
	}
	for i := range want {
		for _, d := range diff(got[i], want[i]) {
			t.Errorf("%s[%d]: %s", l.name, i, d)
		}
	}
	if l.owner == nil {
		return
	}
	if got, err := l.list(s, "account-2"); err != nil || len(got) != 0 {
		t.Errorf("%s of an owner without records: got %d records and %v, want none and no error", l.name, len(got), err)
	}
}

func testGarbageCollect(t *testing.T, s storage.Store) {
	cutoff := at(60)
	checks := []func(){
		seedAroundCutoff(t, s, challenges(), cutoff),
		seedAroundCutoff(t, s, sessions(), cutoff),
		seedAroundCutoff(t, s, bindings(), cutoff),
		seedAroundCutoff(t, s, logins(), cutoff),
		seedAroundCutoff(t, s, tokens(), cutoff),
		seedAroundCutoff(t, s, signingKeys(), cutoff),
	}
	// Accounts and devices stay however old, even when the binding that made the device goes;
	// clients stay, and so does a signing key not yet retired, however old.
	a := account(0)
	accounts().mustCreate(t, s, a)
	d := device(0)
	d.ExpiresAt = at(0)
	if _, err := s.BindDevice(ctx, binding(0).ID, d, bindTo(d)); err != nil {
		t.Fatalf("BindDevice: %v", err)
	}
	c := client(0)
	clients().mustCreate(t, s, c)
	k := signingKey(3)
	k.CreatedAt = at(-24 * 60)
	signingKeys().mustCreate(t, s, k)

	got, err := s.GarbageCollect(ctx, storage.GCPolicy{ExpiredBefore: cutoff})
	if want := (storage.GCResult{Challenges: 1, Sessions: 1, Bindings: 1, Logins: 1, Tokens: 1, SigningKeys: 1}); err != nil || got != want {
		t.Errorf("GarbageCollect: got %+v and %v, want %+v", got, err, want)
	}
	if got, err := s.GarbageCollect(ctx, storage.GCPolicy{ExpiredBefore: cutoff}); err != nil || got != (storage.GCResult{}) {
		t.Errorf("GarbageCollect again: got %+v and %v, want nothing deleted", got, err)
	}
	for _, check := range checks {
		check()
	}
	accounts().expect(t, s, a)
	devices().expect(t, s, d)
	clients().expect(t, s, c)
	signingKeys().expect(t, s, k)
}

// testCollectAfterUpdate checks that GarbageCollect goes by the expiry a record has now, not
// the one it was created with: an update moves one record's expiry past the cutoff and
// another's before it.
func testCollectAfterUpdate[T any](k kind[T]) func(*testing.T, storage.Store) {
	return func(t *testing.T, s storage.Store) {
		cutoff := at(60)
		kept, gone := k.sample(1), k.sample(2)
		*k.expiry(&kept), *k.expiry(&gone) = cutoff.Add(-time.Minute), cutoff.Add(time.Minute)
		k.mustCreate(t, s, kept)
		k.mustCreate(t, s, gone)
		for _, u := range []struct {
			v  *T
			at time.Time
		}{{&kept, cutoff.Add(time.Minute)}, {&gone, cutoff.Add(-time.Minute)}} {
			got, err := k.update(s, *u.v, func(v T) (T, error) {
				*k.expiry(&v) = u.at
				return v, nil
			})
			if err != nil {
				t.Fatalf("update of the expiry: %v", err)
			}
			*u.v = got
		}
		if _, err := s.GarbageCollect(ctx, storage.GCPolicy{ExpiredBefore: cutoff}); err != nil {
			t.Fatalf("GarbageCollect: %v", err)
		}
		k.expect(t, s, kept)
		k.absent(t, s, gone)
	}
}

// seedAroundCutoff stores three records of k, expiring just before, at and just after cutoff.
// It returns a check that only the first is gone, by every lookup, and that its keys are free.
func seedAroundCutoff[T any](t *testing.T, s storage.Store, k kind[T], cutoff time.Time) func() {
	t.Helper()
	var records []T
	for i, offset := range []time.Duration{-time.Microsecond, 0, time.Microsecond} {
		v := k.sample(i)
		*k.expiry(&v) = cutoff.Add(offset)
		k.mustCreate(t, s, v)
		records = append(records, v)
	}
	return func() {
		t.Helper()
		k.absent(t, s, records[0])
		k.expect(t, s, records[1])
		k.expect(t, s, records[2])
		if err := k.create(t, s, records[0]); err != nil {
			t.Errorf("create again after GarbageCollect: %v", err)
		}
	}
}

// testLoginTokenHashes checks that each of a login's token hashes is an index key of its own.
func testLoginTokenHashes(t *testing.T, s storage.Store) {
	l, other := login(0), login(2)
	logins().mustCreate(t, s, l)
	a, b, n := l.TokenHashes[0], l.TokenHashes[1], hash("login token", 100)

	// Only the second hash is taken.
	dup := other
	dup.TokenHashes = [][]byte{other.TokenHashes[0], b}
	if err := s.CreateLogin(ctx, dup); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("CreateLogin with a taken second token hash: got %v, want %v", err, storage.ErrAlreadyExists)
	}
	logins().absent(t, s, dup)

	// Replace the first, in place as a closure may: it is free at once, the others find the login.
	l.TokenHashes = [][]byte{b, n}
	if _, err := s.UpdateLogin(ctx, l.Hash, func(v storage.Login) (storage.Login, error) {
		v.TokenHashes[0], v.TokenHashes[1] = b, n
		return v, nil
	}); err != nil {
		t.Fatalf("UpdateLogin replacing a token hash: %v", err)
	}
	if _, err := s.GetLoginByToken(ctx, a); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetLoginByToken of the replaced hash: got %v, want %v", err, storage.ErrNotFound)
	}
	logins().expect(t, s, l)
	other.TokenHashes = [][]byte{a}
	logins().mustCreate(t, s, other)
	logins().expect(t, s, other)

	// Adding another login's hash, as the inbox does, fails and changes neither.
	if _, err := s.UpdateLogin(ctx, l.Hash, func(v storage.Login) (storage.Login, error) {
		v.TokenHashes = append(v.TokenHashes, hash("login token", 101), a)
		return v, nil
	}); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Errorf("UpdateLogin adding another login's token hash: got %v, want %v", err, storage.ErrAlreadyExists)
	}
	if _, err := s.GetLoginByToken(ctx, hash("login token", 101)); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetLoginByToken of a hash added by a failed update: got %v, want %v", err, storage.ErrNotFound)
	}
	logins().expect(t, s, l)
	logins().expect(t, s, other)
}

// testApproveLogin checks that ApproveLogin writes the login and the device together, or neither.
func testApproveLogin(t *testing.T, newStore func(*testing.T) storage.Store) {
	l, d, taken, e := login(1), device(0), login(2), event(2)
	approve := func(v storage.Login) (storage.Login, error) {
		v.Status, v.CodeHash = storage.LoginApproved, hash("authorization code", 1)
		v.AccountID, v.DeviceID, v.AuthTime = d.AccountID, d.ID, new(at(5))
		return v, nil
	}
	use := func(v storage.Device) (storage.Device, error) {
		v.SignCount, v.LastUsedAt = v.SignCount+1, new(at(5))
		return v, nil
	}
	setup := func(t *testing.T) storage.Store {
		s := newStore(t)
		logins().mustCreate(t, s, l)
		logins().mustCreate(t, s, taken)
		devices().mustCreate(t, s, d)
		return s
	}

	t.Run("StoresBoth", func(t *testing.T) {
		s := setup(t)
		wantLogin, _ := approve(l)
		wantDevice, _ := use(d)
		gotLogin, gotDevice, err := s.ApproveLogin(ctx, l.Hash, d.ID, approve, use, e)
		if err != nil {
			t.Fatalf("ApproveLogin: %v", err)
		}
		got, err := s.ListEvents(ctx, "", "", 10)
		if err != nil || len(got) != 1 {
			t.Fatalf("ListEvents after ApproveLogin: got %d events and %v, want its event", len(got), err)
		}
		if got[0].ID == "" {
			t.Errorf("the approval's event has no ID")
		}
		wantEvent := e
		wantEvent.ID = got[0].ID
		for _, d := range diff(got[0], wantEvent) {
			t.Errorf("the approval's event: %s", d)
		}
		for _, d := range diff(gotLogin, wantLogin) {
			t.Errorf("ApproveLogin returned login %s", d)
		}
		for _, d := range diff(gotDevice, wantDevice) {
			t.Errorf("ApproveLogin returned device %s", d)
		}
		logins().expect(t, s, wantLogin)
		devices().expect(t, s, wantDevice)
	})

	stop := errors.New("conformance: closure refused")
	tests := []struct {
		name         string
		hash         []byte
		deviceID     string
		updateLogin  func(storage.Login) (storage.Login, error)
		updateDevice func(storage.Device) (storage.Device, error)
		want         error
	}{
		{"LoginClosureError", l.Hash, d.ID, func(v storage.Login) (storage.Login, error) {
			scramble(&v)
			return v, stop
		}, use, stop},
		{"DeviceClosureError", l.Hash, d.ID, approve, func(v storage.Device) (storage.Device, error) {
			scramble(&v)
			return v, stop
		}, stop},
		{"UnknownLogin", login(3).Hash, d.ID, approve, use, storage.ErrNotFound},
		{"UnknownDevice", l.Hash, device(1).ID, approve, use, storage.ErrNotFound},
		{"TakenCode", l.Hash, d.ID, func(v storage.Login) (storage.Login, error) {
			v, _ = approve(v)
			v.CodeHash = taken.CodeHash
			return v, nil
		}, use, storage.ErrAlreadyExists},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := setup(t)
			_, _, err := s.ApproveLogin(ctx, tc.hash, tc.deviceID, tc.updateLogin, tc.updateDevice, e)
			if !errors.Is(err, tc.want) {
				t.Errorf("ApproveLogin: got %v, want %v", err, tc.want)
			}
			expectEvents(t, s, "", "", 10, nil)
			logins().expect(t, s, l)
			logins().expect(t, s, taken)
			devices().expect(t, s, d)
		})
	}
}

// testSecret checks that Secret creates each named secret once, and keeps it apart from the
// slices it was given and gave out: every call changes both afterwards.
func testSecret(t *testing.T, s storage.Store) {
	tests := []struct {
		name   string
		create string // what create returns
		want   string
	}{
		{"a", "first", "first"},
		{"a", "second", "first"},
		{"b", "other", "other"},
		{"b", "again", "other"},
		{"a", "third", "first"},
	}
	for i, tc := range tests {
		created := []byte(tc.create)
		got, err := s.Secret(ctx, tc.name, func() []byte { return created })
		if err != nil || string(got) != tc.want {
			t.Errorf("call %d, Secret(%q): got %q and %v, want %q", i, tc.name, got, err, tc.want)
		}
		scramble(&struct{ Created, Got []byte }{created, got})
	}
}

// testUpdateSecret checks that UpdateSecret replaces a secret's value for later calls of Secret,
// leaves it as it was when update fails, and finds no secret that was never created.
func testUpdateSecret(t *testing.T, s storage.Store) {
	if _, err := s.Secret(ctx, "a", func() []byte { return []byte("plain") }); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("conformance: update refused")
	if _, err := s.UpdateSecret(ctx, "a", func([]byte) ([]byte, error) { return []byte("lost"), stop }); !errors.Is(err, stop) {
		t.Errorf("failing UpdateSecret: %v, want the update's error", err)
	}
	got, err := s.UpdateSecret(ctx, "a", func(v []byte) ([]byte, error) { return append([]byte("sealed "), v...), nil })
	if err != nil || string(got) != "sealed plain" {
		t.Fatalf("UpdateSecret: got %q and %v, want %q", got, err, "sealed plain")
	}
	scramble(&struct{ Got []byte }{got})
	if later, err := s.Secret(ctx, "a", func() []byte { return []byte("new") }); err != nil || string(later) != "sealed plain" {
		t.Errorf("Secret after UpdateSecret: got %q and %v, want %q", later, err, "sealed plain")
	}
	if _, err := s.UpdateSecret(ctx, "none", func(v []byte) ([]byte, error) { return v, nil }); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UpdateSecret of a secret never created: %v, want ErrNotFound", err)
	}
}

// testConcurrentSecret checks that concurrent first calls of Secret all get the one secret that
// one of them made.
func testConcurrentSecret(t *testing.T, s storage.Store) {
	const callers = 16
	made, got := make([][]byte, callers), make([][]byte, callers)
	var wg sync.WaitGroup
	for i := range callers {
		made[i] = hash("secret", i)
		wg.Go(func() {
			var err error
			if got[i], err = s.Secret(ctx, "signing", func() []byte { return bytes.Clone(made[i]) }); err != nil {
				t.Errorf("Secret: %v", err)
			}
		})
	}
	wg.Wait()
	later, err := s.Secret(ctx, "signing", func() []byte { return []byte("late") })
	if err != nil {
		t.Fatalf("Secret: %v", err)
	}
	if !slices.ContainsFunc(made, func(v []byte) bool { return bytes.Equal(v, later) }) {
		t.Errorf("a later call got %x, which no caller made", later)
	}
	for i, v := range got {
		if !bytes.Equal(v, later) {
			t.Errorf("caller %d got %x, a later call %x; want one secret for all", i, v, later)
		}
	}
}

// testConcurrentUpdateDevice checks that concurrent updates are serialized: none is lost.
func testConcurrentUpdateDevice(t *testing.T, s storage.Store) {
	d := device(0)
	devices().mustCreate(t, s, d)
	const writers = 16
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			_, err := s.UpdateDevice(ctx, d.ID, func(v storage.Device) (storage.Device, error) {
				v.SignCount++
				return v, nil
			})
			if err != nil {
				t.Errorf("UpdateDevice: %v", err)
			}
		})
	}
	wg.Wait()
	got, err := s.GetDevice(ctx, d.ID)
	if err != nil {
		t.Fatalf("GetDevice: %v", err)
	}
	if want := d.SignCount + writers; got.SignCount != want {
		t.Errorf("SignCount after %d concurrent increments: got %d, want %d", writers, got.SignCount, want)
	}
}

// testConcurrentFailingUpdates checks that an update whose function fails, among concurrent
// ones that succeed, fails alone, with its own error, and that no update is lost or applied twice.
func testConcurrentFailingUpdates(t *testing.T, s storage.Store) {
	d := device(0)
	devices().mustCreate(t, s, d)
	const writers = 16 // the odd ones fail
	got := make([]uint32, 0, writers/2)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range writers {
		refusal := fmt.Errorf("conformance: update %d refused", i)
		wg.Go(func() {
			v, err := s.UpdateDevice(ctx, d.ID, func(v storage.Device) (storage.Device, error) {
				v.SignCount++
				if i%2 == 1 {
					return v, refusal
				}
				return v, nil
			})
			switch {
			case i%2 == 1 && !errors.Is(err, refusal):
				t.Errorf("failing update %d: got %v, want its own error", i, err)
			case i%2 == 0 && err != nil:
				t.Errorf("update %d: %v", i, err)
			case i%2 == 0:
				mu.Lock()
				got = append(got, v.SignCount)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(got)
	for i, n := range got {
		if want := d.SignCount + uint32(i) + 1; n != want {
			t.Fatalf("the %d good updates returned the counts %v, want %d to %d once each", writers/2, got, d.SignCount+1, d.SignCount+writers/2)
		}
	}
	v, err := s.GetDevice(ctx, d.ID)
	if err != nil {
		t.Fatalf("GetDevice: %v", err)
	}
	if want := d.SignCount + writers/2; v.SignCount != want {
		t.Errorf("SignCount after %d good and %d failing updates: got %d, want %d", writers/2, writers/2, v.SignCount, want)
	}
}

// testConcurrentEvents checks that events appended at once all get IDs of their own, that an
// event appended after another returned has a later ID, and that ListEvents finds them all.
func testConcurrentEvents(t *testing.T, s storage.Store) {
	const callers, each = 8, 5
	appended := make([][]storage.Event, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			for j := range each {
				e, err := s.AppendEvent(ctx, event(i*each+j))
				if err != nil {
					t.Errorf("AppendEvent: %v", err)
					return
				}
				if j > 0 && e.ID <= appended[i][j-1].ID {
					t.Errorf("caller %d's event %d has ID %q, not after its previous event's %q", i, j, e.ID, appended[i][j-1].ID)
				}
				appended[i] = append(appended[i], e)
			}
		})
	}
	wg.Wait()
	all := slices.Concat(appended...)
	slices.SortFunc(all, func(a, b storage.Event) int { return strings.Compare(a.ID, b.ID) })
	if ids := eventIDs(all); len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Errorf("concurrent appends got the IDs %v, want each its own", ids)
	}
	expectEvents(t, s, "", "", 100, newestFirst(all))
}

// event is the i-th of distinct events: even ones set every field, odd ones only those every
// event has.
func event(i int) storage.Event {
	e := storage.Event{Time: at(i), Type: "card_login", Outcome: "ok"}
	if i%2 == 0 {
		e.AccountID = fmt.Sprintf("account-%d", i)
		e.Type, e.Outcome, e.Reason = "login", "refused", "clone_warning"
		e.ClientID = fmt.Sprintf("client-%d", i)
		e.DeviceID = fmt.Sprintf("device-%d", i)
		e.Actor = fmt.Sprintf("A12****%03d", i)
		e.IP = fmt.Sprintf("198.51.%d.0/24", i)
	}
	return e
}

// mustAppend appends e and checks that AppendEvent returns it as given but for a new ID.
func mustAppend(t *testing.T, s storage.Store, e storage.Event) storage.Event {
	t.Helper()
	got, err := s.AppendEvent(ctx, e)
	if err != nil {
		t.Fatalf("AppendEvent: %v", err)
	}
	if got.ID == "" {
		t.Errorf("AppendEvent returned no ID")
	}
	want := e
	want.ID = got.ID
	for _, d := range diff(got, want) {
		t.Errorf("AppendEvent returned %s", d)
	}
	return got
}

// expectEvents fails t unless ListEvents returns want.
func expectEvents(t *testing.T, s storage.Store, accountID, before string, limit int, want []storage.Event) {
	t.Helper()
	call := fmt.Sprintf("ListEvents(%q, %q, %d)", accountID, before, limit)
	got, err := s.ListEvents(ctx, accountID, before, limit)
	if err != nil {
		t.Errorf("%s: %v", call, err)
		return
	}
	if len(got) != len(want) {
		t.Errorf("%s returned %d events %v, want %d %v", call, len(got), eventIDs(got), len(want), eventIDs(want))
		return
	}
	for i := range want {
		for _, d := range diff(got[i], want[i]) {
			t.Errorf("%s[%d]: %s", call, i, d)
		}
	}
}

func eventIDs(events []storage.Event) []string {
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	return ids
}

// newestFirst returns events, appended in that order, as ListEvents lists them.
func newestFirst(events []storage.Event) []storage.Event {
	list := slices.Clone(events)
	slices.Reverse(list)
	return list
}

func testEventRoundTrip(t *testing.T, s storage.Store) {
	for i := range 2 {
		e := mustAppend(t, s, event(i))
		// An odd event has no account: the newest of all events is it.
		expectEvents(t, s, e.AccountID, "", 1, []storage.Event{e})
	}
}

// testEventIDs checks that IDs increase as strings in the order of appending, and that the
// store gives each event its ID, whatever ID the event came with.
func testEventIDs(t *testing.T, s storage.Store) {
	var stored []storage.Event
	for i := range 6 {
		e := event(i)
		switch i {
		case 3:
			e.ID = stored[0].ID // must not replace the first event
		case 4:
			e.ID = "~~~~~~~~~~~~~~~~" // sorts after any ID in URL-safe characters
		}
		got := mustAppend(t, s, e)
		if i > 0 && got.ID <= stored[i-1].ID {
			t.Errorf("event %d has ID %q, not after the previous event's %q", i, got.ID, stored[i-1].ID)
		}
		stored = append(stored, got)
	}
	expectEvents(t, s, "", "", 100, newestFirst(stored))
}

// testListEvents checks ListEvents' pages: of one account or of all, newest first, older than
// before, up to limit.
func testListEvents(t *testing.T, s storage.Store) {
	// "a-10" starts with "a-1": a prefix scan without a separator would mix their events.
	var e []storage.Event
	for i, accountID := range []string{"a-1", "a-10", "", "a-1", "a-2", "a-1", "a-10", "a-1"} {
		v := event(i)
		v.AccountID = accountID
		e = append(e, mustAppend(t, s, v))
	}
	tests := []struct {
		name      string
		accountID string
		before    string
		limit     int
		want      []int // indexes into e
	}{
		{"All", "", "", 100, []int{7, 6, 5, 4, 3, 2, 1, 0}},
		{"AllLimit", "", "", 3, []int{7, 6, 5}},
		{"AllBefore", "", e[3].ID, 100, []int{2, 1, 0}},
		{"AllBeforeLimit", "", e[6].ID, 2, []int{5, 4}},
		{"AllBeforeOldest", "", e[0].ID, 100, nil},
		{"Account", "a-1", "", 100, []int{7, 5, 3, 0}},
		{"AccountLimit", "a-1", "", 2, []int{7, 5}},
		{"AccountBefore", "a-1", e[5].ID, 100, []int{3, 0}},
		{"AccountBeforeLimit", "a-1", e[7].ID, 2, []int{5, 3}},
		{"AccountBeforeOldest", "a-1", e[0].ID, 100, nil},
		// before need not be one of the account's events: it is a place in the order of IDs.
		{"AccountBeforeOtherAccount", "a-1", e[4].ID, 100, []int{3, 0}},
		{"AccountBeforeNoAccount", "a-1", e[2].ID, 100, []int{0}},
		{"AccountPrefixOfAnother", "a-10", "", 100, []int{6, 1}},
		{"AccountOneEvent", "a-2", "", 100, []int{4}},
		{"AccountNoEvents", "a-3", "", 100, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want []storage.Event
			for _, i := range tc.want {
				want = append(want, e[i])
			}
			expectEvents(t, s, tc.accountID, tc.before, tc.limit, want)
		})
	}
	// Walking page by page, each page before the last event of the one before, lists each event
	// once: no page overlaps or skips.
	for _, accountID := range []string{"", "a-1", "a-10"} {
		t.Run(fmt.Sprintf("Pages/%q", accountID), func(t *testing.T) {
			want, err := s.ListEvents(ctx, accountID, "", 100)
			if err != nil {
				t.Fatalf("ListEvents: %v", err)
			}
			var got []storage.Event
			before := ""
			for range len(want) + 1 {
				page, err := s.ListEvents(ctx, accountID, before, 3)
				if err != nil {
					t.Fatalf("ListEvents(%q, %q, 3): %v", accountID, before, err)
				}
				if len(page) == 0 {
					break
				}
				got = append(got, page...)
				before = page[len(page)-1].ID
			}
			if !slices.Equal(eventIDs(got), eventIDs(want)) {
				t.Errorf("pages of 3 listed %v, want %v", eventIDs(got), eventIDs(want))
			}
		})
	}
}

// testEventLimit checks that a limit below 1 lists 1 event and one above 1,000 lists 1,000.
func testEventLimit(t *testing.T, s storage.Store) {
	const most = 1000
	var all []storage.Event
	for i := range most + 1 {
		v := event(i)
		v.AccountID = "a-1"
		all = append(all, mustAppend(t, s, v))
	}
	all = newestFirst(all)
	tests := []struct {
		name  string
		limit int
		want  int
	}{
		{"Zero", 0, 1},
		{"Negative", -1, 1},
		{"One", 1, 1},
		{"Most", most, most},
		{"AboveMost", most + 1, most},
		{"Huge", math.MaxInt, most},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			expectEvents(t, s, "", "", tc.limit, all[:tc.want])
			expectEvents(t, s, "a-1", "", tc.limit, all[:tc.want])
		})
	}
}

func testEventBadCursor(t *testing.T, s storage.Store) {
	e := mustAppend(t, s, event(0))
	for _, before := range []string{"not an event ID", "\x00\xff", e.ID + "/..", "-" + e.ID} {
		for _, accountID := range []string{"", e.AccountID} {
			if _, err := s.ListEvents(ctx, accountID, before, 10); !errors.Is(err, storage.ErrBadCursor) {
				t.Errorf("ListEvents(%q, %q, 10): got %v, want %v", accountID, before, err, storage.ErrBadCursor)
			}
		}
	}
}

// testEventRetention checks that GarbageCollect deletes the events older than EventsBefore,
// from the log and from their account's, and keeps the others.
func testEventRetention(t *testing.T, s storage.Store) {
	var stored []storage.Event
	for i := range 6 {
		stored = append(stored, mustAppend(t, s, event(i)))
	}
	got, err := s.GarbageCollect(ctx, storage.GCPolicy{EventsBefore: stored[3].Time})
	if want := (storage.GCResult{Events: 3}); err != nil || got != want {
		t.Errorf("GarbageCollect: got %+v and %v, want %+v", got, err, want)
	}
	expectEvents(t, s, "", "", 100, newestFirst(stored[3:]))
	expectEvents(t, s, stored[0].AccountID, "", 100, nil)
	expectEvents(t, s, stored[4].AccountID, "", 100, stored[4:5])
}

// testGCBatches checks that a collection larger than one batch deletes everything due.
func testGCBatches(t *testing.T, s storage.Store) {
	for i := range 25 {
		challenges().mustCreate(t, s, challenge(i))
	}
	for i := range 10 {
		mustAppend(t, s, event(i))
	}
	kept := mustAppend(t, s, event(1000))
	got, err := s.GarbageCollect(ctx, storage.GCPolicy{ExpiredBefore: at(1000), EventsBefore: at(1000), Batch: 7})
	if want := (storage.GCResult{Challenges: 25, Events: 10}); err != nil || got != want {
		t.Errorf("GarbageCollect in batches of 7: got %+v and %v, want %+v", got, err, want)
	}
	for i := range 25 {
		challenges().absent(t, s, challenge(i))
	}
	expectEvents(t, s, "", "", 100, []storage.Event{kept})
}

// testEventsKept checks that GarbageCollect leaves events alone, however old, without an
// EventsBefore.
func testEventsKept(t *testing.T, s storage.Store) {
	var stored []storage.Event
	for i := range 4 {
		stored = append(stored, mustAppend(t, s, event(i)))
	}
	if got, err := s.GarbageCollect(ctx, storage.GCPolicy{ExpiredBefore: at(100 * 365 * 24 * 60)}); err != nil || got != (storage.GCResult{}) {
		t.Errorf("GarbageCollect: got %+v and %v, want nothing deleted", got, err)
	}
	expectEvents(t, s, "", "", 100, newestFirst(stored))
	expectEvents(t, s, stored[0].AccountID, "", 100, stored[:1])
}

// hit is one call of Hit and the count it must return.
type hit struct {
	key    string
	window time.Duration
	now    time.Time
	want   int
}

// testHits makes the given calls of Hit, in order.
func testHits(hits []hit) func(*testing.T, storage.Store) {
	return func(t *testing.T, s storage.Store) { expectHits(t, s, hits) }
}

func expectHits(t *testing.T, s storage.Store, hits []hit) {
	t.Helper()
	for i, h := range hits {
		// Hits sees the count before this hit, and does not count.
		for range 2 {
			if got, err := s.Hits(ctx, h.key, h.window, h.now); err != nil || got != h.want-1 {
				t.Errorf("call %d, Hits(%q, %v, %v): got %d and %v, want %d", i, h.key, h.window, h.now, got, err, h.want-1)
			}
		}
		if got, err := s.Hit(ctx, h.key, h.window, h.now); err != nil || got != h.want {
			t.Errorf("call %d, Hit(%q, %v, %v): got %d and %v, want %d", i, h.key, h.window, h.now, got, err, h.want)
		}
	}
}

// midnight is the start of a day in Unix time, shown in a zone where it is 07:00, so that a
// store aligning windows to the zone of now, not to the Unix epoch, is caught.
func midnight() time.Time {
	return time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC).In(time.FixedZone("ICT", 7*60*60))
}

// hitCounts counts hits in one window, apart from other keys and other windows.
func hitCounts() []hit {
	m, minute := midnight(), time.Minute
	return []hit{
		{"ip:192.0.2.0/24", minute, m.Add(10 * time.Second), 1},
		{"ip:192.0.2.0/24", minute, m.Add(20 * time.Second), 2},
		{"ip:192.0.2.0/24", minute, m.Add(59 * time.Second), 3},
		// Other keys, even one that the first starts with or that starts with it.
		{"ip:192.0.2.0/2", minute, m, 1},
		{"ip:192.0.2.0/24\x00", minute, m, 1},
		{"ip:192.0.2.0/24\x00\xff", minute, m, 1},
		{"", minute, m, 1},
		{"\xff", minute, m, 1},
		{"ip:192.0.2.0/24\x00", minute, m, 2},
		// The next window, then a window of another length that starts at the same instant.
		{"ip:192.0.2.0/24", minute, m.Add(minute), 1},
		{"ip:192.0.2.0/24", time.Hour, m, 1},
		// The first window counts on.
		{"ip:192.0.2.0/24", minute, m.Add(30 * time.Second), 4},
	}
}

// hitWindows checks where windows start and end: every window long from the Unix epoch, in
// whatever zone now is given, before 1970 as after.
func hitWindows() []hit {
	m, minute, day, µs := midnight(), time.Minute, 24*time.Hour, time.Microsecond
	return []hit{
		{"minute", minute, m.Add(-µs), 1},
		{"minute", minute, m, 1},
		{"minute", minute, m.Add(minute - µs), 2},
		{"minute", minute, m.Add(minute), 1},
		{"minute", minute, m.Add(-minute), 2},
		// Midnight in the zone of m is 17:00 in Unix time: the same day.
		{"day", day, m.Add(-µs), 1},
		{"day", day, m, 1},
		{"day", day, m.Add(17*time.Hour - µs), 2},
		{"day", day, m.Add(17 * time.Hour), 3},
		{"day", day, m.Add(day - µs), 4},
		{"day", day, m.Add(day), 1},
		// A window that a minute is not a multiple of: [14s, 21s).
		{"7s", 7 * time.Second, time.Unix(13, 999_999_000), 1},
		{"7s", 7 * time.Second, time.Unix(14, 0), 1},
		{"7s", 7 * time.Second, time.Unix(20, 999_999_000), 2},
		{"7s", 7 * time.Second, time.Unix(21, 0), 1},
		// Before 1970: [-60s, 0).
		{"1969", minute, time.Unix(-1, 0), 1},
		{"1969", minute, time.Unix(-60, 0), 2},
		{"1969", minute, time.Unix(-61, 0), 1},
		{"1969", minute, time.Unix(0, 0), 1},
	}
}

// testConcurrentHit checks that concurrent hits are serialized: each count is returned once.
func testConcurrentHit(t *testing.T, s storage.Store) {
	const callers, hits = 16, 10
	counts := make([][]int, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			for range hits {
				n, err := s.Hit(ctx, "k", time.Minute, at(0))
				if err != nil {
					t.Errorf("Hit: %v", err)
				}
				counts[i] = append(counts[i], n)
			}
		})
	}
	wg.Wait()
	got := slices.Sorted(slices.Values(slices.Concat(counts...)))
	for i, n := range got {
		if n != i+1 {
			t.Fatalf("%d callers hitting %d times each got the counts %v, want 1 to %d once each", callers, hits, got, callers*hits)
		}
	}
}

// testHitGarbageCollect checks that GarbageCollect deletes the windows that ended before its
// cutoff, and only those: a window that ends at the cutoff or has not ended counts on.
func testHitGarbageCollect(t *testing.T, s storage.Store) {
	m, minute := midnight(), time.Minute
	cutoff := m.Add(30 * time.Second)
	expectHits(t, s, []hit{
		{"gone", minute, m.Add(-minute), 1},                    // [-1m, 0)
		{"gone", 10 * time.Second, m.Add(15 * time.Second), 1}, // [10s, 20s)
		{"kept", minute, m, 1},                                 // [0, 1m): began before the cutoff
		{"kept", 30 * time.Second, m, 1},                       // [0, 30s): ends at the cutoff
		{"kept", minute, m.Add(minute), 1},                     // [1m, 2m)
	})
	if got, err := s.GarbageCollect(ctx, storage.GCPolicy{ExpiredBefore: cutoff}); err != nil || got != (storage.GCResult{RateLimits: 2}) {
		t.Errorf("GarbageCollect: got %+v and %v, want %+v", got, err, storage.GCResult{RateLimits: 2})
	}
	if got, err := s.GarbageCollect(ctx, storage.GCPolicy{ExpiredBefore: cutoff}); err != nil || got != (storage.GCResult{}) {
		t.Errorf("GarbageCollect again: got %+v and %v, want nothing deleted", got, err)
	}
	expectHits(t, s, []hit{
		{"gone", minute, m.Add(-minute), 1},
		{"gone", 10 * time.Second, m.Add(15 * time.Second), 1},
		{"kept", minute, m, 2},
		{"kept", 30 * time.Second, m, 2},
		{"kept", minute, m.Add(minute), 2},
	})
}
