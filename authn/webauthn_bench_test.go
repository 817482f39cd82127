package authn_test

// The ceremonies' cost in process, without the store: go test -run '^$' -bench . ./authn

import (
	"testing"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/storage"
)

const benchOrigin = "http://localhost:8080"

var benchAccount = storage.Account{
	ID: "account", CitizenID: "A123456789", Name: "王小明", WebAuthnID: make([]byte, 64), Status: storage.AccountActive,
}

func BenchmarkBeginRegistration(b *testing.B) {
	w := benchWebAuthn(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := w.BeginRegistration(benchAccount, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFinishRegistration verifies one phone's registration response again and again.
func BenchmarkFinishRegistration(b *testing.B) {
	for _, attestation := range []string{"none", "packed"} {
		b.Run("attestation="+attestation, func(b *testing.B) {
			w := benchWebAuthn(b)
			state, response := register(b, w, newPhone(b), phone.CreateOptions{Attestation: attestation})
			b.ReportAllocs()
			for b.Loop() {
				if _, err := w.FinishRegistration(benchAccount, state, response); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBeginLogin begins a QR login (discoverable: no account known) and a decoupled one,
// for an account with one device.
func BenchmarkBeginLogin(b *testing.B) {
	w := benchWebAuthn(b)
	_, d := enrolled(b, w)
	for _, tc := range []struct {
		name    string
		account *storage.Account
	}{{"Discoverable", nil}, {"Account", &benchAccount}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := w.BeginLogin(tc.account, []storage.Device{d}, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFinishLogin parses and verifies one assertion again and again.
func BenchmarkFinishLogin(b *testing.B) {
	w := benchWebAuthn(b)
	p, d := enrolled(b, w)
	options, state, err := w.BeginLogin(nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	response, err := p.Get(benchOrigin, options.Response, phone.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.FinishLogin(response, lookup(state, d)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLogin is the in-process ceiling of a login: begin, then parse and verify the phone's
// answer. The phone's signing is not timed.
func BenchmarkLogin(b *testing.B) {
	w := benchWebAuthn(b)
	p, d := enrolled(b, w)
	b.ReportAllocs()
	for b.Loop() {
		options, state, err := w.BeginLogin(nil, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		response, err := p.Get(benchOrigin, options.Response, phone.GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := w.FinishLogin(response, lookup(state, d)); err != nil {
			b.Fatal(err)
		}
	}
}

func benchWebAuthn(b *testing.B) *authn.WebAuthn {
	w, err := authn.NewWebAuthn(benchOrigin)
	if err != nil {
		b.Fatal(err)
	}
	return w
}

func newPhone(b *testing.B) *phone.Phone {
	p, err := phone.Open(b.TempDir() + "/phone.json")
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// register has the phone answer a new registration; it returns the state and the response.
func register(b *testing.B, w *authn.WebAuthn, p *phone.Phone, o phone.CreateOptions) ([]byte, []byte) {
	creation, state, err := w.BeginRegistration(benchAccount, nil)
	if err != nil {
		b.Fatal(err)
	}
	response, err := p.Create(benchOrigin, creation.Response, o)
	if err != nil {
		b.Fatal(err)
	}
	return state, response
}

// enrolled returns a phone with a credential for benchAccount, and the device the server made.
func enrolled(b *testing.B, w *authn.WebAuthn) (*phone.Phone, storage.Device) {
	p := newPhone(b)
	state, response := register(b, w, p, phone.CreateOptions{})
	d, err := w.FinishRegistration(benchAccount, state, response)
	if err != nil {
		b.Fatal(err)
	}
	d.ID, d.AccountID, d.Status = "device", benchAccount.ID, storage.DeviceActive
	return p, d
}

func lookup(state []byte, d storage.Device) authn.DeviceLookup {
	return func([]byte) (authn.Signer, error) {
		return authn.Signer{State: state, Account: benchAccount, Device: d, Devices: []storage.Device{d}}, nil
	}
}
