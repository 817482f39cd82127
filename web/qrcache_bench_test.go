package web

import (
	"fmt"
	"testing"
)

// BenchmarkQRCache serves a login page's QR image from the cache (Hit) and draws a new one
// each time (Miss), as after every refresh of the code.
func BenchmarkQRCache(b *testing.B) {
	const text = "https://mcert.example.tw/m/login#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
	b.Run("Hit", func(b *testing.B) {
		c := newQRCache(qrCacheSize)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.png(text); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Miss", func(b *testing.B) {
		c := newQRCache(qrCacheSize)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := c.png(fmt.Sprint(text, i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
