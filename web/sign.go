package web

import (
	"encoding/base64"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/binding"
	"github.com/mcert/mcert/provider"
	"github.com/mcert/mcert/qr"
	"github.com/mcert/mcert/signing"
	"github.com/mcert/mcert/storage"
)

// signRoutes are the relying parties' signing requests and the phone's approval of them
// (PROTOCOL.md section 9).
func (s *Server) signRoutes(api *echo.Group) {
	api.POST("/sign/requests", s.startSign)
	api.GET("/sign/requests/:id", s.signStatus)
	api.POST("/phone/sign/begin", s.signBegin)
	api.POST("/phone/sign/finish", s.signFinish)
}

// signRequestBody is a relying party's signing request, with its credentials when it sends
// them in the body (client_secret_post) rather than by Basic.
type signRequestBody struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	LoginHint    string `json:"login_hint"`
	Text         string `json:"text"`
	Format       string `json:"format"`
	Documents    []struct {
		Name   string `json:"name"`
		Digest string `json:"digest"`
	} `json:"documents"`
}

func (s *Server) startSign(c echo.Context) error {
	var body signRequestBody
	if err := decodeBody(c, &body); err != nil {
		return err
	}
	client, err := s.signClient(c, body.ClientID, body.ClientSecret)
	if err != nil {
		return err
	}
	r := binding.SignRequest{CitizenID: body.LoginHint, Text: body.Text, Format: body.Format}
	for i, d := range body.Documents {
		// Strict, unpadded base64url, the one encoding of each digest: the poll's answer echoes
		// the digest as it was sent.
		digest, err := base64.RawURLEncoding.Strict().DecodeString(d.Digest)
		if err != nil {
			return mcert.InvalidSignRequest.Newf(fmt.Sprintf("document %d: the digest is not base64url without padding", i+1))
		}
		r.Documents = append(r.Documents, signing.Document{Name: d.Name, Digest: digest})
	}
	started, err := s.svc.StartSign(c.Request().Context(), client, r)
	if err != nil {
		return err
	}
	out := map[string]any{
		"id": started.ID, "expires_in": int(binding.SignTTL.Seconds()), "interval": int(started.Interval.Seconds()),
	}
	if started.QRToken != "" {
		out["qr_text"] = qr.SignText(s.cfg.PublicURL, started.QRToken)
	}
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) signStatus(c echo.Context) error {
	client, err := s.signClient(c, "", "")
	if err != nil {
		return err
	}
	st, err := s.svc.SignStatus(c.Request().Context(), client.ID, c.Param("id"))
	if err != nil {
		return err
	}
	out := map[string]any{"status": st.Status}
	if st.Status == "approved" {
		std := base64.StdEncoding.EncodeToString
		sigs := make([]map[string]string, len(st.Documents))
		field := "signature"
		if st.Format == binding.FormatCMS {
			field = "cms"
		}
		for i, d := range st.Documents {
			sigs[i] = map[string]string{"name": d.Name, "digest": b64(d.Digest), field: std(st.Signatures[i])}
		}
		out["signatures"], out["certificate"], out["evidence"] = sigs, std(st.Certificate), std(st.Evidence)
	}
	return c.JSON(http.StatusOK, out)
}

// signClient authenticates the relying party as the token endpoint does: client_secret_basic,
// or client_secret_post with the credentials in the JSON body (id and secret here).
func (s *Server) signClient(c echo.Context, id, secret string) (storage.Client, error) {
	bid, bsecret, basic, err := provider.BasicCredentials(c.Request())
	switch {
	case err != nil, basic && (id != "" || secret != ""):
		return storage.Client{}, mcert.InvalidClient.New()
	case basic:
		id, secret = bid, bsecret
	}
	if id == "" {
		return storage.Client{}, mcert.InvalidClient.New()
	}
	client, err := s.svc.AuthenticateClient(c.Request().Context(), id, secret, false)
	if err != nil {
		return client, err
	}
	if !client.Sign {
		return storage.Client{}, mcert.ClientNotForSigning.New()
	}
	return client, nil
}

func (s *Server) signBegin(c echo.Context) error {
	token, err := tokenBody(c)
	if err != nil {
		return err
	}
	p, err := s.svc.BeginSign(c.Request().Context(), token)
	if err != nil {
		return err
	}
	docs := make([]map[string]string, len(p.Documents))
	for i, d := range p.Documents {
		docs[i] = map[string]string{"name": d.Name, "digest": b64(d.Digest)}
	}
	return c.JSON(http.StatusOK, map[string]any{
		"publicKey": p.Options.Response, "client_name": p.ClientName, "code": p.Code,
		"requested_at": rfc3339(p.RequestedAt), "text": p.BindingMessage, "documents": docs,
	})
}

func (s *Server) signFinish(c echo.Context) error {
	token, credential, err := credentialBody(c)
	if err != nil {
		return err
	}
	if err := s.svc.FinishSign(c.Request().Context(), token, credential); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "approved"})
}
