package postgres

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/mcert/mcert/storage"
)

// column is one field of a record in its table: where a read puts it, and what a write
// stores. Listing a record's columns once, in one function, keeps reads, inserts and updates
// of it in step.
type column struct {
	name string
	dst  any // nil for a column that is written but not read back
	arg  any
}

func col[T any](name string, p *T) column { return column{name, p, *p} }

func timeCol(name string, p *time.Time) column { return column{name, timeDst{p}, stamp(*p)} }

func optTimeCol(name string, p **time.Time) column {
	return column{name, optTimeDst{p}, optStamp(*p)}
}

// keyCol is a unique key that a record may leave empty: NULL then, which UNIQUE lets many
// records share, and which a lookup by an empty key finds none by.
func keyCol(name string, p *[]byte) column {
	c := column{name, p, *p}
	if len(*p) == 0 {
		c.arg = nil
	}
	return c
}

// keyTextCol is keyCol for a text key: NULL when "", which reads back as "".
func keyTextCol(name string, p *string) column {
	c := column{name, keyTextDst{p}, *p}
	if *p == "" {
		c.arg = nil
	}
	return c
}

type keyTextDst struct{ s *string }

func (d keyTextDst) ScanText(v pgtype.Text) error {
	*d.s = v.String // "" for NULL
	return nil
}

// table is one record type's table, and its statements.
type table[T any] struct {
	name    string
	record  string // what one record is called, in errors
	columns func(*T) []column
	fixed   []string // the columns an update may not change, the key first; the others may be NULL

	read   string // the columns a read selects, in the order of columns
	insert string
	set    string // an update's SET list: every column but the fixed ones
	update string
}

func newTable[T any](name, record string, columns func(*T) []column, fixed ...string) *table[T] {
	var zero T
	cols := columns(&zero)
	var read, all, params, set, where []string
	for i, c := range cols {
		if c.dst != nil {
			read = append(read, c.name)
		}
		all = append(all, c.name)
		param := fmt.Sprintf("$%d", i+1)
		params = append(params, param)
		switch {
		case len(fixed) > 0 && c.name == fixed[0]:
			where = append(where, c.name+" = "+param)
		case slices.Contains(fixed, c.name):
			// A fixed column but the key may be NULL (a mail without a Key), which = never is.
			where = append(where, c.name+" IS NOT DISTINCT FROM "+param)
		default:
			set = append(set, c.name+" = "+param)
		}
	}
	return &table[T]{
		name: name, record: record, columns: columns, fixed: fixed,
		read:   strings.Join(read, ", "),
		insert: fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", name, strings.Join(all, ", "), strings.Join(params, ", ")),
		set:    strings.Join(set, ", "),
		update: fmt.Sprintf("UPDATE %s SET %s WHERE %s", name, strings.Join(set, ", "), strings.Join(where, " AND ")),
	}
}

func args(cols []column) []any {
	list := make([]any, len(cols))
	for i, c := range cols {
		list[i] = c.arg
	}
	return list
}

// scan reads one row of the table's read columns.
func (tb *table[T]) scan(row pgx.Row) (T, error) {
	var v T
	cols := tb.columns(&v)
	dsts := make([]any, 0, len(cols))
	for _, c := range cols {
		if c.dst != nil {
			dsts = append(dsts, c.dst)
		}
	}
	err := row.Scan(dsts...)
	return v, err
}

// get reads the record that the rest of a SELECT (a WHERE clause) finds.
func (tb *table[T]) get(t *txn, rest string, args ...any) (T, error) {
	return one(t, "get "+tb.record, tb.scan, "SELECT "+tb.read+" FROM "+tb.name+" "+rest, args...)
}

// list reads the records that the rest of a SELECT finds, in the order it gives.
func (tb *table[T]) list(t *txn, rest string, args ...any) ([]T, error) {
	return all(t, "list "+tb.record+"s", tb.scan, "SELECT "+tb.read+" FROM "+tb.name+" "+rest, args...)
}

// create inserts v, or finds its key or a unique column taken and writes nothing: ON
// CONFLICT DO NOTHING fails no statement, so the transaction goes on.
func (tb *table[T]) create(t *txn, v T) error {
	n, err := t.exec("create "+tb.record, tb.insert+" ON CONFLICT DO NOTHING", args(tb.columns(&v))...)
	if err == nil && n == 0 {
		return fmt.Errorf("storage/postgres: create %s: %w", tb.record, storage.ErrAlreadyExists)
	}
	return err
}

