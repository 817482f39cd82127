package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mcert/mcert/storage"
)

// dbError is the error of a database call, doing what, as the store returns it: a unique
// violation is storage.ErrAlreadyExists, and an error that says the database cannot answer
// for now wraps storage.ErrUnavailable. outer is the caller's context: once it is done, an
// error is the caller's doing, and says nothing about the database.
func dbError(outer context.Context, what string, err error) error {
	err = fmt.Errorf("storage/postgres: %s: %w", what, err)
	switch {
	case isUniqueViolation(err):
		return fmt.Errorf("%w: %w", storage.ErrAlreadyExists, err)
	case outer.Err() == nil && unavailable(err):
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	return err
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

func isUniqueViolation(err error) bool { return sqlState(err) == "23505" }

// retryable reports whether PostgreSQL rolled the transaction back so that it may run again:
// it could not serialize it, or chose it to break a deadlock.
func retryable(err error) bool {
	code := sqlState(err)
	return code == "40001" || code == "40P01"
}

// unavailable reports whether err says that the database cannot answer for now, rather than
// that the request or the program is wrong.
func unavailable(err error) bool {
	if code := sqlState(err); code != "" {
		switch code[:2] {
		case "08", // connection exception
			"53", // insufficient resources: too many connections, out of memory, disk full
			"57": // operator intervention: shutting down, starting up, statement_timeout
			return true
		}
		// A read-only transaction that was not asked for one is a standby, after a failover;
		// a transaction that lost to others, again and again, may win later.
		return code == "25006" || retryable(err)
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	return errors.As(err, &netErr) || errors.As(err, &connectErr) ||
		errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, pgconn.ErrConnClosed)
}
