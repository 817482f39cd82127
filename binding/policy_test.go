package binding

import (
	"strings"
	"testing"

	"github.com/mcert/mcert/storage"
)

func TestParseDevicePolicy(t *testing.T) {
	tests := []struct {
		name string
		text string
		want DevicePolicy
		err  string
	}{
		{"default", "", DevicePolicy{}, ""},
		{"accept both", "synced=accept,unattested=accept", DevicePolicy{}, ""},
		{"refuse synced", "synced=refuse", DevicePolicy{RefuseSynced: true}, ""},
		{"refuse both, spaced", " synced=refuse , unattested=refuse ", DevicePolicy{RefuseSynced: true, RefuseUnattested: true}, ""},
		{"unknown name", "cloned=refuse", DevicePolicy{}, `"cloned": the policy knows synced and unattested`},
		{"bad value", "synced=no", DevicePolicy{}, `"synced=no": write synced=accept|refuse`},
		{"no value", "synced", DevicePolicy{}, `"synced": write`},
		{"twice", "synced=refuse,synced=accept", DevicePolicy{}, "synced is given twice"},
		{"every problem", "a=b,synced=maybe", DevicePolicy{}, `"synced=maybe"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDevicePolicy(tc.text)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want an error saying %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
			if again, err := ParseDevicePolicy(got.String()); err != nil || again != got {
				t.Fatalf("String %q reads back as %+v, %v", got.String(), again, err)
			}
		})
	}
}

func TestDevicePolicyCheck(t *testing.T) {
	hardware := storage.Device{Attestation: storage.AttestationTrusted}
	synced := storage.Device{Attestation: storage.AttestationTrusted, BackupEligible: true}
	none := storage.Device{Attestation: storage.AttestationNone}
	strict := DevicePolicy{RefuseSynced: true, RefuseUnattested: true}
	for _, tc := range []struct {
		name   string
		policy DevicePolicy
		d      storage.Device
		want   string
	}{
		{"default accepts synced", DevicePolicy{}, synced, ""},
		{"default accepts none", DevicePolicy{}, none, ""},
		{"strict accepts hardware", strict, hardware, ""},
		{"strict refuses synced", strict, synced, "device_not_accepted"},
		{"strict refuses none", strict, none, "device_not_accepted"},
		{"refusing synced accepts none", DevicePolicy{RefuseSynced: true}, none, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := errorCodeOrEmpty(tc.policy.check(tc.d)); got != tc.want {
				t.Fatalf("check: %q, want %q", got, tc.want)
			}
		})
	}
}

func errorCodeOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return errorCode(err)
}
