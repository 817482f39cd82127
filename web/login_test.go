package web

import (
	"net/http"
	"testing"
)

func TestBearerToken(t *testing.T) {
	tests := []struct{ name, header, want string }{
		{"bearer", "Bearer abc", "abc"},
		{"scheme in lower case", "bearer abc", "abc"},
		{"no header", "", ""},
		{"scheme alone", "Bearer", ""},
		{"another scheme", "Basic abc", ""},
		{"no space", "Bearerabc", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodGet, "/", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			if got := bearerToken(r); got != tc.want {
				t.Errorf("bearerToken(%q) = %q, want %q", tc.header, got, tc.want)
			}
		})
	}
}
