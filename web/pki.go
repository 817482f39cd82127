package web

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/binding"
)

// pkiRoutes publish mcert's signing CA, its CRL and its OCSP responder (PROTOCOL.md section
// 9), which the certificates name; they need no authentication.
func (s *Server) pkiRoutes() {
	crl := &crlCache{svc: s.svc}
	s.echo.GET("/pki/ca.pem", s.caPEM)
	s.echo.GET("/pki/ca.crl", crl.serve)
	s.echo.POST("/pki/ocsp", s.ocspPost)
	s.echo.GET("/pki/ocsp/:request", s.ocspGet)
}

func (s *Server) caPEM(c echo.Context) error {
	ca, err := s.svc.CA(c.Request().Context())
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "application/x-pem-file", ca.PEM())
}

// crlCache keeps the CRL an instance made for binding.CRLRefresh, so that relying parties
// fetching it make no load, and a revocation is in it within that time.
type crlCache struct {
	svc  *binding.Service
	mu   sync.Mutex
	der  []byte
	made time.Time
}

func (cc *crlCache) serve(c echo.Context) error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if now := time.Now(); cc.der == nil || now.Sub(cc.made) >= binding.CRLRefresh {
		der, err := cc.svc.CRL(c.Request().Context())
		if err != nil {
			return err
		}
		cc.der, cc.made = der, now
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "max-age=5")
	return c.Blob(http.StatusOK, "application/pkix-crl", cc.der)
}

// maxOCSPRequest is far above a request for one certificate (about 100 bytes).
const maxOCSPRequest = 4096

func (s *Server) ocspPost(c echo.Context) error {
	req, err := io.ReadAll(io.LimitReader(c.Request().Body, maxOCSPRequest+1))
	if err != nil {
		return err
	}
	if len(req) > maxOCSPRequest {
		return mcert.BodyTooLarge.Newf("4K")
	}
	return s.ocsp(c, req)
}

// ocspGet takes the request in the path, base64 as RFC 6960 appendix A.1 has it (its / and +
// URL-escaped), or base64url as PROTOCOL.md writes it.
func (s *Server) ocspGet(c echo.Context) error {
	raw, err := url.PathUnescape(c.Param("request"))
	if err != nil {
		return s.ocsp(c, nil)
	}
	if len(raw) > 2*maxOCSPRequest {
		return mcert.BodyTooLarge.Newf("4K")
	}
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if req, err := enc.DecodeString(raw); err == nil {
			return s.ocsp(c, req)
		}
	}
	return s.ocsp(c, nil) // OCSP's malformedRequest, as for any request that is not one
}

func (s *Server) ocsp(c echo.Context, req []byte) error {
	resp, err := s.svc.OCSP(c.Request().Context(), req)
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "application/ocsp-response", resp)
}
