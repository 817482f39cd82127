package mailer_test

import (
	"maps"
	"strings"
	"testing"

	"github.com/mcert/mcert/mailer"
)

var operator = mailer.Operator{Name: "內政部", SupportPhone: "0800-080-117", SupportURL: "https://moica.nat.gov.tw/"}

// params are a complete set of params for each notice.
var params = map[string]map[string]string{
	mailer.VerifyEmail: {"name": "王小明", "link": "https://mcert.example.tw/verify-email?token=AbC_123-xyz", "expires_at": "2026-12-01T11:35:00Z"},
	mailer.PhoneBound: {"name": "王小明", "device": "Pixel 8", "time": "2026-12-01T11:35:00Z",
		"where": "Chrome on Windows, 203.0.113.5", "not_me": "https://mcert.example.tw/not-me#t=Zm9v", "account_url": "https://mcert.example.tw/account"},
	mailer.PhoneRevoked:      {"name": "王小明", "device": "Pixel 8", "time": "2026-12-01T11:35:00Z", "account_url": "https://mcert.example.tw/account"},
	mailer.AccountSuspended:  {"name": "王小明", "time": "2026-12-01T11:35:00Z", "by": "not-me-link", "account_url": "https://mcert.example.tw/account"},
	mailer.AccountReinstated: {"name": "王小明", "time": "2026-12-01T11:35:00Z", "account_url": "https://mcert.example.tw/account"},
	mailer.DeviceExpiring: {"name": "王小明", "device": "iPhone 15", "expires_at": "2026-12-01T11:35:00Z", "days": "30",
		"bind_url": "https://mcert.example.tw/"},
	mailer.CertificateIssued: {"name": "王小明", "device": "Pixel 8", "serial": "3F9A22C1D0E4", "not_after": "2026-12-01T11:35:00Z",
		"account_url": "https://mcert.example.tw/account"},
}

// links are the params of each notice that are links.
var links = map[string][]string{
	mailer.VerifyEmail:       {"link"},
	mailer.PhoneBound:        {"not_me", "account_url"},
	mailer.PhoneRevoked:      {"account_url"},
	mailer.AccountSuspended:  {"account_url"},
	mailer.AccountReinstated: {"account_url"},
	mailer.DeviceExpiring:    {"bind_url"},
	mailer.CertificateIssued: {"account_url"},
}

// wantTime is 2026-12-01T11:35:00Z as each language shows it.
var wantTime = map[string]string{"zh-TW": "2026年12月1日 19:35", "en": "1 Dec 2026 19:35 (Taiwan time)"}

func render(t *testing.T, notice, lang string, p map[string]string) (subject, body string) {
	t.Helper()
	subject, body, err := mailer.Render(notice, lang, operator, p)
	if err != nil {
		t.Fatalf("Render(%s, %s): %v", notice, lang, err)
	}
	return subject, body
}

func TestRenderEveryNotice(t *testing.T) {
	for notice, p := range params {
		for _, lang := range []string{"zh-TW", "en"} {
			t.Run(notice+"/"+lang, func(t *testing.T) {
				subject, body := render(t, notice, lang, p)
				if subject == "" || strings.ContainsAny(subject, "\r\n") {
					t.Errorf("subject %q", subject)
				}
				if strings.Contains(subject+body, "<no value>") || strings.Contains(body, "\r") {
					t.Errorf("a hole or a CR in\n%s\n%s", subject, body)
				}
				// The footer: who sent it, the helpline, and no PIN by mail.
				for _, want := range []string{operator.Name, operator.SupportPhone, operator.SupportURL, "PIN"} {
					if !strings.Contains(body, want) {
						t.Errorf("no %q in the body:\n%s", want, body)
					}
				}
				if !strings.Contains(body, "\n-- \n") {
					t.Errorf("no signature separator before the footer:\n%s", body)
				}
				// Every link exactly, ending its line; the name; the time in Taipei.
				for _, name := range links[notice] {
					if !hasLineEnding(body, p[name]) {
						t.Errorf("%s %q is not at the end of a line of\n%s", name, p[name], body)
					}
				}
				for _, name := range []string{"name", "device", "where", "serial", "days"} {
					if v, ok := p[name]; ok && !strings.Contains(body, v) {
						t.Errorf("%s %q not in the body:\n%s", name, v, body)
					}
				}
				if !strings.Contains(body, wantTime[lang]) {
					t.Errorf("no %q in the body:\n%s", wantTime[lang], body)
				}
				if strings.Contains(body, "2026-12-01T") || strings.Contains(body, "11:35") {
					t.Errorf("the time is not in Taipei's:\n%s", body)
				}
				if lang == "zh-TW" && !strings.Contains(subject+body, "行動自然人憑證") {
					t.Errorf("the zh-TW mail does not name 行動自然人憑證:\n%s\n%s", subject, body)
				}
				if !strings.HasSuffix(body, "\n") || strings.HasSuffix(body, "\n\n") || strings.Contains(body, "\n\n\n") {
					t.Errorf("untidy blank lines:\n%q", body)
				}
			})
		}
	}
}

