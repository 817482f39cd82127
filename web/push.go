package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/mcert/mcert/push"
)

// pushRoutes mount the phone's notifications (PROTOCOL.md section 10).
func (s *Server) pushRoutes(api *echo.Group) {
	api.GET("/phone/push/key", s.pushKey)
	api.POST("/phone/push", s.subscribePush)
	api.DELETE("/phone/push", s.unsubscribePush)
}

func (s *Server) pushKey(c echo.Context) error {
	key, err := s.svc.PushKey(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, push.KeyResponse{PublicKey: key})
}

func (s *Server) subscribePush(c echo.Context) error {
	var body push.SubscribeRequest
	if err := decodeBody(c, &body); err != nil {
		return err
	}
	// A missing or malformed header is answered as an unknown token is, by the service.
	if err := s.svc.SubscribePush(c.Request().Context(), bearerToken(c.Request()), body.Subscription); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, push.SubscribeResponse{Endpoint: body.Subscription.Endpoint})
}

func (s *Server) unsubscribePush(c echo.Context) error {
	if err := s.svc.UnsubscribePush(c.Request().Context(), bearerToken(c.Request())); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
