// Package mailer renders mcert's emails (Render) and delivers them (Transport: SMTP for
// production, Log for development). Rendering is plain text in Traditional Chinese or
// English from embedded templates; delivery is go-mail's, which does all SMTP and MIME
// encoding.
package mailer

import (
	"embed"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/mcert/mcert"
)

// Operator is who runs the service, named in every mail.
type Operator struct {
	Name         string // e.g. 內政部
	SupportPhone string // e.g. 0800-080-117
	SupportURL   string // optional
}

// Notice names: what a mail says. The comment after each lists its params.
const (
	VerifyEmail       = "verify-email"       // name, link, expires_at
	PhoneBound        = "phone-bound"        // name, device, time, where, not_me, account_url
	PhoneRevoked      = "phone-revoked"      // name, device, time, account_url
	AccountSuspended  = "account-suspended"  // name, time, by, account_url
	AccountReinstated = "account-reinstated" // name, time, account_url
	DeviceExpiring    = "device-expiring"    // name, device, expires_at, days, bind_url
	CertificateIssued = "certificate-issued" // name, device, serial, not_after, account_url
)

// The languages a mail can be written in; zh-TW is the default.
const (
	langZH = "zh-TW"
	langEN = "en"
)

// kind says what a param holds, and so how it is checked and shown.
type kind int

const (
	text kind = iota // a single line of text: control and format characters become spaces
	link             // an absolute http(s) URL, shown exactly as given
	when             // an RFC 3339 time, shown in Taiwan's time
	days             // a positive whole number of days
	by               // who suspended an account: citizen, not-me-link or operator
)

// notices holds every notice's params. Every param is required, and no other is taken.
var notices = map[string]map[string]kind{
	VerifyEmail:       {"name": text, "link": link, "expires_at": when},
	PhoneBound:        {"name": text, "device": text, "time": when, "where": text, "not_me": link, "account_url": link},
	PhoneRevoked:      {"name": text, "device": text, "time": when, "account_url": link},
	AccountSuspended:  {"name": text, "time": when, "by": by, "account_url": link},
	AccountReinstated: {"name": text, "time": when, "account_url": link},
	DeviceExpiring:    {"name": text, "device": text, "expires_at": when, "days": days, "bind_url": link},
	CertificateIssued: {"name": text, "device": text, "serial": text, "not_after": when, "account_url": link},
}

// suspendedBy are the values of account-suspended's by.
var suspendedBy = []string{"citizen", "not-me-link", "operator"}

// taipei is Taiwan's time: UTC+8, without daylight saving since 1980, so a fixed zone is
// exact for every date a mail can name and needs no time zone database on the host.
var taipei = time.FixedZone("Asia/Taipei", 8*60*60)

//go:embed templates
var templateFiles embed.FS

// templates are the parsed templates by language and notice, each defining "subject" and
// "body" and, from the language's footer.txt, "footer". Parsed once, on first use.
var templates = sync.OnceValues(func() (map[string]map[string]*template.Template, error) {
	all := map[string]map[string]*template.Template{}
	for _, lang := range []string{langZH, langEN} {
		all[lang] = map[string]*template.Template{}
		for notice := range notices {
			t, err := template.New(notice).Option("missingkey=error").ParseFS(templateFiles,
				"templates/"+lang+"/footer.txt", "templates/"+lang+"/"+notice+".txt")
			if err != nil {
				return nil, fmt.Errorf("mailer: templates of %s in %s: %w", notice, lang, err)
			}
			for _, name := range []string{"subject", "body", "footer"} {
				if t.Lookup(name) == nil {
					return nil, fmt.Errorf("mailer: template %s in %s defines no %q", notice, lang, name)
				}
			}
			all[lang][notice] = t
		}
	}
	return all, nil
})

// Render makes a mail's subject and plain-text body in lang: "en" (or any English tag,
// en-US…) for English, Traditional Chinese for anything else. Every mail ends with a footer
// naming the operator and its helpline and saying that the service never asks for a PIN or a
// password by mail. Times (RFC 3339 in params) are shown in Taiwan's time. Text params become
// one line each (control and format characters, CR and LF among them, turn into spaces);
// links must be absolute http or https URLs. An unknown notice, a missing, empty, malformed
// or unknown param is an error.
func Render(notice, lang string, op Operator, params map[string]string) (subject, body string, err error) {
	kinds, ok := notices[notice]
	if !ok {
		return "", "", fmt.Errorf("mailer: unknown notice %q", notice)
	}
	lang = chooseLang(lang)
	data, problems := values(lang, kinds, params)
	problems = append(problems, operatorValues(op, data)...)
	if len(problems) > 0 {
		sort.Strings(problems)
		return "", "", fmt.Errorf("mailer: %s: %s", notice, strings.Join(problems, "; "))
	}
	all, err := templates()
	if err != nil {
		return "", "", err
	}
	t := all[lang][notice]
	var subj, main, footer strings.Builder
	for _, part := range []struct {
		name string
		out  *strings.Builder
	}{{"subject", &subj}, {"body", &main}, {"footer", &footer}} {
		if err := t.ExecuteTemplate(part.out, part.name, data); err != nil {
			return "", "", fmt.Errorf("mailer: %s in %s: %w", notice, lang, err)
		}
	}
	subject = strings.Join(strings.Fields(subj.String()), " ")
	body = tidy(main.String()) + "\n\n" + tidy(footer.String()) + "\n"
	return subject, body, nil
}

