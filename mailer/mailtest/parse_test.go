package mailtest

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, raw, subject, body string
	}{
		{"base64", "Subject: =?UTF-8?b?5Li75peo?=\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n5YWn\r\n5paHCg==\r\n",
			"主旨", "內文\n"},
		{"quoted-printable", "Subject: =?UTF-8?q?=E4=B8=BB?=\r\n =?UTF-8?q?=E6=97=A8?=\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=E5=85=A7=E6=96=\r\n=87\r\nline 2\r\n",
			"主旨", "內文\nline 2\n"},
		{"7bit", "Subject: plain\r\n\r\nhello\r\n", "plain", "hello\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := parse([]byte(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject != tc.subject || m.Body != tc.body {
				t.Errorf("subject %q, body %q", m.Subject, m.Body)
			}
		})
	}
	for _, raw := range []string{
		"Subject: x\r\nContent-Type: text/plain; charset=big5\r\n\r\nx",
		"Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\nx",
		"Subject: x\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nx",
	} {
		if _, err := parse([]byte(raw)); err == nil {
			t.Errorf("parsed %q", strings.SplitN(raw, "\r\n", 3)[1])
		}
	}
}
