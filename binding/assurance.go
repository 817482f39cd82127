package binding

import (
	"slices"

	"github.com/mcert/mcert/storage"
)

// Authentication context classes (acr) of a login, lowest first. Each one includes those
// below it: a login at phone-hardware meets a demand for phone-biometric. docs/api.md section
// "Assurance" says what a relying party can rely on.
const (
	// ACRPhoneBiometric: approved on a bound phone with a passkey that verified its user (UV),
	// whatever the key's storage: what every login meets.
	ACRPhoneBiometric = "urn:mcert:acr:phone-biometric"
	// ACRPhoneHardware: besides, the key's attestation chains to a trusted root or FIDO
	// metadata entry, and the key is not backup-eligible: it cannot leave the phone.
	ACRPhoneHardware = "urn:mcert:acr:phone-hardware"
)

// ACRValues are the classes mcert offers, lowest first: discovery's acr_values_supported.
func ACRValues() []string { return []string{ACRPhoneBiometric, ACRPhoneHardware} }

func acrRank(acr string) int { return slices.Index(ACRValues(), acr) }

// HardwareBound reports whether the device's key is known to stay in its hardware: its
// attestation is trusted, and the key is not backup-eligible (a synced passkey is).
func HardwareBound(d storage.Device) bool {
	return d.Attestation == storage.AttestationTrusted && !d.BackupEligible
}

// DeviceACR is the class a login approved by the device reaches.
func DeviceACR(d storage.Device) string {
	if HardwareBound(d) {
		return ACRPhoneHardware
	}
	return ACRPhoneBiometric
}

// DeviceAMR are the methods (RFC 8176) of a login approved by the device: user (the
// biometric or PIN verified the user, which every login requires), and hwk for a key that is
// HardwareBound, swk for any other.
func DeviceAMR(d storage.Device) []string {
	if HardwareBound(d) {
		return []string{"hwk", "user"}
	}
	return []string{"swk", "user"}
}

// RequiredACR is the class a relying party demands by acr_values: the lowest of the values it
// lists that mcert knows, since any of them would do. Values mcert does not know are ignored
// (OpenID Connect Core section 3.1.2.1 makes acr_values voluntary); none known is no demand, "".
func RequiredACR(values []string) string {
	least := ""
	for _, v := range values {
		if r := acrRank(v); r >= 0 && (least == "" || r < acrRank(least)) {
			least = v
		}
	}
	return least
}

// meetsACR reports whether a login approved by the device meets the demanded class.
func meetsACR(d storage.Device, required string) bool {
	return required == "" || acrRank(DeviceACR(d)) >= acrRank(required)
}