// chooseLang is the template language for a requested one.
func chooseLang(lang string) string {
	primary, _, _ := strings.Cut(lang, "-")
	if strings.EqualFold(primary, "en") {
		return langEN
	}
	return langZH
}

// values checks params against a notice's kinds and gives what the templates show, or the
// problems found.
func values(lang string, kinds map[string]kind, params map[string]string) (data map[string]string, problems []string) {
	for name := range params {
		if _, ok := kinds[name]; !ok {
			problems = append(problems, fmt.Sprintf("unknown param %q", oneLine(name)))
		}
	}
	data = map[string]string{}
	for name, k := range kinds {
		v, ok := params[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("missing param %q", name))
			continue
		}
		shown, err := value(lang, k, v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("param %q: %v", name, err))
			continue
		}
		data[name] = shown
	}
	return data, problems
}

// value is how one param of kind k is shown in lang.
func value(lang string, k kind, v string) (string, error) {
	switch k {
	case link:
		return checkLink(v)
	case when:
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return "", fmt.Errorf("not an RFC 3339 time: %q", oneLine(v))
		}
		return formatTime(lang, t), nil
	case days:
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || strconv.Itoa(n) != v {
			return "", fmt.Errorf("not a positive whole number of days: %q", oneLine(v))
		}
		return v, nil
	case by:
		for _, b := range suspendedBy {
			if v == b {
				return v, nil
			}
		}
		return "", fmt.Errorf("%q is none of %s", oneLine(v), strings.Join(suspendedBy, ", "))
	default:
		s := oneLine(v)
		if s == "" {
			return "", errors.New("empty")
		}
		return s, nil
	}
}

// operatorValues adds the operator's name and support line to data, or gives the problems.
func operatorValues(op Operator, data map[string]string) (problems []string) {
	data["operator"] = oneLine(op.Name)
	data["support_phone"] = oneLine(op.SupportPhone)
	data["support_url"] = ""
	if data["operator"] == "" {
		problems = append(problems, "the operator has no name")
	}
	if data["support_phone"] == "" {
		problems = append(problems, "the operator has no support phone")
	}
	if op.SupportURL != "" {
		u, err := checkLink(op.SupportURL)
		if err != nil {
			problems = append(problems, fmt.Sprintf("the operator's support URL: %v", err))
		}
		data["support_url"] = u
	}
	return problems
}

// checkLink accepts an absolute http or https URL with nothing in it that would end it early
// in a mail reader (spaces, controls), and returns it unchanged.
func checkLink(v string) (string, error) {
	for _, r := range v {
		if r == ' ' || !mcert.PlainRune(r) || r == utf8.RuneError {
			return "", fmt.Errorf("a link with a space or control character: %q", oneLine(v))
		}
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("not an absolute http(s) URL: %q", oneLine(v))
	}
	return v, nil
}

// oneLine makes s a single line of plain text: invalid UTF-8 becomes U+FFFD, every control or
// format character (CR, LF, tab, bidi overrides, zero-width characters, line separators) a
// space, and runs of white space one space, trimmed at both ends.
func oneLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if !mcert.PlainRune(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// formatTime shows t in Taiwan's time, as people there write it: 2026年12月1日 19:35, or in
// English 1 Dec 2026 19:35 (Taiwan time).
func formatTime(lang string, t time.Time) string {
	t = t.In(taipei)
	if lang == langEN {
		return t.Format("2 Jan 2006 15:04") + " (Taiwan time)"
	}
	return fmt.Sprintf("%d年%d月%d日 %02d:%02d", t.Year(), int(t.Month()), t.Day(), t.Hour(), t.Minute())
}

// tidy trims a rendered part's blank lines at both ends and keeps at most one blank line
// between paragraphs, so templates may leave blank lines around their conditions.
func tidy(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	var out []string
	blank := true // drop blank lines at the start
	for _, line := range lines {
		if strings.TrimSpace(line) == "" {
			if !blank {
				out = append(out, "")
			}
			blank = true
			continue
		}
		out = append(out, line)
		blank = false
	}
	return strings.TrimRight(strings.Join(out, "\n"), "\n")
}
