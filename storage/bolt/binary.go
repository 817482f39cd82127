package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// The records every login reads and writes (logins, devices, accounts) are stored in a binary
// form, format 2, rather than as JSON: a profile of logins under load spent about 14% of the
// server's time decoding JSON records, and the binary form is a third of the size, so more of
// a large data file stays in memory. A binary record is its format byte, then its fields in
// the order of the record's struct. JSON records begin with '{', so the first byte tells the
// two apart and records of format 1 are read as they were written.
const binaryFormat = 2

// binaryRecord is a pointer to a record with a binary form: it names its fields, in order, to
// a writer or a reader, so one list serves both ways.
type binaryRecord interface {
	binaryFields(c fieldCodec)
}

// fieldCodec writes or reads fields.
type fieldCodec interface {
	str(*string)
	bytes(*[]byte)
	byteSlices(*[][]byte)
	strs(*[]string)
	bool(*bool)
	uint32(*uint32)
	int(*int)
	time(*time.Time)
	optTime(**time.Time)
}

// encodeBinary is a record in the binary form.
func encodeBinary(rec binaryRecord) []byte {
	w := writer{b: make([]byte, 1, 256)}
	w.b[0] = binaryFormat
	rec.binaryFields(&w)
	return w.b
}

// decodeBinary reads a record in the binary form (its format byte included) into rec. The
// record's byte slices and strings share one copy of data, which, being bbolt's, is valid
// only in its transaction: one allocation a record, not one a field.
func decodeBinary(data []byte, rec binaryRecord) error {
	if len(data) == 0 || data[0] != binaryFormat {
		return errors.New("not a record of format 2")
	}
	r := reader{b: bytes.Clone(data[1:])}
	rec.binaryFields(&r)
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d bytes after the last field", len(r.b))
	}
	return r.err
}

// writer appends fields. Lengths and integers are varints; a nil slice is told apart from an
// empty one (a length of n+1, 0 for nil), as JSON's null is from "".
type writer struct{ b []byte }

func (w *writer) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *writer) varint(v int64)   { w.b = binary.AppendVarint(w.b, v) }
func (w *writer) uint32(v *uint32) { w.uvarint(uint64(*v)) }
func (w *writer) int(v *int)       { w.varint(int64(*v)) }

func (w *writer) bool(v *bool) {
	if *v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

func (w *writer) str(s *string) {
	w.uvarint(uint64(len(*s)))
	w.b = append(w.b, *s...)
}

func (w *writer) bytes(p *[]byte) {
	if *p == nil {
		w.uvarint(0)
		return
	}
	w.uvarint(uint64(len(*p)) + 1)
	w.b = append(w.b, *p...)
}

func (w *writer) byteSlices(ps *[][]byte) {
	if *ps == nil {
		w.uvarint(0)
		return
	}
	w.uvarint(uint64(len(*ps)) + 1)
	for i := range *ps {
		w.bytes(&(*ps)[i])
	}
}

func (w *writer) strs(ss *[]string) {
	if *ss == nil {
		w.uvarint(0)
		return
	}
	w.uvarint(uint64(len(*ss)) + 1)
	for i := range *ss {
		w.str(&(*ss)[i])
	}
}

// time writes seconds and nanoseconds apart: UnixNano cannot hold the zero time.
func (w *writer) time(t *time.Time) {
	w.varint(t.Unix())
	w.uvarint(uint64(t.Nanosecond()))
}

func (w *writer) optTime(t **time.Time) {
	set := *t != nil
	w.bool(&set)
	if set {
		w.time(*t)
	}
}

// reader reads fields in the order writer wrote them. The first problem sticks: every later
// read returns a zero value, and err says what went wrong.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("truncated or malformed %s", what)
	}
	r.b = nil
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("number")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("number")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// past reports whether the record ended before this field, which then keeps its zero value:
// fields are only ever added at the end of a record's list, so a record written before one
// was added reads as if it were empty. A record cut inside a field is still refused.
func (r *reader) past() bool { return len(r.b) == 0 && r.err == nil }

func (r *reader) uint32(v *uint32) {
	if *v = 0; r.past() {
		return
	}
	n := r.uvarint()
	if n > 1<<32-1 {
		r.fail("32-bit number")
		return
	}
	*v = uint32(n)
}

func (r *reader) int(v *int) {
	if *v = 0; !r.past() {
		*v = int(r.varint())
	}
}

func (r *reader) bool(v *bool) {
	if *v = false; !r.past() {
		*v = r.boolean()
	}
}

func (r *reader) boolean() bool {
	switch n := r.uvarint(); n {
	case 0, 1:
		return n == 1
	default:
		r.fail("boolean")
		return false
	}
}

