package binding

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/storage"
)

// DevicePolicy is which phones' keys a binding accepts (mcert serve --device-policy). The zero
// policy accepts every key with user verification.
type DevicePolicy struct {
	RefuseSynced     bool // refuse backup-eligible keys: synced passkeys
	RefuseUnattested bool // refuse keys whose attestation is not trusted: none, self or untrusted
}

// ParseDevicePolicy reads a comma list of synced=accept|refuse and unattested=accept|refuse;
// "" is the default, accept both. Every problem is reported at once.
func ParseDevicePolicy(text string) (DevicePolicy, error) {
	var p DevicePolicy
	var errs []error
	seen := map[string]bool{}
	for item := range strings.SplitSeq(text, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, value, ok := strings.Cut(item, "=")
		if !ok || (value != "accept" && value != "refuse") {
			errs = append(errs, fmt.Errorf("%q: write synced=accept|refuse or unattested=accept|refuse", item))
			continue
		}
		if seen[name] {
			errs = append(errs, fmt.Errorf("%s is given twice", name))
		}
		seen[name] = true
		switch name {
		case "synced":
			p.RefuseSynced = value == "refuse"
		case "unattested":
			p.RefuseUnattested = value == "refuse"
		default:
			errs = append(errs, fmt.Errorf("%q: the policy knows synced and unattested", name))
		}
	}
	return p, errors.Join(errs...)
}

// String is the policy as ParseDevicePolicy reads it.
func (p DevicePolicy) String() string {
	word := map[bool]string{false: "accept", true: "refuse"}
	return "synced=" + word[p.RefuseSynced] + ",unattested=" + word[p.RefuseUnattested]
}

// check refuses a new device the policy does not accept.
func (p DevicePolicy) check(d storage.Device) error {
	switch {
	case p.RefuseSynced && d.BackupEligible:
		return mcert.SyncedNotAccepted.New()
	case p.RefuseUnattested && d.Attestation != storage.AttestationTrusted:
		return mcert.UnattestedNotAccepted.Newf(d.Attestation)
	}
	return nil
}
