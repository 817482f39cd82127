package web

import (
	"testing"

	"github.com/mcert/mcert"
)

// TestStatusOfEveryKind checks that every kind of the catalog has its HTTP status.
func TestStatusOfEveryKind(t *testing.T) {
	for _, c := range mcert.Codes() {
		if statusOf[c.Kind] == 0 {
			t.Errorf("%s: the kind %q has no status", c.Name, c.Kind)
		}
	}
}
