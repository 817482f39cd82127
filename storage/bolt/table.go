package bolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/mcert/mcert/storage"
)

// Index buckets map an index key to the key of the record it finds.
const (
	accountsByCitizen    = "accounts_by_citizen"
	bindingsByToken      = "bindings_by_token"
	devicesByCredential  = "devices_by_credential"
	devicesByAccount     = "devices_by_account"
	devicesByToken       = "devices_by_token"
	devicesByExpiry      = "devices_by_expiry" // every device by ExpiresAt, then ID: ExpiringDevices
	loginsByToken        = "logins_by_token"
	loginsByCode         = "logins_by_code"
	loginsWaiting        = "logins_waiting" // by account: decoupled logins waiting for a phone
	tokensByGrant        = "tokens_by_grant"
	tokensByClient       = "tokens_by_client"
	eventsByAccount      = "events_by_account"
	certificatesByDevice = "certificates_by_device"
	certificatesRevoked  = "certificates_revoked" // in the order of revocation
	mailsByKey           = "mails_by_key"
	mailsByAccount       = "mails_by_account"
	mailsPending         = "mails_pending"     // the pending mails by NextAt, then ID: DueMails
	mailsByCreation      = "mails_by_creation" // GarbageCollect's, which deletes mails after the audit retention
)

// retiredBuckets are buckets an older mcert kept and this one does not; Open deletes them.
// logins_by_account listed every login of an account, so that each QR login wrote an index
// entry no one read: logins_waiting replaced it.
var retiredBuckets = []string{"logins_by_account"}

// tables lists every table, for Open to prepare.
var tables = []interface{ prepare(*bbolt.Tx) error }{challenges, sessions, accounts, bindings, devices, clients, logins, tokens, secrets, signingKeys, certificates, tickets, mails, events, rateLimits}