// put replaces the record with v's key. An update that changes nothing has either no record
// to change or would change a fixed column: a second look, on that path alone, tells which.
func (tb *table[T]) put(t *txn, v T) error {
	cols := tb.columns(&v)
	n, err := t.exec("put "+tb.record, tb.update, args(cols)...)
	if err != nil || n > 0 {
		return err
	}
	var key any
	for _, c := range cols {
		if c.name == tb.fixed[0] {
			key = c.arg
		}
	}
	exists, err := one(t, "put "+tb.record, func(row pgx.Row) (bool, error) {
		var b bool
		return b, row.Scan(&b)
	}, fmt.Sprintf("SELECT EXISTS (SELECT 1 FROM %s WHERE %s = $1)", tb.name, tb.fixed[0]), key)
	if err != nil {
		return err
	}
	if !exists {
		return storage.ErrNotFound
	}
	return t.refuse(fmt.Errorf("storage/postgres: put %s: an update may not change its %s, which identify it; create a new %[1]s instead",
		tb.record, strings.Join(tb.fixed[1:], " or ")))
}

// remove deletes the record that a WHERE clause finds.
func (tb *table[T]) remove(t *txn, where string, args ...any) error {
	n, err := t.exec("delete "+tb.record, "DELETE FROM "+tb.name+" "+where, args...)
	if err == nil && n == 0 {
		return storage.ErrNotFound
	}
	return err
}

