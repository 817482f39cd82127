package authn

import (
	"strings"
	"testing"

	"github.com/mcert/mcert"
)

func TestValidateCitizenID(t *testing.T) {
	tests := []struct {
		name    string
		id      string
		wantErr string // a word of the message; "" for a valid ID
	}{
		{name: "example", id: "A123456789"},
		{name: "second digit 2", id: "B222222228"},
		{name: "I is 34", id: "I100000003"},
		{name: "O is 35", id: "O200000006"},
		{name: "W is 32", id: "W123456789"},
		{name: "Z is 33", id: "Z199999990"},
		{name: "check digit", id: "A123456788", wantErr: "check digit"},
		{name: "swapped digits", id: "A123465789", wantErr: "check digit"},
		{name: "empty", id: "", wantErr: "one uppercase letter"},
		{name: "too short", id: "A12345678", wantErr: "one uppercase letter"},
		{name: "too long", id: "A1234567890", wantErr: "one uppercase letter"},
		{name: "lowercase letter", id: "a123456789", wantErr: "one uppercase letter"},
		{name: "digit first", id: "1123456789", wantErr: "one uppercase letter"},
		{name: "second digit 3", id: "A323456789", wantErr: "one uppercase letter"},
		{name: "new resident format", id: "A823456789", wantErr: "one uppercase letter"},
		{name: "letter among digits", id: "A12345678X", wantErr: "nine digits"},
		{name: "space", id: "A1234 6789", wantErr: "nine digits"},
		{name: "multibyte", id: "A1２3456789"[:10], wantErr: "nine digits"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateCitizenID(tc.id)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateCitizenID(%q) = %v, want nil", tc.id, err)
				}
				return
			}
			e, ok := err.(*mcert.Error)
			if !ok || e.Kind != mcert.Invalid || e.Code != "invalid_citizen_id" {
				t.Fatalf("ValidateCitizenID(%q) = %#v, want an invalid_citizen_id error", tc.id, err)
			}
			if !strings.Contains(e.Message, tc.wantErr) {
				t.Errorf("message %q does not say %q", e.Message, tc.wantErr)
			}
			if len(tc.id) >= 10 && strings.Contains(e.Message, tc.id) {
				t.Errorf("message %q repeats the ID", e.Message)
			}
		})
	}
}

func TestMaskCitizenID(t *testing.T) {
	tests := []struct {
		name string
		id   string
		want string
	}{
		{name: "valid", id: "A123456789", want: "A12****789"},
		{name: "bad check digit keeps the shape", id: "A123456788", want: "A12****788"},
		{name: "empty", id: "", want: "**********"},
		{name: "short", id: "A12345", want: "**********"},
		{name: "long", id: "A1234567890123", want: "**********"},
		{name: "punctuation", id: "A12-456789", want: "**********"},
		{name: "lowercase", id: "a123456789", want: "**********"},
		{name: "multibyte", id: "王小明A", want: "**********"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := MaskCitizenID(tc.id); got != tc.want {
				t.Errorf("MaskCitizenID(%q) = %q, want %q", tc.id, got, tc.want)
			}
		})
	}
}

func FuzzValidateCitizenID(f *testing.F) {
	for _, seed := range []string{"A123456789", "A123456788", "Z199999990", "", "a123456789", "A1２3456789", "AAAAAAAAAA"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, id string) {
		masked := MaskCitizenID(id)
		if len(masked) != 10 || masked[3:7] != "****" {
			t.Fatalf("MaskCitizenID(%q) = %q, not ten characters with the middle hidden", id, masked)
		}
		if masked != "**********" && (len(id) != 10 || masked[:3] != id[:3] || masked[7:] != id[7:]) {
			t.Fatalf("MaskCitizenID(%q) = %q shows what is not at the ends of an ID", id, masked)
		}
		if err := ValidateCitizenID(id); err != nil {
			if mcert.ErrorKind(err) != mcert.Invalid {
				t.Fatalf("ValidateCitizenID(%q) = %v, want an invalid error", id, err)
			}
			return
		}
		if len(id) != 10 || masked != id[:3]+"****"+id[7:] {
			t.Fatalf("valid ID %q masked as %q", id, masked)
		}
	})
}
