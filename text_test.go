package mcert

import "testing"

func TestPlainText(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		max  int
		want bool
	}{
		{"Chinese", "健保署 登入確認", 64, true},
		{"emoji", "Pixel 8 📱", 64, true},
		{"empty", "", 64, true},
		{"at the limit", "一二三四", 4, true},
		{"over the limit", "一二三四五", 4, false},
		{"newline", "a\nb", 64, false},
		{"NUL", "a\x00", 64, false},
		{"right-to-left override", "evil\u202egpj.exe", 64, false},
		{"first strong isolate", "a\u2068b", 64, false},
		{"zero-width space", "pay\u200bpal", 64, false},
		{"zero-width joiner", "a\u200db", 64, false},
		{"byte order mark", "\ufeffname", 64, false},
		{"line separator", "a\u2028b", 64, false},
		{"invalid UTF-8", "a\xffb", 64, false},
	} {
		if got := PlainText(tc.in, tc.max); got != tc.want {
			t.Errorf("%s: PlainText(%q, %d) = %v, want %v", tc.name, tc.in, tc.max, got, tc.want)
		}
	}
}
