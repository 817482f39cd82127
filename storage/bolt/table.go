package bolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/mcert/mcert/storage"
)

// Index buckets map an index key to the key of the record it finds.
const (
	accountsByCitizen   = "accounts_by_citizen"
	bindingsByToken     = "bindings_by_token"
	devicesByCredential = "devices_by_credential"
	devicesByAccount    = "devices_by_account"
)

var (
	challenges = table[storage.Challenge, challengeRecord]{
		bucket:  "challenges",
		key:     func(c storage.Challenge) []byte { return c.Hash },
		fixed:   []field[storage.Challenge]{{"Hash", func(c storage.Challenge) string { return string(c.Hash) }}},
		expires: func(c storage.Challenge) time.Time { return c.ExpiresAt },
		to:      toChallenge,
		from:    fromChallenge,
	}
	sessions = table[storage.Session, sessionRecord]{
		bucket:  "sessions",
		key:     func(s storage.Session) []byte { return s.Hash },
		expires: func(s storage.Session) time.Time { return s.ExpiresAt },
		to:      toSession,
		from:    fromSession,
	}
	accounts = table[storage.Account, accountRecord]{
		bucket:  "accounts",
		key:     func(a storage.Account) []byte { return []byte(a.ID) },
		indexes: []index[storage.Account]{{accountsByCitizen, func(a storage.Account) []byte { return []byte(a.CitizenID) }}},
		fixed: []field[storage.Account]{
			{"ID", func(a storage.Account) string { return a.ID }},
			{"CitizenID", func(a storage.Account) string { return a.CitizenID }},
		},
		to:   toAccount,
		from: fromAccount,
	}
	bindings = table[storage.Binding, bindingRecord]{
		bucket:  "bindings",
		key:     func(b storage.Binding) []byte { return []byte(b.ID) },
		indexes: []index[storage.Binding]{{bindingsByToken, func(b storage.Binding) []byte { return b.TokenHash }}},
		fixed: []field[storage.Binding]{
			{"ID", func(b storage.Binding) string { return b.ID }},
			{"TokenHash", func(b storage.Binding) string { return string(b.TokenHash) }},
		},
		expires: func(b storage.Binding) time.Time { return b.ExpiresAt },
		to:      toBinding,
		from:    fromBinding,
	}
	devices = table[storage.Device, deviceRecord]{
		bucket: "devices",
		key:    func(d storage.Device) []byte { return []byte(d.ID) },
		indexes: []index[storage.Device]{
			{devicesByCredential, func(d storage.Device) []byte { return d.CredentialID }},
			{devicesByAccount, accountDeviceKey},
		},
		fixed: []field[storage.Device]{
			{"ID", func(d storage.Device) string { return d.ID }},
			{"AccountID", func(d storage.Device) string { return d.AccountID }},
			{"CredentialID", func(d storage.Device) string { return string(d.CredentialID) }},
		},
		to:   toDevice,
		from: fromDevice,
	}
)

// accountPrefix starts the devices_by_account keys of one account. The NUL ends the account ID,
// so that "account-1" does not also find the devices of "account-10".
func accountPrefix(accountID string) []byte {
	return append([]byte(accountID), 0)
}

// accountDeviceKey sorts an account's devices by creation time, so that ListDevices is one
// prefix scan, oldest first. Flipping the sign bit keeps times before 1970 in order.
func accountDeviceKey(d storage.Device) []byte {
	k := binary.BigEndian.AppendUint64(accountPrefix(d.AccountID), uint64(d.CreatedAt.UnixNano())^1<<63)
	return append(k, d.ID...)
}

// table keeps one record type: each record under its key in bucket, and one entry per index in
// that index's bucket, pointing back to the record's key. Records are stored as R, encoded JSON.
type table[T any, R record] struct {
	bucket  string
	key     func(T) []byte
	indexes []index[T]
	fixed   []field[T]        // what an update may not change: the key and the unique fields
	expires func(T) time.Time // when GarbageCollect may delete the record; nil for records kept for good
	to      func(T) R
	from    func(R) T
}

// index is a unique secondary key. Each index key is either a fixed field or holds the record's
// key, so an update that moves an index entry cannot clash with another record's.
type index[T any] struct {
	bucket string
	key    func(T) []byte
}