// hasLineEnding reports whether some line of body ends with s after a space, a colon or
// nothing: a link that a mail reader can find whole.
func hasLineEnding(body, s string) bool {
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutSuffix(line, s); ok {
			if rest == "" || strings.HasSuffix(rest, " ") || strings.HasSuffix(rest, "：") || strings.HasSuffix(rest, ":") {
				return true
			}
		}
	}
	return false
}

func TestRenderTimes(t *testing.T) {
	tests := []struct {
		name, in, zh, en string
	}{
		{"UTC", "2026-12-01T11:35:00Z", "2026年12月1日 19:35", "1 Dec 2026 19:35 (Taiwan time)"},
		{"already Taipei", "2026-12-01T19:35:00+08:00", "2026年12月1日 19:35", "1 Dec 2026 19:35 (Taiwan time)"},
		{"next day in Taipei", "2026-12-31T16:30:00Z", "2027年1月1日 00:30", "1 Jan 2027 00:30 (Taiwan time)"},
		{"fractional seconds", "2026-07-04T01:02:03.456-04:00", "2026年7月4日 13:02", "4 Jul 2026 13:02 (Taiwan time)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := maps.Clone(params[mailer.AccountReinstated])
			p["time"] = tc.in
			if _, body := render(t, mailer.AccountReinstated, "zh-TW", p); !strings.Contains(body, tc.zh) {
				t.Errorf("zh-TW: no %q in\n%s", tc.zh, body)
			}
			if _, body := render(t, mailer.AccountReinstated, "en", p); !strings.Contains(body, tc.en) {
				t.Errorf("en: no %q in\n%s", tc.en, body)
			}
		})
	}
}

func TestRenderLanguage(t *testing.T) {
	zh, _ := render(t, mailer.VerifyEmail, "zh-TW", params[mailer.VerifyEmail])
	en, _ := render(t, mailer.VerifyEmail, "en", params[mailer.VerifyEmail])
	if zh == en {
		t.Fatalf("the same subject in both languages: %q", zh)
	}
	tests := []struct{ lang, want string }{
		{"", zh}, {"zh-TW", zh}, {"zh", zh}, {"fr", zh}, {"ja-JP", zh}, {"english", zh},
		{"en", en}, {"EN", en}, {"en-US", en}, {"en-GB", en},
	}
	for _, tc := range tests {
		if got, _ := render(t, mailer.VerifyEmail, tc.lang, params[mailer.VerifyEmail]); got != tc.want {
			t.Errorf("lang %q: subject %q, want %q", tc.lang, got, tc.want)
		}
	}
}

func TestRenderSuspendedBy(t *testing.T) {
	for _, lang := range []string{"zh-TW", "en"} {
		seen := map[string]string{}
		for _, by := range []string{"citizen", "not-me-link", "operator"} {
			p := maps.Clone(params[mailer.AccountSuspended])
			p["by"] = by
			_, body := render(t, mailer.AccountSuspended, lang, p)
			if other, ok := seen[body]; ok {
				t.Errorf("%s: by %s and by %s say the same", lang, by, other)
			}
			seen[body] = by
		}
	}
}

