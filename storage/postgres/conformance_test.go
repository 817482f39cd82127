package postgres

import (
	"testing"

	"github.com/mcert/mcert/storage"
	"github.com/mcert/mcert/storage/conformance"
	"github.com/mcert/mcert/storage/postgres/pgtest"
)

// TestConformance holds the store to every storage test, each on a database of its own.
func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) storage.Store { return open(t, pgtest.URL(t), Options{}) })
}
