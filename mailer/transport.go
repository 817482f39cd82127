package mailer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"sync"
)

// Mail is one rendered message to send.
type Mail struct {
	ID      string // the outbox's ID: the Message-ID's local part and the X-Mcert-Mail-ID header
	To      string // exactly one address, as net/mail.ParseAddress reads it
	Subject string // one line
	Body    string // text/plain; charset=utf-8
}

// Transport delivers mails. Send's error says whether a retry is worth it: a *PermanentError
// for a mail that will never go (an address the server refuses for good, a malformed address
// or header), anything else is temporary (connection refused, a 4xx answer, a timeout).
type Transport interface {
	Send(ctx context.Context, m Mail) error
}

// PermanentError is a delivery failure that a retry cannot mend.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent delivery failure: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// permanent is a *PermanentError saying what is wrong.
func permanent(format string, args ...any) error {
	return &PermanentError{Err: fmt.Errorf("mailer: "+format, args...)}
}

// maxIDLength bounds an ID, so that the Message-ID stays well within a header line.
const maxIDLength = 128

// check refuses a Mail that cannot be sent as it is, with a *PermanentError, and gives its
// recipient. Nothing from a Mail reaches a header unchecked: the ID is a plain token, the
// recipient exactly one address, the subject one line.
func check(m Mail) (*mail.Address, error) {
	if !validID(m.ID) {
		return nil, permanent("mail ID %q is not 1 to %d letters, digits, '.', '_' or '-' (no leading, trailing or double '.')", m.ID, maxIDLength)
	}
	if strings.ContainsAny(m.To, "\r\n") {
		return nil, permanent("mail %s: the recipient %q has a line break", m.ID, m.To)
	}
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return nil, permanent("mail %s: the recipient %q is not one email address: %v", m.ID, m.To, err)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return nil, permanent("mail %s: the subject %q has a line break", m.ID, m.Subject)
	}
	if strings.TrimSpace(m.Subject) == "" {
		return nil, permanent("mail %s has no subject", m.ID)
	}
	return to, nil
}

// validID reports whether id can be a Message-ID's left part (RFC 5322 dot-atom-text) made of
// the characters outbox IDs use.
func validID(id string) bool {
	if id == "" || len(id) > maxIDLength || id[0] == '.' || id[len(id)-1] == '.' || strings.Contains(id, "..") {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// recentMails is how many mails a Log keeps.
const recentMails = 100

// Log is the development Transport: it writes each mail to a logger at Info level and keeps
// the last 100 for a development mailbox page. It refuses what SMTP refuses.
type Log struct {
	log *slog.Logger

	mu     sync.Mutex
	recent []Mail // oldest first, at most recentMails
}

var _ Transport = (*Log)(nil)

// NewLog is a Log writing to l.
func NewLog(l *slog.Logger) *Log { return &Log{log: l} }

// Send logs m and keeps it.
func (l *Log) Send(ctx context.Context, m Mail) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := check(m); err != nil {
		return err
	}
	l.log.InfoContext(ctx, "mail", "id", m.ID, "to", m.To, "subject", m.Subject, "body", m.Body)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.recent) == recentMails {
		l.recent = append(l.recent[:0], l.recent[1:]...)
	}
	l.recent = append(l.recent, m)
	return nil
}

// Recent are the mails kept, newest first.
func (l *Log) Recent() []Mail {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Mail, len(l.recent))
	for i, m := range l.recent {
		out[len(out)-1-i] = m
	}
	return out
}

// IsPermanent reports whether err is, or wraps, a *PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}
