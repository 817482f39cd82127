package push

import (
	"errors"
	"net/netip"
	"testing"
)

func TestAllowed(t *testing.T) {
	tests := []struct {
		addr          string
		allowLoopback bool
		want          bool
	}{
		{"142.250.185.74", false, true}, // a push service's address
		{"2a00:1450:4001:82b::200a", false, true},
		{"127.0.0.1", false, false},
		{"127.0.0.1", true, true},
		{"127.8.9.10", true, true},
		{"::1", false, false},
		{"::1", true, true},
		{"10.1.2.3", true, false},
		{"172.16.0.1", true, false},
		{"192.168.1.1", true, false},
		{"fd00::1", true, false},
		{"169.254.169.254", true, false}, // cloud metadata
		{"fe80::1", true, false},
		{"0.0.0.0", true, false},
		{"0.1.2.3", true, false},
		{"::", true, false},
		{"224.0.0.1", true, false},
		{"ff02::1", true, false},
		{"100.64.0.1", true, false},
		{"255.255.255.255", true, false},
		{"::ffff:10.1.2.3", true, false},
		{"::ffff:127.0.0.1", false, false},
	}
	for _, tc := range tests {
		if got := allowed(netip.MustParseAddr(tc.addr), tc.allowLoopback); got != tc.want {
			t.Errorf("allowed(%s, allowLoopback %v) = %v, want %v", tc.addr, tc.allowLoopback, got, tc.want)
		}
	}
}

func TestControlRefuses(t *testing.T) {
	for _, address := range []string{"10.1.2.3:443", "[fe80::1]:443", "169.254.169.254:443", "127.0.0.1:80", "nonsense"} {
		if err := control(false)("tcp", address, nil); !errors.Is(err, errRefused) {
			t.Errorf("control(%s) = %v, want a refusal", address, err)
		}
	}
	if err := control(true)("tcp4", "127.0.0.1:80", nil); err != nil {
		t.Errorf("control(127.0.0.1:80) with loopback allowed = %v", err)
	}
}
