package main

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/mcert/mcert/provider"
)

// TestCodeRedeemedOnceOverHTTP: a relying party (or an attacker holding its code) sends eight
// token requests for one code at once: one gets tokens, seven get invalid_grant, and the
// tokens of the one work.
func TestCodeRedeemedOnceOverHTTP(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	rp := s.relyingParty(t, "健保署", provider.ClientSpec{})
	for round := range 3 {
		a, code := rp.approvedCode(ph)
		const n = 8
		tokens := make([]*oauth2.Token, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				tokens[i], errs[i] = rp.oauth.Exchange(context.Background(), code, oauth2.VerifierOption(a.verifier))
			})
		}
		close(start)
		wg.Wait()
		var won *oauth2.Token
		for i, err := range errs {
			var re *oauth2.RetrieveError
			switch {
			case err == nil && won == nil:
				won = tokens[i]
			case err == nil:
				t.Fatalf("round %d: a second token response for one code", round)
			case !errors.As(err, &re) || re.ErrorCode != "invalid_grant":
				t.Fatalf("round %d: a losing redemption: %v, want invalid_grant", round, err)
			}
		}
		if won == nil {
			t.Fatalf("round %d: no redemption won", round)
		}
		if _, err := rp.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(won)); err != nil {
			t.Fatalf("round %d: the winner's access token at userinfo: %v", round, err)
		}
	}
}

// TestSlowDownGrowsOverHTTP: the interval a CIBA client is told to keep grows by 5 seconds with
// each slow_down, and a poll that keeps it is pending again.
func TestSlowDownGrowsOverHTTP(t *testing.T) {
	s := startServer(t)
	boundCitizen(t, s)
	c := cibaClient{t: t, rp: s.relyingParty(t, "健保署", provider.ClientSpec{CIBA: true})}
	id := c.start("A123456789", "")
	for i, step := range []struct {
		wait time.Duration
		code string
		says string
	}{
		{0, "authorization_pending", ""},
		{time.Second, "slow_down", "every 10 seconds"},
		{6 * time.Second, "slow_down", "every 15 seconds"},
		{15 * time.Second, "authorization_pending", ""},
	} {
		s.clock.Advance(step.wait)
		code, body := c.poll(id)
		if desc, _ := body["error_description"].(string); code != step.code || !strings.Contains(desc, step.says) {
			t.Fatalf("poll %d: %s %q, want %s %q", i, code, desc, step.code, step.says)
		}
	}
}
