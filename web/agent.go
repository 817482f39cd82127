package web

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/mcert/mcert/authn"
)

// CardAgent is the stand-in for the card reader's web component (PROTOCOL.md section 1): it
// signs challenges with the card for pages of one origin. Browsers attach Origin to the
// cross-origin fetch, so another site's page cannot have the card sign; local programs send
// none and are trusted, as the card reader itself would trust them.
func CardAgent(card *authn.Card, origin string) http.Handler {
	origin = strings.TrimRight(origin, "/")
	mux := http.NewServeMux()
	mux.HandleFunc("/sign", func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o != "" {
			if o != origin {
				agentError(w, http.StatusForbidden, "origin_not_allowed", "this card agent signs only for "+origin)
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Vary", "Origin")
		}
		switch r.Method {
		case http.MethodOptions: // the CORS preflight of the page's JSON POST
			h := w.Header()
			h.Set("Access-Control-Allow-Methods", "POST")
			h.Set("Access-Control-Allow-Headers", "Content-Type")
			h.Set("Access-Control-Allow-Private-Network", "true") // Chrome asks before a page reaches loopback
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		case http.MethodPost:
		default:
			agentError(w, http.StatusMethodNotAllowed, "method_not_allowed", "POST a JSON body {\"challenge\": \"...\"}")
			return
		}
		var req struct {
			Challenge string `json:"challenge"`
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 4096))
		if err == nil {
			err = json.Unmarshal(body, &req)
		}
		challenge, decErr := base64.RawURLEncoding.DecodeString(strings.TrimRight(req.Challenge, "="))
		if err != nil || decErr != nil || len(challenge) == 0 || len(challenge) > 1024 {
			agentError(w, http.StatusBadRequest, "malformed_body", "the body must be {\"challenge\": \"<base64url>\"}")
			return
		}
		sig, err := card.Sign(challenge)
		if err != nil {
			agentError(w, http.StatusInternalServerError, "sign_failed", "the card could not sign: "+err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"certificate": b64(card.Certificate.Raw), "signature": b64(sig)})
	})
	return mux
}

func agentError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, errorBody{code, message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
