package web

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/binding"
)

// backupRoutes lets the operator take a backup while the server keeps serving (mcert backup).
func (s *Server) backupRoutes(admin *echo.Group) {
	admin.GET("/backup", s.adminBackup)
}

func (s *Server) adminBackup(c echo.Context) error {
	if s.cfg.Backup == nil {
		return mcert.NoOnlineBackup.New()
	}
	// The server's write timeout is sized for API answers; a large data file may take longer.
	if err := http.NewResponseController(c.Response()).SetWriteDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	name := "mcert-" + s.svc.Now().UTC().Format("20060102T150405Z") + ".db"
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, echo.MIMEOctetStream)
	h.Set(echo.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	n, err := s.cfg.Backup(c.Response())
	if err != nil && c.Response().Committed {
		s.cfg.Logger.Error("backup broke off while streaming", "bytes", n, "err", err)
		// A normal return would end the body cleanly and hand the client a short file that looks
		// whole; aborting the connection makes the download fail.
		panic(http.ErrAbortHandler)
	}
	if err != nil {
		return err
	}
	s.cfg.Logger.Info("backup sent", "bytes", n)
	s.svc.RecordAdmin(c.Request().Context(), binding.EventAdminBackup, "")
	return nil
}