var (
	challenges = newTable("challenges", "challenge", func(c *storage.Challenge) []column {
		return []column{
			col("hash", &c.Hash),
			timeCol("created_ns", &c.CreatedAt),
			timeCol("expires_ns", &c.ExpiresAt),
			optTimeCol("used_ns", &c.UsedAt),
		}
	}, "hash")
	sessions = newTable("sessions", "session", func(s *storage.Session) []column {
		return []column{
			col("hash", &s.Hash),
			col("citizen_id", &s.CitizenID),
			col("name", &s.Name),
			timeCol("created_ns", &s.CreatedAt),
			timeCol("expires_ns", &s.ExpiresAt),
		}
	}, "hash")
	accounts = newTable("accounts", "account", func(a *storage.Account) []column {
		return []column{
			col("id", &a.ID),
			col("citizen_id", &a.CitizenID),
			col("name", &a.Name),
			col("email", &a.Email),
			col("phone", &a.Phone),
			col("webauthn_id", &a.WebAuthnID),
			col("status", &a.Status),
			timeCol("created_ns", &a.CreatedAt),
			timeCol("updated_ns", &a.UpdatedAt),
			col("email_verified", &a.EmailVerified),
			col("lang", &a.Lang),
		}
	}, "id", "citizen_id")
	bindings = newTable("bindings", "binding", func(b *storage.Binding) []column {
		return []column{
			col("id", &b.ID),
			col("token_hash", &b.TokenHash),
			col("account_id", &b.AccountID),
			col("status", &b.Status),
			timeCol("created_ns", &b.CreatedAt),
			timeCol("expires_ns", &b.ExpiresAt),
			col("sealed_qr", &b.SealedQR),
			col("device_name", &b.DeviceName),
			col("webauthn_session", &b.WebAuthnSession),
			col("device_id", &b.DeviceID),
			col("reason", &b.Reason),
		}
	}, "id", "token_hash")
	devices = newTable("devices", "device", func(d *storage.Device) []column {
		return []column{
			col("id", &d.ID),
			col("account_id", &d.AccountID),
			col("name", &d.Name),
			col("credential_id", &d.CredentialID),
			col("public_key", &d.PublicKey),
			col("attestation_type", &d.AttestationType),
			col("attestation_fmt", &d.AttestationFmt),
			col("aaguid", &d.AAGUID),
			col("sign_count", &d.SignCount),
			col("transports", &d.Transports),
			col("backup_eligible", &d.BackupEligible),
			col("backup_state", &d.BackupState),
			keyCol("token_hash", &d.TokenHash),
			col("status", &d.Status),
			timeCol("created_ns", &d.CreatedAt),
			timeCol("expires_ns", &d.ExpiresAt),
			optTimeCol("last_used_ns", &d.LastUsedAt),
			optTimeCol("revoked_ns", &d.RevokedAt),
			optTimeCol("clone_warning_ns", &d.CloneWarningAt),
			col("attestation", &d.Attestation),
			col("push_endpoint", &d.Push.Endpoint),
			col("push_p256dh", &d.Push.P256dh),
			col("push_auth", &d.Push.Auth),
		}
	}, "id", "account_id", "credential_id")
	clients = newTable("clients", "client", func(c *storage.Client) []column {
		return []column{
			col("id", &c.ID),
			col("secret_hash", &c.SecretHash),
			col("name", &c.Name),
			col("redirect_uris", &c.RedirectURIs),
			col("post_logout_redirect_uris", &c.PostLogoutRedirectURIs),
			col("citizen_id", &c.CitizenID),
			col("ciba", &c.CIBA),
			col("sign", &c.Sign),
			col("ciba_ping", &c.CIBAPing),
			col("id_token_alg", &c.IDTokenAlg),
			col("disabled", &c.Disabled),
			timeCol("created_ns", &c.CreatedAt),
		}
	}, "id")
	logins = newTable("logins", "login", func(l *storage.Login) []column {
		return []column{
			col("hash", &l.Hash),
			col("kind", &l.Kind),
			col("client_id", &l.ClientID),
			col("client_name", &l.ClientName),
			col("status", &l.Status),
			timeCol("created_ns", &l.CreatedAt),
			timeCol("expires_ns", &l.ExpiresAt),
			timeCol("token_expires_ns", &l.TokenExpiresAt),
			col("token_serial", &l.TokenSerial),
			col("token_hashes", &l.TokenHashes),
			col("code", &l.Code),
			col("binding_message", &l.BindingMessage),
			col("request", &l.Request),
			keyCol("code_hash", &l.CodeHash),
			col("webauthn_session", &l.WebAuthnSession),
			optTimeCol("last_polled_ns", &l.LastPolledAt),
			col("account_id", &l.AccountID),
			col("device_id", &l.DeviceID),
			optTimeCol("auth_time_ns", &l.AuthTime),
			col("browser_hash", &l.BrowserHash),
			col("browser", &l.Browser),
			col("reason", &l.Reason),
			col("poll_interval_ns", &l.PollInterval),
			col("required_acr", &l.RequiredACR),
			col("acr", &l.ACR),
			col("amr", &l.AMR),
			{name: "waiting", arg: l.Waiting() && l.AccountID != ""},
		}
	}, "hash")
	tokens = newTable("tokens", "token", func(tk *storage.Token) []column {
		return []column{
			col("id", &tk.ID),
			col("client_id", &tk.ClientID),
			col("account_id", &tk.AccountID),
			col("scopes", &tk.Scopes),
			timeCol("auth_time_ns", &tk.AuthTime),
			timeCol("created_ns", &tk.CreatedAt),
			timeCol("expires_ns", &tk.ExpiresAt),
		}
	}, "id")
	secrets = newTable("secrets", "secret", func(s *storage.NamedSecret) []column {
		return []column{col("name", &s.Name), col("value", &s.Value)}
	}, "name")
	signingKeys = newTable("signing_keys", "signing key", func(k *storage.SigningKey) []column {
		return []column{
			col("id", &k.ID),
			col("algorithm", &k.Algorithm),
			col("private_key", &k.PrivateKey),
			timeCol("created_ns", &k.CreatedAt),
			optTimeCol("retire_ns", &k.RetireAt),
		}
	}, "id")
	certificates = newTable("certificates", "certificate", func(c *storage.Certificate) []column {
		return []column{
			col("serial", &c.Serial),
			col("device_id", &c.DeviceID),
			col("account_id", &c.AccountID),
			col("der", &c.DER),
			col("private_key", &c.PrivateKey),
			timeCol("created_ns", &c.CreatedAt),
			timeCol("not_after_ns", &c.NotAfter),
			optTimeCol("revoked_ns", &c.RevokedAt),
			col("reason", &c.Reason),
		}
	}, "serial", "device_id", "account_id")
	tickets = newTable("tickets", "ticket", func(tk *storage.Ticket) []column {
		return []column{
			col("hash", &tk.Hash),
			col("kind", &tk.Kind),
			col("account_id", &tk.AccountID),
			col("email", &tk.Email),
			col("device_id", &tk.DeviceID),
			timeCol("created_ns", &tk.CreatedAt),
			timeCol("expires_ns", &tk.ExpiresAt),
			optTimeCol("used_ns", &tk.UsedAt),
		}
	}, "hash", "kind", "account_id", "email", "device_id")
	mails = newTable("mails", "mail", func(m *storage.Mail) []column {
		return []column{
			col("id", &m.ID),
			keyTextCol("key", &m.Key),
			col("account_id", &m.AccountID),
			col("to_address", &m.To),
			col("lang", &m.Lang),
			col("notice", &m.Notice),
			col("params", &m.Params),
			timeCol("created_ns", &m.CreatedAt),
			timeCol("next_ns", &m.NextAt),
			timeCol("lease_ns", &m.LeaseUntil),
			col("attempts", &m.Attempts),
			optTimeCol("sent_ns", &m.SentAt),
			optTimeCol("failed_ns", &m.FailedAt),
			col("last_error", &m.LastError),
		}
	}, "id", "key", "account_id")
)