type field[T any] struct {
	name  string
	value func(T) string
}

func (tb table[T, R]) buckets() []string {
	names := []string{tb.bucket}
	for _, ix := range tb.indexes {
		names = append(names, ix.bucket)
	}
	return names
}

func (tb table[T, R]) get(tx *bbolt.Tx, key []byte) (T, error) {
	data := tx.Bucket([]byte(tb.bucket)).Get(key)
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

// decode copies what it returns out of data, which bbolt owns and reuses after the transaction.
func (tb table[T, R]) decode(key, data []byte) (T, error) {
	var r R
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

func (tb table[T, R]) create(tx *bbolt.Tx, v T) error {
	if tx.Bucket([]byte(tb.bucket)).Get(tb.key(v)) != nil {
		return fmt.Errorf("%s: %w", tb.bucket, storage.ErrAlreadyExists)
	}
	for _, ix := range tb.indexes {
		if tx.Bucket([]byte(ix.bucket)).Get(ix.key(v)) != nil {
			return fmt.Errorf("%s: %w", ix.bucket, storage.ErrAlreadyExists)
		}
	}
	_, err := tb.put(tx, v)
	return err
}

// update stores what fn makes of the record under key, and returns it as stored.
func (tb table[T, R]) update(tx *bbolt.Tx, key []byte, fn func(T) (T, error)) (T, error) {
	var zero T
	old, err := tb.get(tx, key)
	if err != nil {
		return zero, err
	}
	// fn may change the slices of what it is given in place: give it a copy of its own.
	arg, err := tb.get(tx, key)
	if err != nil {
		return zero, err
	}
	v, err := fn(arg)
	if err != nil {
		return zero, err
	}
	for _, f := range tb.fixed {
		if f.value(v) != f.value(old) {
			return zero, fmt.Errorf("storage/bolt: an update may not change a record's %s, which keys %s; create a new record instead", f.name, tb.bucket)
		}
	}
	for _, ix := range tb.indexes {
		// Only an index key holding a field outside fixed can move: a device's creation time.
		if oldKey, newKey := ix.key(old), ix.key(v); !bytes.Equal(oldKey, newKey) {
			if err := tx.Bucket([]byte(ix.bucket)).Delete(oldKey); err != nil {
				return zero, err
			}
		}
	}
	return tb.put(tx, v)
}

// put writes v and its index entries, and returns v as a later get will: times in UTC.
func (tb table[T, R]) put(tx *bbolt.Tx, v T) (T, error) {
	var zero T
	r := tb.to(v)
	data, err := json.Marshal(r)
	if err != nil {
		return zero, fmt.Errorf("storage/bolt: encode %s record: %w", tb.bucket, err)
	}
	if err := tx.Bucket([]byte(tb.bucket)).Put(tb.key(v), data); err != nil {
		return zero, fmt.Errorf("storage/bolt: put %s record: %w", tb.bucket, err)
	}
	for _, ix := range tb.indexes {
		if err := tx.Bucket([]byte(ix.bucket)).Put(ix.key(v), tb.key(v)); err != nil {
			return zero, fmt.Errorf("storage/bolt: put %s entry: %w", ix.bucket, err)
		}
	}
	return tb.from(r), nil
}

func (tb table[T, R]) delete(tx *bbolt.Tx, v T) error {
	for _, ix := range tb.indexes {
		if err := tx.Bucket([]byte(ix.bucket)).Delete(ix.key(v)); err != nil {
			return err
		}
	}
	return tx.Bucket([]byte(tb.bucket)).Delete(tb.key(v))
}

// collect deletes the records that expired before the given time and counts them.
func (tb table[T, R]) collect(tx *bbolt.Tx, before time.Time) (int, error) {
	// Deleting under a bbolt cursor skips the next record: gather first, then delete.
	var expired []T
	err := tx.Bucket([]byte(tb.bucket)).ForEach(func(key, data []byte) error {
		v, err := tb.decode(key, data)
		if err == nil && tb.expires(v).Before(before) {
			expired = append(expired, v)
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	for _, v := range expired {
		if err := tb.delete(tx, v); err != nil {
			return 0, err
		}
	}
	return len(expired), nil
}
