package web

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/mcert/mcert"
)

// decodeBody reads a JSON object into v. Unknown fields are ignored, so clients may send
// fields of later protocol versions; anything that is not one JSON object is refused.
func decodeBody(c echo.Context, v any) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	return decodeJSON(body, v)
}

// readBody reads the request's body, within the body limit.
func readBody(c echo.Context) ([]byte, error) {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var he *echo.HTTPError
		if errors.As(err, &he) {
			return nil, he // the body limit
		}
		return nil, mcert.BodyUnreadable.New()
	}
	return body, nil
}

func decodeJSON(body []byte, v any) error {
	// null, a number or an array would decode into an object's Go type without complaint.
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && trimmed[0] != '{' {
		return mcert.MalformedBody.New()
	}
	// A body that is one JSON value decodes in place; only a refused one is read again by a
	// Decoder, to tell trailing data from other problems (the Decoder copies the whole body).
	if json.Unmarshal(body, v) == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return mcert.BodyNotJSON.Newf(jsonProblem(err))
	}
	if dec.More() {
		return mcert.BodyTrailing.New()
	}
	return nil
}

// jsonProblem says what is wrong with a body without echoing its contents.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return "expected an object, got " + te.Value
		}
		return fmt.Sprintf("field %q must be %s, not %s", te.Field, jsonType(te.Type.Kind().String()), te.Value)
	}
	if errors.Is(err, io.EOF) {
		return "the body is empty"
	}
	return "it is not valid JSON"
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "struct", "map":
		return "an object"
	case "slice":
		return "an array"
	case "bool":
		return "true or false"
	}
	return "a number"
}

// requireJSON refuses a body that is not declared application/json.
func requireJSON(c echo.Context) error {
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if err != nil || mt != echo.MIMEApplicationJSON {
		return echo.ErrUnsupportedMediaType
	}
	return nil
}

// fromB64 decodes the base64url value of a required field; padding is tolerated on input.
func fromB64(field, s string) ([]byte, error) {
	if s == "" {
		return nil, mcert.FieldRequired.Newf(field)
	}
	v, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, mcert.FieldNotBase64URL.Newf(field)
	}
	return v, nil
}

// requireField reports a missing required value with the field's name.
func requireField(name string, present bool) error {
	if present {
		return nil
	}
	return mcert.FieldRequired.Newf(name)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// tokenBody reads the body {"token": "..."} of the phone's one-step calls.
func tokenBody(c echo.Context) (string, error) {
	var req struct {
		Token string `json:"token"`
	}
	if err := decodeBody(c, &req); err != nil {
		return "", err
	}
	return req.Token, requireField("token", req.Token != "")
}

// credentialBody reads the body {"token": "...", "credential": {...}} with which the phone
// finishes a ceremony.
func credentialBody(c echo.Context) (string, json.RawMessage, error) {
	var req struct {
		Token      string          `json:"token"`
		Credential json.RawMessage `json:"credential"`
	}
	if err := decodeBody(c, &req); err != nil {
		return "", nil, err
	}
	if err := requireField("token", req.Token != ""); err != nil {
		return "", nil, err
	}
	return req.Token, req.Credential, requireField("credential", len(req.Credential) > 0 && string(req.Credential) != "null")
}
