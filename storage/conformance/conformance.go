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
	"reflect"
	"slices"
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
	tests := []struct {
		name string
		test func(*testing.T, storage.Store)
	}{
		{"DeleteSession", testDeleteSession},
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
		{"ListDevices", testListDevices},
		{"GarbageCollect", testGarbageCollect},
		{"ConcurrentUpdateDevice", testConcurrentUpdateDevice},
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
	expiry func(*T) *time.Time                                   // for a type GarbageCollect deletes
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

func testKind[T any](t *testing.T, newStore func(*testing.T) storage.Store, k kind[T]) {
	t.Run("RoundTrip", func(t *testing.T) {
		s := newStore(t)
		for i := range 2 {
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
		TokenHash:    hash("device token", i),
		Status:       storage.DeviceActive,
		CreatedAt:    at(i),
		ExpiresAt:    at(i + 365*24*60),
	}
	if i%2 == 0 {
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
	}
	return d
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
	return kind[storage.Device]{
		sample: device,
		create: bindNew,
		gets: []getter[storage.Device]{
			{"GetDevice", func(s storage.Store, d storage.Device) (storage.Device, error) { return s.GetDevice(ctx, d.ID) }},
			{"GetDeviceByCredential", func(s storage.Store, d storage.Device) (storage.Device, error) {
				return s.GetDeviceByCredential(ctx, d.CredentialID)
			}},
			{"ListDevices", func(s storage.Store, d storage.Device) (storage.Device, error) {
				list, err := s.ListDevices(ctx, d.AccountID)
				if err != nil {
					return storage.Device{}, err
				}
				var found []storage.Device
				for _, got := range list {
					if got.ID == d.ID {
						found = append(found, got)
					}
				}
				switch len(found) {
				case 0:
					return storage.Device{}, storage.ErrNotFound
				case 1:
					return found[0], nil
				}
				return storage.Device{}, fmt.Errorf("device %s is listed %d times", d.ID, len(found))
			}},
		},
		update: func(s storage.Store, d storage.Device, fn func(storage.Device) (storage.Device, error)) (storage.Device, error) {
			return s.UpdateDevice(ctx, d.ID, fn)
		},
		// Moving CreatedAt tests that ListDevices still finds the device after an update.
		change: func(d *storage.Device) {
			d.SignCount, d.LastUsedAt, d.RevokedAt, d.CreatedAt = d.SignCount+1, new(at(30)), nil, at(-60)
		},
		unique: []field[storage.Device]{id, credential},
		fixed:  []field[storage.Device]{id, account, credential},
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

func testDeleteSession(t *testing.T, s storage.Store) {
	gone, kept := session(0), session(1)
	sessions().mustCreate(t, s, gone)
	sessions().mustCreate(t, s, kept)
	if err := s.DeleteSession(ctx, gone.Hash); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	sessions().absent(t, s, gone)
	sessions().expect(t, s, kept)
	if err := s.DeleteSession(ctx, gone.Hash); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteSession of a deleted session: got %v, want %v", err, storage.ErrNotFound)
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

func testListDevices(t *testing.T, s storage.Store) {
	// Neither the order of creation nor that of the IDs is the order of CreatedAt, so that only
	// a store that sorts by CreatedAt passes.
	var want []storage.Device
	for i, minutes := range []int{20, 0, 30, 10} {
		d := device(i)
		d.AccountID, d.CreatedAt = "account-1", at(minutes)
		devices().mustCreate(t, s, d)
		want = append(want, d)
	}
	slices.SortFunc(want, func(a, b storage.Device) int { return a.CreatedAt.Compare(b.CreatedAt) })
	// An account ID that starts with the other catches a prefix scan without a separator.
	other := device(9)
	other.AccountID = "account-10"
	devices().mustCreate(t, s, other)

	got, err := s.ListDevices(ctx, "account-1")
	if err != nil {
		t.Fatalf("ListDevices: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("ListDevices returned %d devices, want %d", len(got), len(want))
	}
	for i := range want {
		for _, d := range diff(got[i], want[i]) {
			t.Errorf("ListDevices[%d]: %s", i, d)
		}
	}
	if got, err := s.ListDevices(ctx, "account-2"); err != nil || len(got) != 0 {
		t.Errorf("ListDevices of an account without devices: got %d devices and %v, want none and no error", len(got), err)
	}
}

func testGarbageCollect(t *testing.T, s storage.Store) {
	cutoff := at(60)
	checks := []func(){
		seedAroundCutoff(t, s, challenges(), cutoff),
		seedAroundCutoff(t, s, sessions(), cutoff),
		seedAroundCutoff(t, s, bindings(), cutoff),
	}
	// Accounts and devices stay however old, even when the binding that made the device goes.
	a := account(0)
	accounts().mustCreate(t, s, a)
	d := device(0)
	d.ExpiresAt = at(0)
	if _, err := s.BindDevice(ctx, binding(0).ID, d, bindTo(d)); err != nil {
		t.Fatalf("BindDevice: %v", err)
	}

	got, err := s.GarbageCollect(ctx, cutoff)
	if want := (storage.GCResult{Challenges: 1, Sessions: 1, Bindings: 1}); err != nil || got != want {
		t.Errorf("GarbageCollect: got %+v and %v, want %+v", got, err, want)
	}
	if got, err := s.GarbageCollect(ctx, cutoff); err != nil || got != (storage.GCResult{}) {
		t.Errorf("GarbageCollect again: got %+v and %v, want nothing deleted", got, err)
	}
	for _, check := range checks {
		check()
	}
	accounts().expect(t, s, a)
	devices().expect(t, s, d)
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
