package web

import (
	"testing"

	"github.com/mcert/mcert/qr"
)

func TestQRCache(t *testing.T) {
	c := newQRCache(2)
	draw := func(text string) []byte {
		t.Helper()
		png, err := c.png(text)
		if err != nil {
			t.Fatal(err)
		}
		return png
	}
	a := draw("http://localhost/m/login#a")
	if got, err := qr.DecodePNG(a); err != nil || got != "http://localhost/m/login#a" {
		t.Fatalf("cached image reads %q, %v", got, err)
	}
	if again := draw("http://localhost/m/login#a"); &again[0] != &a[0] {
		t.Error("a cached text was drawn again")
	}
	draw("http://localhost/m/login#b")
	draw("http://localhost/m/login#a") // b is now the least recently used
	draw("http://localhost/m/login#c")
	if c.recent.Len() != 2 || len(c.byText) != 2 {
		t.Fatalf("cache holds %d images (%d indexed), want its capacity 2", c.recent.Len(), len(c.byText))
	}
	for text, want := range map[string]bool{"http://localhost/m/login#a": true, "http://localhost/m/login#b": false, "http://localhost/m/login#c": true} {
		if _, ok := c.get(text); ok != want {
			t.Errorf("%s cached: %v, want %v", text, ok, want)
		}
	}
}
