package binding

import (
	"context"
	"crypto/rand"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/storage"
	"github.com/mcert/mcert/storage/bolt"
)

const benchOrigin = "http://localhost:8080"

// BenchmarkLogin is a whole QR login in process, on a bolt store: the relying party starts it,
// a phone begins it and finishes it, with the rate limit and the audit log; the phone's own
// signing (an ECDSA P-256 signature) is part of each iteration. Serial logins run one at a
// time; Parallel ones for 32 citizens per core at once, whose writes share commits.
func BenchmarkLogin(b *testing.B) {
	s := benchService(b)
	ctx := WithClientIP(context.Background(), "192.0.2.1")
	b.Run("Serial", func(b *testing.B) {
		p := benchCitizen(b, s)
		b.ReportAllocs()
		for b.Loop() {
			if err := benchLogin(ctx, s, p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		const parallelism = 32
		phones := make([]*phone.Phone, runtime.GOMAXPROCS(0)*parallelism) // one per goroutine
		for i := range phones {
			phones[i] = benchCitizen(b, s)
		}
		var next atomic.Int64
		b.ReportAllocs()
		b.SetParallelism(parallelism)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			p := phones[next.Add(1)-1] // each goroutine its own phone: its counter is its own
			for pb.Next() {
				if err := benchLogin(ctx, s, p); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func benchLogin(ctx context.Context, s *Service, p *phone.Phone) error {
	id := newID()
	browser := Browser{Secret: "browser secret", UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0.0.0"}
	err := s.StartRedirectLogin(ctx, id, storage.Client{ID: "client", Name: "健保署"}, []byte(`{"scope":"openid","nonce":"n-0S6_WzA2Mj","state":"af0ifjsldkj"}`), "", browser)
	if err != nil {
		return err
	}
	page, err := s.LoginPage(ctx, id, browser.Secret)
	if err != nil {
		return err
	}
	token := page.QRText[strings.Index(page.QRText, "#")+1:]
	prompt, err := s.BeginLogin(ctx, token)
	if err != nil {
		return err
	}
	credential, err := p.Get(benchOrigin, prompt.Options.Response, phone.GetOptions{})
	if err != nil {
		return err
	}
	return s.FinishLogin(ctx, token, credential)
}

// benchService is a service on a new bolt store whose rate limit on phone begins never bites.
func benchService(b *testing.B) *Service {
	st, err := bolt.Open(filepath.Join(b.TempDir(), "mcert.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	wa, err := authn.NewWebAuthn(benchOrigin)
	if err != nil {
		b.Fatal(err)
	}
	return &Service{
		Store: st, WebAuthn: wa, PublicURL: benchOrigin, Now: time.Now,
		Limits: Limits{PhoneBeginPerIP: Limit{N: math.MaxInt, Window: time.Minute}, LoginPerIP: Limit{N: math.MaxInt, Window: time.Minute}},
	}
}

var benchCitizens atomic.Int64

// benchCitizen makes a new account with one bound phone, and returns the phone.
func benchCitizen(b *testing.B, s *Service) *phone.Phone {
	ctx := context.Background()
	n := benchCitizens.Add(1)
	now := s.now()
	a := storage.Account{
		ID: fmt.Sprint("account-", n), CitizenID: fmt.Sprintf("A1%08d", n), Name: "王小明", WebAuthnID: make([]byte, 64),
		Status: storage.AccountActive, CreatedAt: now, UpdatedAt: now,
	}
	_, _ = rand.Read(a.WebAuthnID)
	p, err := phone.Open(filepath.Join(b.TempDir(), "phone.json"))
	if err != nil {
		b.Fatal(err)
	}
	creation, state, err := s.WebAuthn.BeginRegistration(a, nil)
	if err != nil {
		b.Fatal(err)
	}
	response, err := p.Create(benchOrigin, creation.Response, phone.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	d, err := s.WebAuthn.FinishRegistration(a, state, response)
	if err != nil {
		b.Fatal(err)
	}
	d.ID, d.AccountID, d.Name, d.Status, d.CreatedAt, d.ExpiresAt = newID(), a.ID, "Pixel 8", storage.DeviceActive, now, now.AddDate(0, 0, DeviceDays)
	err = s.Store.Update(ctx, func(tx storage.Tx) error {
		if err := tx.CreateAccount(a); err != nil {
			return err
		}
		return tx.CreateDevice(d)
	})
	if err != nil {
		b.Fatal(err)
	}
	return p
}