// take returns the next n bytes, capped so that appending to them cannot overwrite the next
// field.
func (r *reader) take(n uint64, what string) []byte {
	if n > uint64(len(r.b)) {
		r.fail(what)
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) str(s *string) {
	if *s = ""; !r.past() {
		*s = r.string()
	}
}

// string is the next string, made without a copy: its bytes are decodeBinary's copy of the
// record, which nothing else can write, since take caps every byte slice it hands out at its
// own end and the reader is gone once the record is read.
func (r *reader) string() string {
	p := r.take(r.uvarint(), "string")
	if len(p) == 0 {
		return ""
	}
	return unsafe.String(&p[0], len(p))
}

func (r *reader) bytes(p *[]byte) {
	if *p = nil; !r.past() {
		*p = r.byteString()
	}
}

func (r *reader) byteString() []byte {
	if n := r.uvarint(); n > 0 && r.err == nil {
		return r.take(n-1, "bytes")
	}
	return nil
}

// count reads the length of a list written as n+1 (0 for nil), refusing one longer than the
// bytes left could hold, so that a corrupt length cannot make a huge allocation.
func (r *reader) count() (n int, isNil bool) {
	c := r.uvarint()
	if c == 0 || r.err != nil {
		return 0, true
	}
	if c-1 > uint64(len(r.b)) {
		r.fail("list")
		return 0, true
	}
	return int(c - 1), false
}

func (r *reader) byteSlices(ps *[][]byte) {
	if *ps = nil; r.past() {
		return
	}
	n, isNil := r.count()
	if isNil {
		return
	}
	*ps = make([][]byte, n)
	for i := range *ps {
		(*ps)[i] = r.byteString()
	}
}

func (r *reader) strs(ss *[]string) {
	if *ss = nil; r.past() {
		return
	}
	n, isNil := r.count()
	if isNil {
		return
	}
	*ss = make([]string, n)
	for i := range *ss {
		(*ss)[i] = r.string()
	}
}

func (r *reader) time(t *time.Time) {
	if *t = (time.Time{}); !r.past() {
		*t = r.instant()
	}
}

func (r *reader) instant() time.Time {
	sec, ns := r.varint(), r.uvarint()
	if ns >= uint64(time.Second) {
		r.fail("time")
		return time.Time{}
	}
	return time.Unix(sec, int64(ns)).UTC()
}

func (r *reader) optTime(t **time.Time) {
	if *t = nil; r.past() || !r.boolean() {
		return
	}
	v := r.instant()
	*t = &v
}

func (a *accountRecord) binaryFields(c fieldCodec) {
	c.str(&a.ID)
	c.str(&a.CitizenID)
	c.str(&a.Name)
	c.str(&a.Email)
	c.str(&a.Phone)
	c.bytes(&a.WebAuthnID)
	c.str(&a.Status)
	c.time(&a.CreatedAt)
	c.time(&a.UpdatedAt)
	c.bool(&a.EmailVerified)
	c.str(&a.Lang)
}

func (d *deviceRecord) binaryFields(c fieldCodec) {
	c.str(&d.ID)
	c.str(&d.AccountID)
	c.str(&d.Name)
	c.bytes(&d.CredentialID)
	c.bytes(&d.PublicKey)
	c.str(&d.AttestationType)
	c.str(&d.AttestationFmt)
	c.bytes(&d.AAGUID)
	c.uint32(&d.SignCount)
	c.strs(&d.Transports)
	c.bool(&d.BackupEligible)
	c.bool(&d.BackupState)
	c.bytes(&d.TokenHash)
	c.str(&d.Status)
	c.time(&d.CreatedAt)
	c.time(&d.ExpiresAt)
	c.optTime(&d.LastUsedAt)
	c.optTime(&d.RevokedAt)
	c.optTime(&d.CloneWarningAt)
	c.str(&d.Attestation)
	c.str(&d.PushEndpoint)
	c.str(&d.PushP256dh)
	c.str(&d.PushAuth)
}

func (l *loginRecord) binaryFields(c fieldCodec) {
	c.bytes(&l.Hash)
	c.str(&l.Kind)
	c.str(&l.ClientID)
	c.str(&l.ClientName)
	c.str(&l.Status)
	c.time(&l.CreatedAt)
	c.time(&l.ExpiresAt)
	c.time(&l.TokenExpiresAt)
	c.int(&l.TokenSerial)
	c.byteSlices(&l.TokenHashes)
	c.str(&l.Code)
	c.str(&l.BindingMessage)
	c.bytes(&l.Request)
	c.bytes(&l.CodeHash)
	c.bytes(&l.WebAuthnSession)
	c.optTime(&l.LastPolledAt)
	c.str(&l.AccountID)
	c.str(&l.DeviceID)
	c.optTime(&l.AuthTime)
	c.bytes(&l.BrowserHash)
	c.str(&l.Browser)
	c.str(&l.Reason)
	c.int(&l.PollSeconds)
	c.str(&l.RequiredACR)
	c.str(&l.ACR)
	c.strs(&l.AMR)
}
