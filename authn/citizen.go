package authn

import (
	"strings"

	"github.com/mcert/mcert"
)

// citizenLetters lists the area letters in the order of their values 10, 11, …, 35: the values
// follow the order in which areas were added, not the alphabet.
const citizenLetters = "ABCDEFGHJKLMNPQRSTUVXYWZIO"

// ValidateCitizenID reports whether id is a well-formed Taiwan national ID number: an uppercase
// letter, 1 or 2, then eight digits, the last being the check digit. The error never repeats
// the number, as it may end up in logs.
func ValidateCitizenID(id string) error {
	if len(id) != 10 || id[0] < 'A' || id[0] > 'Z' || (id[1] != '1' && id[1] != '2') {
		return mcert.InvalidCitizenID.New()
	}
	letter := strings.IndexByte(citizenLetters, id[0]) + 10
	sum := letter/10 + letter%10*9
	for i := 1; i < 10; i++ {
		d := id[i]
		if d < '0' || d > '9' {
			return mcert.CitizenIDDigits.New()
		}
		weight := max(9-i, 1) // 8, 7, …, 1 for the first eight digits, 1 for the check digit
		sum += int(d-'0') * weight
	}
	if sum%10 != 0 {
		return mcert.CitizenIDCheckDigit.New()
	}
	return nil
}

// MaskCitizenID is how pages and logs show a national ID: A123456789 becomes A12****789.
// Anything not shaped like an ID is masked entirely, so a typo or a foreign identifier never
// shows more than a valid ID would.
func MaskCitizenID(id string) string {
	const hidden = "**********"
	if len(id) != len(hidden) {
		return hidden
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > 'Z' || (id[i] > '9' && id[i] < 'A') {
			return hidden
		}
	}
	return id[:3] + "****" + id[7:]
}
