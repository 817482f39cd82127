package web

import (
	"context"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/mcert/mcert/storage"
)

// deviceRoutes are PROTOCOL.md section 5 and what goes with it: renaming a device,
// suspending and reinstating the account, and the citizen's audit log.
func (s *Server) deviceRoutes(api *echo.Group) {
	api.GET("/devices", s.listDevices)
	api.PATCH("/devices/:id", s.renameDevice)
	api.DELETE("/devices/:id", s.revokeDevice)
	api.POST("/account/suspend", s.suspend(true))
	api.POST("/account/reinstate", s.suspend(false))
	api.GET("/account/events", s.accountEvents)
}

func (s *Server) listDevices(c echo.Context) error {
	sess, _, err := s.session(c)
	if err != nil {
		return err
	}
	a, err := s.svc.Account(c.Request().Context(), sess)
	if err != nil {
		return err
	}
	devices, err := s.svc.Devices(c.Request().Context(), a)
	if err != nil {
		return err
	}
	views := make([]map[string]any, 0, len(devices))
	for _, d := range devices {
		views = append(views, s.deviceView(d))
	}
	return c.JSON(http.StatusOK, map[string]any{"devices": views})
}

func (s *Server) renameDevice(c echo.Context) error {
	sess, _, err := s.session(c)
	if err != nil {
		return err
	}
	var req struct {
		Name *string `json:"name"`
	}
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if err := requireField("name", req.Name != nil); err != nil {
		return err
	}
	d, err := s.svc.RenameDevice(c.Request().Context(), sess, c.Param("id"), *req.Name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.deviceView(d))
}

func (s *Server) revokeDevice(c echo.Context) error {
	sess, _, err := s.session(c)
	if err != nil {
		return err
	}
	d, err := s.svc.RevokeDevice(c.Request().Context(), sess, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.deviceView(d))
}

func (s *Server) suspend(suspended bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		return s.respondAccount(c, http.StatusOK, func(ctx context.Context, sess storage.Session) (storage.Account, error) {
			return s.svc.SetSuspended(ctx, sess, suspended)
		})
	}
}

func (s *Server) accountEvents(c echo.Context) error {
	sess, _, err := s.session(c)
	if err != nil {
		return err
	}
	before, limit := pageParams(c)
	events, err := s.svc.Events(c.Request().Context(), sess, before, limit)
	if err != nil {
		return err
	}
	return s.eventsPage(c, events, limit)
}

// pageParams reads ?before=<event id>&limit=<n> (default 50).
func pageParams(c echo.Context) (string, int) {
	limit, err := strconv.Atoi(c.QueryParam("limit"))
	if err != nil || limit <= 0 || limit > 200 {
		limit = 50
	}
	return c.QueryParam("before"), limit
}

// eventsPage answers a page of the audit log with the cursor of the next one (null at the end),
// each event with the name of the website it concerns, which the citizen knows it by.
func (s *Server) eventsPage(c echo.Context, events []storage.Event, limit int) error {
	clients, err := s.svc.Clients(c.Request().Context())
	if err != nil {
		return err
	}
	names := make(map[string]string, len(clients))
	for _, cl := range clients {
		names[cl.ID] = cl.Name
	}
	views := make([]map[string]any, 0, len(events))
	for _, e := range events {
		v := map[string]any{
			"id": e.ID, "time": rfc3339(e.Time), "type": e.Type, "outcome": e.Outcome, "reason": e.Reason,
			"client_id": e.ClientID, "client_name": names[e.ClientID], "device_id": e.DeviceID, "actor": e.Actor, "ip": e.IP,
		}
		if e.Detail != "" {
			v["detail"] = e.Detail
		}
		views = append(views, v)
	}
	var next any
	if len(events) == limit {
		next = events[len(events)-1].ID
	}
	return c.JSON(http.StatusOK, map[string]any{"events": views, "next": next})
}