func TestRenderRefuses(t *testing.T) {
	type change func(p map[string]string)
	set := func(name, v string) change { return func(p map[string]string) { p[name] = v } }
	tests := []struct {
		name   string
		notice string
		op     *mailer.Operator
		change change
		want   string // in the error
	}{
		{name: "unknown notice", notice: "password-reset", want: "unknown notice"},
		{name: "empty notice", notice: "", want: "unknown notice"},
		{name: "unknown param", notice: mailer.VerifyEmail, change: set("expires", "2026-12-01T11:35:00Z"), want: `unknown param "expires"`},
		{name: "empty name", notice: mailer.VerifyEmail, change: set("name", ""), want: `"name": empty`},
		{name: "name of control characters only", notice: mailer.VerifyEmail, change: set("name", "\r\n\t\u202e"), want: `"name": empty`},
		{name: "time not RFC 3339", notice: mailer.VerifyEmail, change: set("expires_at", "2026-12-01 11:35"), want: "RFC 3339"},
		{name: "link relative", notice: mailer.VerifyEmail, change: set("link", "/verify?token=x"), want: "absolute"},
		{name: "link javascript", notice: mailer.VerifyEmail, change: set("link", "javascript:alert(1)"), want: "absolute"},
		{name: "link with a line break", notice: mailer.VerifyEmail, change: set("link", "https://a.example/\r\nBcc: x@y"), want: "control"},
		{name: "link with a space", notice: mailer.VerifyEmail, change: set("link", "https://a.example/ x"), want: "space"},
		{name: "by unknown", notice: mailer.AccountSuspended, change: set("by", "admin"), want: "citizen"},
		{name: "days not a number", notice: mailer.DeviceExpiring, change: set("days", "seven"), want: "days"},
		{name: "days zero", notice: mailer.DeviceExpiring, change: set("days", "0"), want: "days"},
		{name: "operator without name", notice: mailer.VerifyEmail, op: &mailer.Operator{SupportPhone: "0800-080-117"}, want: "no name"},
		{name: "operator without phone", notice: mailer.VerifyEmail, op: &mailer.Operator{Name: "內政部"}, want: "no support phone"},
		{name: "operator with a bad URL", notice: mailer.VerifyEmail, op: &mailer.Operator{Name: "內政部", SupportPhone: "1", SupportURL: "moica.nat.gov.tw"}, want: "support URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := maps.Clone(params[tc.notice])
			if p == nil {
				p = maps.Clone(params[mailer.VerifyEmail])
			}
			if tc.change != nil {
				tc.change(p)
			}
			op := operator
			if tc.op != nil {
				op = *tc.op
			}
			subject, body, err := mailer.Render(tc.notice, "zh-TW", op, p)
			if err == nil {
				t.Fatalf("rendered\n%s\n%s", subject, body)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want one line with %q", err, tc.want)
			}
		})
	}
}

// TestRenderMissingParam drops each param of each notice in turn.
func TestRenderMissingParam(t *testing.T) {
	for notice, p := range params {
		for name := range p {
			t.Run(notice+"/"+name, func(t *testing.T) {
				q := maps.Clone(p)
				delete(q, name)
				for _, lang := range []string{"zh-TW", "en"} {
					if _, body, err := mailer.Render(notice, lang, operator, q); err == nil || !strings.Contains(err.Error(), `missing param "`+name+`"`) {
						t.Errorf("%s: error %v, body\n%s", lang, err, body)
					}
				}
			})
		}
	}
}

// TestRenderOneLine: a value with line breaks stays on its line, so that nothing in it can
// pose as a header or a paragraph of the mail.
func TestRenderOneLine(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"CRLF header", "Pixel 8\r\nBcc: evil@example.com", "Pixel 8 Bcc: evil@example.com"},
		{"bare LF", "a\nb\n\nc", "a b c"},
		{"bare CR", "a\rb", "a b"},
		{"unicode line separators", "a\u2028b\u2029c\u0085d", "a b c d"},
		{"bidi override", "abc\u202Egpj.exe", "abc gpj.exe"},
		{"tabs and runs of spaces", "  a\t\tb   c ", "a b c"},
		{"invalid UTF-8", "a\xffb", "a\uFFFDb"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := maps.Clone(params[mailer.PhoneBound])
			p["device"], p["name"] = tc.in, tc.in
			for _, lang := range []string{"zh-TW", "en"} {
				_, body := render(t, mailer.PhoneBound, lang, p)
				if !strings.Contains(body, tc.want) {
					t.Errorf("%s: no %q in\n%s", lang, tc.want, body)
				}
				for _, line := range strings.Split(body, "\n") {
					if strings.HasPrefix(line, "Bcc:") {
						t.Errorf("%s: a line %q", lang, line)
					}
				}
			}
		})
	}
}
