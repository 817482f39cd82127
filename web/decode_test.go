package web

import (
	"errors"
	"strings"
	"testing"

	"github.com/mcert/mcert"
)

// TestDecodeJSON: a body is one JSON object, decoded into its Go type, or refused with what is
// wrong with it and without echoing it: the same whether it decodes in place or is read again
// to say why it did not.
func TestDecodeJSON(t *testing.T) {
	type body struct {
		Token string `json:"token"`
		N     int    `json:"n"`
	}
	for _, tc := range []struct {
		name, body string
		want       body
		message    string // "" for a body that decodes
	}{
		{"object", `{"token":"t","n":2}`, body{"t", 2}, ""},
		{"object among spaces", " \n{\"token\":\"t\"}\r\n\t", body{Token: "t"}, ""},
		{"unknown field", `{"token":"t","other":true}`, body{Token: "t"}, ""},
		{"empty", ``, body{}, "the body is empty"},
		{"two objects", `{"token":"t"} {"n":1}`, body{}, mcert.BodyTrailing.Message},
		{"object then garbage", `{"token":"t"}x`, body{}, mcert.BodyTrailing.Message},
		{"array", `[]`, body{}, mcert.MalformedBody.Message},
		{"not JSON", `{token:`, body{}, "it is not valid JSON"},
		{"cut short", `{"token":"t"`, body{}, "it is not valid JSON"},
		{"wrong type", `{"token":5}`, body{}, `field "token" must be a string, not number`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got body
			err := decodeJSON([]byte(tc.body), &got)
			if tc.message == "" {
				if err != nil || got != tc.want {
					t.Fatalf("decoded %+v, %v; want %+v", got, err, tc.want)
				}
				return
			}
			var me *mcert.Error
			if !errors.As(err, &me) || me.Code != mcert.MalformedBody.Name || !strings.Contains(me.Message, tc.message) {
				t.Fatalf("got %v, want malformed_body saying %q", err, tc.message)
			}
		})
	}
}
