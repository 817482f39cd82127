package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/storage"
)

// Pages of the links mailed to the citizen (issue 16). Each link opens a page that asks before
// it acts, with a form that POSTs the token: mail scanners and link previews fetch a link, and
// must not use up a single-use link, or suspend an account, by looking at it.
var (
	verifyEmailPage = page{"mail-link.html", "maillink.verify", "", nil}
	notMePage       = page{"mail-link.html", "maillink.not_me", "", nil}
)

func (s *Server) mailRoutes(api *echo.Group) {
	s.echo.GET("/email/verify", s.mailLink(verifyEmailPage, "/email/verify"))
	s.echo.POST("/email/verify", s.useMailLink(verifyEmailPage, s.svc.VerifyEmail))
	s.echo.GET("/email/not-me", s.mailLink(notMePage, "/email/not-me"))
	s.echo.POST("/email/not-me", s.useMailLink(notMePage, s.svc.NotMe))
	api.POST("/account/email/verification", s.resendVerification)
	if s.cfg.Mailbox != nil {
		// The mails hold live links (a "not me" link suspends an account): development mode may
		// run at a public URL (--dev), so the mailbox is the operator's, as the admin API is.
		s.echo.GET("/dev/mailbox", s.mailbox, s.requireAdmin)
	}
}

// mailLink asks whether to use the link's token.
func (s *Server) mailLink(p page, action string) echo.HandlerFunc {
	return func(c echo.Context) error {
		token := c.QueryParam("t")
		if token == "" {
			return s.renderStatus(c, http.StatusNotFound, p, pageData{Refusal: mcert.MailLinkUnknown.Name})
		}
		return s.render(c, p, pageData{Action: action, Token: token})
	}
}

// useMailLink uses the posted token, and says what it did or why it did not.
func (s *Server) useMailLink(p page, use func(context.Context, string) (storage.Account, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		if _, err := use(c.Request().Context(), c.FormValue("t")); err != nil {
			var me *mcert.Error
			if !errors.As(err, &me) || me.Kind == mcert.Internal {
				return err
			}
			return s.renderStatus(c, statusOf[me.Kind], p, pageData{Refusal: me.Code})
		}
		return s.render(c, p, pageData{Done: true})
	}
}

func (s *Server) resendVerification(c echo.Context) error {
	return s.respondAccount(c, http.StatusAccepted, s.svc.ResendVerification)
}

// mailbox shows the mails development mode sent to the log, newest first.
func (s *Server) mailbox(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"mails": s.cfg.Mailbox()})
}
