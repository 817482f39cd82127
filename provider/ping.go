package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/mcert/mcert/storage"
)

// CIBA ping mode (CIBA Core 1.0, section 10.2): once the citizen has answered a ping client's
// request, mcert POSTs {"auth_req_id"} to the client's notification endpoint with the client's
// client_notification_token as a bearer token, and the client then asks the token endpoint.
// The notification goes in the background, retried with back-off until the request expires:
// nothing about it can make the relying party's request, or the phone's answer, fail or wait.

// pingAttempts bound the retries of one notification: 1, 2, 4, 8 and 16 s apart.
const pingAttempts = 6

var pingClient = &http.Client{
	Timeout: 5 * time.Second,
	// The endpoint was registered; a redirect would send the token elsewhere.
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// decided is binding's Decided: a ping client's request answered is notified.
func (p *Provider) decided(l storage.Login) {
	var req request
	if json.Unmarshal(l.Request, &req) != nil || req.NotificationToken == "" {
		return // poll mode
	}
	go p.ping(l, req)
}

func (p *Provider) ping(l storage.Login, req request) {
	// Until the request expires, on the service's clock.
	ctx, cancel := context.WithTimeout(context.Background(), l.ExpiresAt.Sub(p.svc.Now()))
	defer cancel()
	c, err := p.svc.Client(ctx, l.ClientID)
	if err != nil || c.CIBAPing == "" {
		return
	}
	body, _ := json.Marshal(map[string]string{"auth_req_id": req.AuthReqID})
	wait := time.Second
	for attempt := 1; ; attempt++ {
		r, err := http.NewRequestWithContext(ctx, http.MethodPost, c.CIBAPing, bytes.NewReader(body))
		if err != nil {
			p.logger.Error("CIBA ping", "client_id", c.ID, "err", err)
			return
		}
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+req.NotificationToken)
		res, err := pingClient.Do(r)
		if err == nil {
			res.Body.Close()
			if res.StatusCode/100 == 2 {
				return
			}
		}
		if attempt == pingAttempts {
			p.logger.Warn("CIBA ping: the client's endpoint did not take the notification; it may still poll", "client_id", c.ID, "attempts", attempt)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait *= 2
	}
}
