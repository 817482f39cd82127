package mailer_test

import (
	"maps"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/mcert/mcert/mailer"
)

// FuzzRender feeds device and citizen names to the notices that show them: Render never
// panics, the subject is one line, the body has no CR, and each name, made one line, is in
// the body; a name that is nothing but control characters and spaces is an error.
func FuzzRender(f *testing.F) {
	for _, seed := range [][2]string{
		{"Pixel 8", "王小明"},
		{"x\r\nBcc: evil@example.com", "王小明\r\n\r\nTo: a@b"},
		{"\u202Eexe.txt", "\u200b"},
		{"{{.name}}", "<no value>"},
		{"a\xff\xfe", "\t\v\f"},
		{"", " "},
	} {
		f.Add(seed[0], seed[1])
	}
	notices := []string{mailer.PhoneBound, mailer.PhoneRevoked, mailer.DeviceExpiring, mailer.CertificateIssued}
	f.Fuzz(func(t *testing.T, device, name string) {
		for _, notice := range notices {
			for _, lang := range []string{"zh-TW", "en"} {
				p := maps.Clone(params[notice])
				p["device"], p["name"] = device, name
				subject, body, err := mailer.Render(notice, lang, operator, p)
				wantDevice, wantName := flatten(device), flatten(name)
				if err != nil {
					if wantDevice != "" && wantName != "" {
						t.Fatalf("%s/%s: %v", notice, lang, err)
					}
					continue
				}
				if wantDevice == "" || wantName == "" {
					t.Fatalf("%s/%s: rendered an empty name (device %q, name %q)", notice, lang, device, name)
				}
				if strings.ContainsAny(subject, "\r\n") || subject == "" {
					t.Fatalf("%s/%s: subject %q", notice, lang, subject)
				}
				if strings.Contains(body, "\r") || !utf8.ValidString(body) {
					t.Fatalf("%s/%s: a CR or invalid UTF-8 in the body %q", notice, lang, body)
				}
				for _, want := range []string{wantDevice, wantName} {
					if !strings.Contains(body, want) {
						t.Fatalf("%s/%s: %q not on a line of\n%s", notice, lang, want, body)
					}
				}
			}
		}
	})
}

// flatten is what a value should look like on its one line, written apart from Render's own
// code: invalid bytes as U+FFFD, every control or format character or line separator as a
// space, white space runs as one space, trimmed.
func flatten(s string) string {
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r) {
			r = ' '
		}
		b.WriteRune(r)
	}
	return strings.Join(strings.Fields(b.String()), " ")
}
