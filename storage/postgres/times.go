package postgres

import (
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// Times are stored as nanoseconds since the Unix epoch (see migrations/0001_schema.sql), which
// a bigint holds from 1677-09-21 to 2262-04-11. Go's zero time, which records use for "not
// set", is the smallest bigint; a time outside that range is refused rather than stored as
// another.

// zeroTime stands for time.Time{}: no time in the range has it as its count.
const zeroTime = math.MinInt64

// stamp is a time as an argument of a statement.
type stamp time.Time

func (s stamp) Int64Value() (pgtype.Int8, error) {
	t := time.Time(s)
	if t.IsZero() {
		return pgtype.Int8{Int64: zeroTime, Valid: true}, nil
	}
	ns := t.UnixNano()
	if ns == zeroTime || !time.Unix(0, ns).Equal(t) {
		return pgtype.Int8{}, fmt.Errorf("storage/postgres: the time %v is outside the years 1678 to 2262 that the store keeps", t)
	}
	return pgtype.Int8{Int64: ns, Valid: true}, nil
}

// optStamp is an optional time as an argument: NULL for nil.
func optStamp(t *time.Time) any {
	if t == nil {
		return nil
	}
	return stamp(*t)
}

// cutoff is a time that stored times are compared with, as an argument: unlike stamp it
// accepts any time, clamped to the range, since only the order matters.
func cutoff(t time.Time) int64 {
	switch {
	case t.IsZero():
		return zeroTime
	case t.Before(time.Unix(0, zeroTime+1)):
		return zeroTime + 1
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

func fromNanos(ns int64) time.Time {
	if ns == zeroTime {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// timeDst scans a time column into *t.
type timeDst struct{ t *time.Time }

func (d timeDst) ScanInt64(v pgtype.Int8) error {
	if !v.Valid {
		return fmt.Errorf("storage/postgres: a time that may not be NULL is")
	}
	*d.t = fromNanos(v.Int64)
	return nil
}

// optTimeDst scans a time column that may be NULL into *t, nil for NULL.
type optTimeDst struct{ t **time.Time }

func (d optTimeDst) ScanInt64(v pgtype.Int8) error {
	if !v.Valid {
		*d.t = nil
		return nil
	}
	*d.t = new(fromNanos(v.Int64))
	return nil
}