var (
	challenges = expiring(table[storage.Challenge, challengeRecord]{
		bucket:  "challenges",
		key:     func(c storage.Challenge) []byte { return c.Hash },
		fixed:   []field[storage.Challenge]{{"Hash", func(c storage.Challenge) string { return string(c.Hash) }}},
		expires: func(c storage.Challenge) (time.Time, bool) { return c.ExpiresAt, true },
		to:      toChallenge,
		from:    fromChallenge,
	})
	sessions = expiring(table[storage.Session, sessionRecord]{
		bucket:  "sessions",
		key:     func(s storage.Session) []byte { return s.Hash },
		expires: func(s storage.Session) (time.Time, bool) { return s.ExpiresAt, true },
		to:      toSession,
		from:    fromSession,
	})
	accounts = table[storage.Account, accountRecord]{
		bucket:  "accounts",
		key:     func(a storage.Account) []byte { return []byte(a.ID) },
		indexes: []index[storage.Account]{{accountsByCitizen, oneKey(func(a storage.Account) []byte { return []byte(a.CitizenID) })}},
		fixed: []field[storage.Account]{
			{"ID", func(a storage.Account) string { return a.ID }},
			{"CitizenID", func(a storage.Account) string { return a.CitizenID }},
		},
		to:   toAccount,
		from: fromAccount,
	}
	bindings = expiring(table[storage.Binding, bindingRecord]{
		bucket:  "bindings",
		key:     func(b storage.Binding) []byte { return []byte(b.ID) },
		indexes: []index[storage.Binding]{{bindingsByToken, oneKey(func(b storage.Binding) []byte { return b.TokenHash })}},
		fixed: []field[storage.Binding]{
			{"ID", func(b storage.Binding) string { return b.ID }},
			{"TokenHash", func(b storage.Binding) string { return string(b.TokenHash) }},
		},
		expires: func(b storage.Binding) (time.Time, bool) { return b.ExpiresAt, true },
		to:      toBinding,
		from:    fromBinding,
	})
	devices = table[storage.Device, deviceRecord]{
		bucket: "devices",
		key:    func(d storage.Device) []byte { return []byte(d.ID) },
		indexes: []index[storage.Device]{
			{devicesByCredential, oneKey(func(d storage.Device) []byte { return d.CredentialID })},
			{devicesByAccount, oneKey(func(d storage.Device) []byte { return ownedKey(d.AccountID, d.CreatedAt, []byte(d.ID)) })},
			{devicesByToken, keyIfSet(func(d storage.Device) []byte { return d.TokenHash })},
			{devicesByExpiry, oneKey(func(d storage.Device) []byte { return append(appendTime(nil, d.ExpiresAt), d.ID...) })},
		},
		fixed: []field[storage.Device]{
			{"ID", func(d storage.Device) string { return d.ID }},
			{"AccountID", func(d storage.Device) string { return d.AccountID }},
			{"CredentialID", func(d storage.Device) string { return string(d.CredentialID) }},
		},
		to:   toDevice,
		from: fromDevice,
	}
	clients = table[storage.Client, clientRecord]{
		bucket: "clients",
		key:    func(c storage.Client) []byte { return []byte(c.ID) },
		fixed:  []field[storage.Client]{{"ID", func(c storage.Client) string { return c.ID }}},
		to:     toClient,
		from:   fromClient,
	}
	logins = expiring(table[storage.Login, loginRecord]{
		bucket: "logins",
		key:    func(l storage.Login) []byte { return l.Hash },
		indexes: []index[storage.Login]{
			{loginsByToken, func(l storage.Login) [][]byte { return l.TokenHashes }},
			{loginsByCode, keyIfSet(func(l storage.Login) []byte { return l.CodeHash })},
			{loginsWaiting, func(l storage.Login) [][]byte {
				if !l.Waiting() || l.AccountID == "" {
					return nil
				}
				return [][]byte{ownedKey(l.AccountID, l.CreatedAt, l.Hash)}
			}},
		},
		fixed:   []field[storage.Login]{{"Hash", func(l storage.Login) string { return string(l.Hash) }}},
		expires: func(l storage.Login) (time.Time, bool) { return l.ExpiresAt, true },
		to:      toLogin,
		from:    fromLogin,
	})
	tokens = expiring(table[storage.Token, tokenRecord]{
		bucket: "tokens",
		key:    func(t storage.Token) []byte { return []byte(t.ID) },
		indexes: []index[storage.Token]{
			{tokensByGrant, oneKey(func(t storage.Token) []byte { return append(grantPrefix(t.AccountID, t.ClientID), t.ID...) })},
			{tokensByClient, oneKey(func(t storage.Token) []byte { return append(ownerPrefix(t.ClientID), t.ID...) })},
		},
		expires: func(t storage.Token) (time.Time, bool) { return t.ExpiresAt, true },
		to:      toToken,
		from:    fromToken,
	})
	secrets = table[secret, secretRecord]{
		bucket: "secrets",
		key:    func(s secret) []byte { return []byte(s.Name) },
		to:     toSecret,
		from:   fromSecret,
	}
	signingKeys = expiring(table[storage.SigningKey, signingKeyRecord]{
		bucket: "signing_keys",
		key:    func(k storage.SigningKey) []byte { return []byte(k.ID) },
		fixed:  []field[storage.SigningKey]{{"ID", func(k storage.SigningKey) string { return k.ID }}},
		expires: func(k storage.SigningKey) (time.Time, bool) {
			if k.RetireAt == nil {
				return time.Time{}, false
			}
			return *k.RetireAt, true
		},
		to:   toSigningKey,
		from: fromSigningKey,
	})
	certificates = table[storage.Certificate, certificateRecord]{
		bucket: "certificates",
		key:    func(c storage.Certificate) []byte { return c.Serial },
		indexes: []index[storage.Certificate]{
			{certificatesByDevice, oneKey(func(c storage.Certificate) []byte { return ownedKey(c.DeviceID, c.CreatedAt, c.Serial) })},
			{certificatesRevoked, func(c storage.Certificate) [][]byte {
				if c.RevokedAt == nil {
					return nil
				}
				return [][]byte{ownedKey("", *c.RevokedAt, c.Serial)}
			}},
		},
		fixed: []field[storage.Certificate]{
			{"Serial", func(c storage.Certificate) string { return string(c.Serial) }},
			{"DeviceID", func(c storage.Certificate) string { return c.DeviceID }},
			{"AccountID", func(c storage.Certificate) string { return c.AccountID }},
		},
		to:   toCertificate,
		from: fromCertificate,
	}
	tickets = expiring(table[storage.Ticket, ticketRecord]{
		bucket: "tickets",
		key:    func(t storage.Ticket) []byte { return t.Hash },
		fixed: []field[storage.Ticket]{
			{"Hash", func(t storage.Ticket) string { return string(t.Hash) }},
			{"Kind", func(t storage.Ticket) string { return t.Kind }},
			{"AccountID", func(t storage.Ticket) string { return t.AccountID }},
			{"Email", func(t storage.Ticket) string { return t.Email }},
			{"DeviceID", func(t storage.Ticket) string { return t.DeviceID }},
		},
		expires: func(t storage.Ticket) (time.Time, bool) { return t.ExpiresAt, true },
		to:      toTicket,
		from:    fromTicket,
	})
	// mails is the outbox, kept for the audit retention (GCPolicy.EventsBefore): its index for
	// GarbageCollect goes by CreatedAt.
	mails = collected(table[storage.Mail, mailRecord]{
		bucket: "mails",
		key:    func(m storage.Mail) []byte { return []byte(m.ID) },
		indexes: []index[storage.Mail]{
			{mailsByKey, keyIfSet(func(m storage.Mail) []byte { return []byte(m.Key) })},
			{mailsByAccount, oneKey(func(m storage.Mail) []byte { return ownedKey(m.AccountID, m.CreatedAt, []byte(m.ID)) })},
			// A mail leaves the pending index once it is sent or given up, so that DueMails
			// never reads the outbox's sent mails, millions in a national service, to find the
			// few due.
			{mailsPending, func(m storage.Mail) [][]byte {
				if !m.Pending() {
					return nil
				}
				return [][]byte{append(appendTime(nil, m.NextAt), m.ID...)}
			}},
		},
		fixed: []field[storage.Mail]{
			{"ID", func(m storage.Mail) string { return m.ID }},
			{"Key", func(m storage.Mail) string { return m.Key }},
			{"AccountID", func(m storage.Mail) string { return m.AccountID }},
		},
		expires: func(m storage.Mail) (time.Time, bool) { return m.CreatedAt, true },
		to:      toMail,
		from:    fromMail,
	}, mailsByCreation)
	// events is the audit log, kept for the retention period (GCPolicy.EventsBefore). Each event
	// is keyed by its ID, so the bucket is in the order events were appended, which is the order
	// of their times.
	events = table[storage.Event, eventRecord]{
		bucket: "events",
		key:    func(e storage.Event) []byte { return []byte(e.ID) },
		indexes: []index[storage.Event]{{eventsByAccount, func(e storage.Event) [][]byte {
			if e.AccountID == "" {
				return nil
			}
			return [][]byte{append(ownerPrefix(e.AccountID), e.ID...)}
		}}},
		to:   toEvent,
		from: fromEvent,
	}
	rateLimits = counters{bucket: "rate_limits"}
)

