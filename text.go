package mcert

import (
	"unicode"
	"unicode/utf8"
)

// PlainRune reports whether r may appear in a text that mcert shows to people on another
// screen than the one it was typed on (a website's name, a binding message, a device name):
// no control (Cc) or format (Cf) characters, which include the bidi overrides and zero-width
// characters that make a text read other than it is, and no line or paragraph separators.
func PlainRune(r rune) bool {
	return !unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp)
}

// PlainText reports whether s is valid UTF-8 of at most max characters, each a PlainRune.
func PlainText(s string, max int) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return false
	}
	for _, r := range s {
		if !PlainRune(r) {
			return false
		}
	}
	return true
}