// secret is a named server secret. It is no storage type: Store.Secret hands out the value only.
type secret struct {
	Name  string
	Value []byte
}

// ownerPrefix starts the index keys of one owner's records (an account's devices or logins).
// The NUL ends the owner's ID, so that "account-1" does not also find the records of "account-10".
func ownerPrefix(ownerID string) []byte {
	return append([]byte(ownerID), 0)
}

// ownedKey sorts an owner's records by creation time, so that listing them is one prefix scan,
// oldest first; the record's key ends it, to tell apart records created at the same instant.
func ownedKey(ownerID string, created time.Time, key []byte) []byte {
	return append(appendNanos(ownerPrefix(ownerID), created.UnixNano()), key...)
}

// appendNanos appends a count of nanoseconds since the Unix epoch in 8 bytes that sort as the
// times do: big-endian, with the sign bit flipped to keep times before 1970 in order.
func appendNanos(b []byte, ns int64) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(ns)^1<<63)
}

// eventID is the ID of the seq-th event appended: 16 hex digits, so that IDs sort as strings in
// the order of seq (base64url would not: its alphabet is not in ASCII order) and are URL-safe.
func eventID(seq uint64) string {
	return fmt.Sprintf("%016x", seq)
}

// validEventID reports whether id is in the form eventID writes, whether or not such an event
// exists.
func validEventID(id string) bool {
	if len(id) != 16 {
		return false
	}
	for _, c := range []byte(id) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// afterEveryEventID sorts after every event ID, which are hex digits.
const afterEveryEventID = "\xff"

// grantPrefix starts the tokens_by_grant keys of the tokens one client holds for one account.
func grantPrefix(accountID, clientID string) []byte {
	return append(append(ownerPrefix(accountID), clientID...), 0)
}

// oneKey indexes every record under the one key it returns.
func oneKey[T any](key func(T) []byte) func(T) [][]byte {
	return func(v T) [][]byte { return [][]byte{key(v)} }
}

// keyIfSet indexes a record under the key it returns, and leaves a record whose key is empty out
// of the index.
func keyIfSet[T any](key func(T) []byte) func(T) [][]byte {
	return func(v T) [][]byte {
		if k := key(v); len(k) > 0 {
			return [][]byte{k}
		}
		return nil
	}
}

// table keeps one record type: each record under its key in bucket, and its entries in each
// index's bucket, pointing back to the record's key. Records are stored as R: encoded JSON,
// or in the binary form (binary.go) when R has one.
type table[T any, R record] struct {
	bucket  string
	key     func(T) []byte
	indexes []index[T]
	fixed   []field[T] // what an update may not change: the key and the unique fields
	// expires is when GarbageCollect may delete a record, or false to keep it; nil for a table
	// kept for good. A time, not a pointer to the record's field: that would move every record
	// the index looks at to the heap.
	expires func(T) (time.Time, bool)
	expiry  string // the bucket of the index by expires, which expiring or collected adds
	to      func(T) R
	from    func(R) T
}

// index is a unique secondary key: a record may have any number of keys in it, but no key may
// find two records, so that putting one that already finds another record fails with
// ErrAlreadyExists. An index that lists many records under one owner ends each key with the
// record's key to keep it unique (see ownedKey).
type index[T any] struct {
	bucket string
	keys   func(T) [][]byte
}

type field[T any] struct {
	name  string
	value func(T) string
}

// prepare creates the table's buckets. An index bucket that a newer mcert adds to a data file
// that already holds records is filled from them, so that the records are found by it at once.
func (tb table[T, R]) prepare(tx *bbolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists([]byte(tb.bucket)); err != nil {
		return fmt.Errorf("create bucket %s: %w", tb.bucket, err)
	}
	var added []index[T]
	for _, ix := range tb.indexes {
		if tx.Bucket([]byte(ix.bucket)) != nil {
			continue
		}
		if _, err := tx.CreateBucket([]byte(ix.bucket)); err != nil {
			return fmt.Errorf("create bucket %s: %w", ix.bucket, err)
		}
		added = append(added, ix)
	}
	if len(added) == 0 {
		return nil
	}
	all, err := tb.all(tx)
	if err != nil {
		return err
	}
	for _, v := range all {
		if err := tb.index(tx, added, v, nil, false); err != nil {
			return err
		}
	}
	return nil
}

func (tb table[T, R]) get(tx *bbolt.Tx, key []byte) (T, error) {
	return tb.getIn(tx.Bucket([]byte(tb.bucket)), key)
}

// getIn reads the record under key from records, the table's bucket, which a caller reading many
// opens once: in a read-only transaction bbolt opens a bucket anew on every tx.Bucket.
func (tb table[T, R]) getIn(records *bbolt.Bucket, key []byte) (T, error) {
	data := records.Get(key)
	if data == nil {
		var zero T
		return zero, storage.ErrNotFound
	}
	return tb.decode(key, data)
}

// getBy finds a record through the index kept in the bucket named ix.
func (tb table[T, R]) getBy(tx *bbolt.Tx, ix string, key []byte) (T, error) {
	id := tx.Bucket([]byte(ix)).Get(key)
	if id == nil {
		var zero T
		return zero, storage.ErrNotFound
	}
	return tb.get(tx, id)
}

// all returns every record, in the order of their keys.
func (tb table[T, R]) all(tx *bbolt.Tx) ([]T, error) {
	var list []T
	err := tx.Bucket([]byte(tb.bucket)).ForEach(func(key, data []byte) error {
		v, err := tb.decode(key, data)
		if err != nil {
			return err
		}
		list = append(list, v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return list, nil
}

// oldestFirst returns every record, sorted by the creation time created gives; records created
// at the same instant stay in the order of their keys.
func (tb table[T, R]) oldestFirst(tx *bbolt.Tx, created func(T) time.Time) ([]T, error) {
	list, err := tb.all(tx)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(list, func(a, b T) int { return created(a).Compare(created(b)) })
	return list, nil
}

// scan returns the records whose keys in the index kept in the bucket named ix start with
// prefix, in the order of those keys.
func (tb table[T, R]) scan(tx *bbolt.Tx, ix string, prefix []byte) ([]T, error) {
	var list []T
	records := tx.Bucket([]byte(tb.bucket))
	c := tx.Bucket([]byte(ix)).Cursor()
	for k, key := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, key = c.Next() {
		v, err := tb.getIn(records, key)
		if err != nil {
			return nil, err
		}
		list = append(list, v)
	}
	return list, nil
}

// scanFrom returns up to limit records, of those keep accepts (nil: every one), whose keys in
// the index kept in the bucket named ix come at or after start (nil: the first), in the order of
// those keys, up to the first key that past says is past the end.
func (tb table[T, R]) scanFrom(tx *bbolt.Tx, ix string, start []byte, past func(k []byte) bool, keep func(T) bool, limit int) ([]T, error) {
	var list []T
	records := tx.Bucket([]byte(tb.bucket))
	c := tx.Bucket([]byte(ix)).Cursor()
	k, key := c.First()
	if len(start) > 0 {
		k, key = c.Seek(start)
	}
	for ; k != nil && !past(k) && len(list) < limit; k, key = c.Next() {
		v, err := tb.getIn(records, key)
		if err != nil {
			return nil, err
		}
		if keep == nil || keep(v) {
			list = append(list, v)
		}
	}
	return list, nil
}

// newestFirst returns up to limit records whose keys in bucket ix (an index's, or the table's
// own) start with prefix and sort before prefix+below, in the reverse order of those keys.
func (tb table[T, R]) newestFirst(tx *bbolt.Tx, ix string, prefix, below []byte, limit int) ([]T, error) {
	var list []T
	records := tx.Bucket([]byte(tb.bucket))
	c := tx.Bucket([]byte(ix)).Cursor()
	// Seek finds the first key at or after the bound: the one before it is the first to list.
	k, v := c.Seek(append(bytes.Clone(prefix), below...))
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	for ; k != nil && bytes.HasPrefix(k, prefix) && len(list) < limit; k, v = c.Prev() {
		var r T
		var err error
		if ix == tb.bucket {
			r, err = tb.decode(k, v)
		} else {
			r, err = tb.getIn(records, v)
		}
		if err != nil {
			return nil, err
		}
		list = append(list, r)
	}
	return list, nil
}

// decode copies what it returns out of data, which bbolt owns and reuses after the transaction.
func (tb table[T, R]) decode(key, data []byte) (T, error) {
	var r R
	if len(data) > 0 && data[0] == binaryFormat {
		br, ok := any(&r).(binaryRecord)
		if !ok {
			var zero T
			return zero, fmt.Errorf("storage/bolt: %s record %x is in format %d, which this mcert writes for other tables only; run the mcert that wrote the data file", tb.bucket, key, binaryFormat)
		}
		if err := decodeBinary(data, br); err != nil {
			var zero T
			return zero, fmt.Errorf("storage/bolt: decode %s record %x: %w", tb.bucket, key, err)
		}
		return tb.from(r), nil
	}
	if err := json.Unmarshal(data, &r); err != nil {
		var zero T
		return zero, fmt.Errorf("storage/bolt: decode %s record %x: %w", tb.bucket, key, err)
	}
	if v := r.version(); v != formatVersion {
		var zero T
		return zero, fmt.Errorf("storage/bolt: %s record %x is in format %d but this mcert reads only format %d; run the mcert that wrote the data file", tb.bucket, key, v, formatVersion)
	}
	return tb.from(r), nil
}

// create writes v, refusing with ErrAlreadyExists, before it writes anything, a key or an
// index entry that finds another record.
func (tb table[T, R]) create(tx *bbolt.Tx, v T) error {
	if tx.Bucket([]byte(tb.bucket)).Get(tb.key(v)) != nil {
		return fmt.Errorf("%s: %w", tb.bucket, storage.ErrAlreadyExists)
	}
	for _, ix := range tb.indexes {
		b := tx.Bucket([]byte(ix.bucket))
		for _, k := range ix.keys(v) {
			if b.Get(k) != nil {
				return fmt.Errorf("%s: %w", ix.bucket, storage.ErrAlreadyExists)
			}
		}
	}
	_, err := tb.put(tx, v, nil, true)
	return err
}

// update stores what fn makes of the record under key, and returns it as stored. On an error
// it may have written part of the change: the caller's transaction must roll back.
func (tb table[T, R]) update(tx *bbolt.Tx, key []byte, fn func(T) (T, error)) (T, error) {
	var zero T
	v, err := tb.get(tx, key)
	if err != nil {
		return zero, err
	}
	// fn may change the slices of what it is given in place: take what the update compares
	// with the stored record before fn runs, as copies.
	fixed := make([]string, len(tb.fixed))
	for i, f := range tb.fixed {
		fixed[i] = f.value(v)
	}
	oldKeys := make([][][]byte, len(tb.indexes))
	for i, ix := range tb.indexes {
		for _, k := range ix.keys(v) {
			oldKeys[i] = append(oldKeys[i], bytes.Clone(k))
		}
	}
	if v, err = fn(v); err != nil {
		return zero, err
	}
	for i, f := range tb.fixed {
		if f.value(v) != fixed[i] {
			return zero, fmt.Errorf("storage/bolt: an update may not change a record's %s, which keys %s; create a new record instead", f.name, tb.bucket)
		}
	}
	// put writes the index entries v has; drop those only the stored record had. Entries that
	// stay are neither looked up nor written again: a write copies the index's page into the
	// transaction, and a look-up is a search of its tree.
	for i, ix := range tb.indexes {
		keys := ix.keys(v)
		b := tx.Bucket([]byte(ix.bucket))
		for _, k := range oldKeys[i] {
			if slices.ContainsFunc(keys, func(n []byte) bool { return bytes.Equal(n, k) }) {
				continue
			}
			if err := b.Delete(k); err != nil {
				return zero, err
			}
		}
	}
	return tb.put(tx, v, oldKeys, false)
}

// put writes v and its index entries (see index for kept and free), and returns v as a later
// get will: times in UTC.
func (tb table[T, R]) put(tx *bbolt.Tx, v T, kept [][][]byte, free bool) (T, error) {
	var zero T
	r := tb.to(v)
	var data []byte
	if br, ok := any(&r).(binaryRecord); ok {
		data = encodeBinary(br)
	} else {
		var err error
		if data, err = json.Marshal(r); err != nil {
			return zero, fmt.Errorf("storage/bolt: encode %s record: %w", tb.bucket, err)
		}
	}
	if err := tx.Bucket([]byte(tb.bucket)).Put(tb.key(v), data); err != nil {
		return zero, fmt.Errorf("storage/bolt: put %s record: %w", tb.bucket, err)
	}
	if err := tb.index(tx, tb.indexes, v, kept, free); err != nil {
		return zero, err
	}
	return tb.from(r), nil
}

// index writes v's entries in the given indexes, refusing a key that finds another record.
// Entries in kept (per index, those an update found v's record had) are there already and left
// alone; free says that every other key was just found free, by a create, so needs no look-up.
func (tb table[T, R]) index(tx *bbolt.Tx, indexes []index[T], v T, kept [][][]byte, free bool) error {
	// The entries' value is the record's key, which may be a slice of the caller's (a hash):
	// bbolt copies the keys it is given but keeps the values until the commit, and the caller
	// may change its slice before then, in the same transaction.
	key := bytes.Clone(tb.key(v))
	for i, ix := range indexes {
		b := tx.Bucket([]byte(ix.bucket))
		for _, k := range ix.keys(v) {
			if i < len(kept) && slices.ContainsFunc(kept[i], func(o []byte) bool { return bytes.Equal(o, k) }) {
				continue
			}
			var found []byte
			if !free {
				found = b.Get(k)
			}
			switch {
			case found == nil:
				if err := b.Put(k, key); err != nil {
					return fmt.Errorf("storage/bolt: put %s entry: %w", ix.bucket, err)
				}
			case !bytes.Equal(found, key):
				return fmt.Errorf("%s: %w", ix.bucket, storage.ErrAlreadyExists)
			default: // there already: an update kept it
			}
		}
	}
	return nil
}

// unindex deletes v's index entries.
func (tb table[T, R]) unindex(tx *bbolt.Tx, v T) error {
	for _, ix := range tb.indexes {
		b := tx.Bucket([]byte(ix.bucket))
		for _, k := range ix.keys(v) {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
	}
	return nil
}

// deleteKey deletes the record under key, with its index entries.
func (tb table[T, R]) deleteKey(tx *bbolt.Tx, key []byte) error {
	v, err := tb.get(tx, key)
	if err != nil {
		return err
	}
	return tb.delete(tx, v)
}

func (tb table[T, R]) delete(tx *bbolt.Tx, v T) error {
	if err := tb.unindex(tx, v); err != nil {
		return err
	}
	return tx.Bucket([]byte(tb.bucket)).Delete(tb.key(v))
}

// expiring adds to a table with expires an index of its records by when they expire (then by
// key, to keep entries unique), so that GarbageCollect reads the expired records only: it runs
// in a write transaction, and a scan of every record would hold up every write for as long as
// a table of millions of logins takes to decode.
func expiring[T any, R record](tb table[T, R]) table[T, R] {
	return collected(tb, tb.bucket+"_by_expiry")
}

// collected is expiring with the index in the bucket named ix: for a table whose records go
// by another time than their expiry, such as the mails' creation.
func collected[T any, R record](tb table[T, R], ix string) table[T, R] {
	tb.expiry = ix
	tb.indexes = append(slices.Clip(tb.indexes), index[T]{tb.expiry, func(v T) [][]byte {
		at, ok := tb.expires(v)
		if !ok {
			return nil
		}
		return [][]byte{append(appendTime(nil, at), tb.key(v)...)}
	}})
	return tb
}

// appendTime appends t in 12 bytes that sort as times do, whatever the year: seconds since the
// Unix epoch big-endian with the sign bit flipped, then nanoseconds.
func appendTime(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix())^1<<63)
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

// collect deletes up to limit records that expired before the given time and counts them.
func (tb table[T, R]) collect(tx *bbolt.Tx, before time.Time, limit int) (int, error) {
	cutoff := appendTime(nil, before)
	// Deleting under a bbolt cursor skips the next key: gather first, then delete.
	var keys [][]byte
	c := tx.Bucket([]byte(tb.expiry)).Cursor()
	for k, key := c.First(); k != nil && len(keys) < limit && bytes.Compare(k[:min(len(k), len(cutoff))], cutoff) < 0; k, key = c.Next() {
		keys = append(keys, bytes.Clone(key))
	}
	for _, key := range keys {
		if err := tb.deleteKey(tx, key); err != nil {
			return 0, fmt.Errorf("storage/bolt: collect %s record %x: %w", tb.bucket, key, err)
		}
	}
	return len(keys), nil
}

// counters keeps the rate-limit counters: one per window, under the window's start, its end and
// the counted key, so that the oldest windows come first for GarbageCollect, and a key needs no
// separator however it ends. Each value is the count alone, 8 bytes big-endian, not a versioned
// JSON record: Hit writes one on every counted request, and a counter lives one window at most,
// so a data file never holds one a format older than the running mcert must read for long.
type counters struct {
	bucket string
}

func (cs counters) prepare(tx *bbolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists([]byte(cs.bucket)); err != nil {
		return fmt.Errorf("create bucket %s: %w", cs.bucket, err)
	}
	return nil
}

// hit adds one to the count of key in the window of the given length that now is in, aligned to
// the Unix epoch, and returns the new count. Windows of different lengths are counted apart,
// even when they start together.
func (cs counters) hit(tx *bbolt.Tx, key string, window time.Duration, now time.Time) (int, error) {
	k, n, err := cs.count(tx, key, window, now)
	if err != nil {
		return 0, err
	}
	n++
	if err := tx.Bucket([]byte(cs.bucket)).Put(k, binary.BigEndian.AppendUint64(nil, uint64(n))); err != nil {
		return 0, fmt.Errorf("storage/bolt: put %s counter: %w", cs.bucket, err)
	}
	return n, nil
}

// count returns the counter's key and count, as hit finds them.
func (cs counters) count(tx *bbolt.Tx, key string, window time.Duration, now time.Time) ([]byte, int, error) {
	t, w := now.UnixNano(), window.Nanoseconds()
	start := t / w * w
	if t%w < 0 { // before 1970 Go's division rounds towards zero, not down
		start -= w
	}
	k := append(appendNanos(appendNanos(nil, start), start+w), key...)
	v := tx.Bucket([]byte(cs.bucket)).Get(k)
	if v == nil {
		return k, 0, nil
	}
	if len(v) != 8 {
		return nil, 0, fmt.Errorf("storage/bolt: %s counter %x holds %d bytes, want 8", cs.bucket, k, len(v))
	}
	return k, int(binary.BigEndian.Uint64(v)), nil
}

// collect deletes up to limit counters of windows that ended before the given time and counts
// them.
func (cs counters) collect(tx *bbolt.Tx, before time.Time, limit int) (int, error) {
	cutoff := appendNanos(nil, before.UnixNano())
	b := tx.Bucket([]byte(cs.bucket))
	// Deleting under a bbolt cursor skips the next key: gather first, then delete. A window that
	// starts at the cutoff or later cannot have ended before it, so the scan stops there.
	var gone [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil && len(gone) < limit && bytes.Compare(k[:8], cutoff) < 0; k, _ = c.Next() {
		if bytes.Compare(k[8:16], cutoff) < 0 {
			gone = append(gone, bytes.Clone(k))
		}
	}
	for _, k := range gone {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(gone), nil
}
