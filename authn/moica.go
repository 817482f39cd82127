package authn

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
)

// MOICA's citizen certificates (內政部憑證管理中心) do not carry the whole national ID: the
// subject's CN is the holder's name, and the last four digits of the ID are an attribute of the
// Subject Directory Attributes extension (RFC 5280 section 4.2.1.8). Some versions put them in
// an extension of MOICA's own instead.
var (
	oidSubjectDirectoryAttributes = asn1.ObjectIdentifier{2, 5, 29, 9}
	oidMOICALastFour              = asn1.ObjectIdentifier{2, 16, 886, 1, 100, 2, 51}
	oidMOICALastFourExtension     = asn1.ObjectIdentifier{2, 16, 886, 1, 100, 1, 1}
	oidSerialNumber               = asn1.ObjectIdentifier{2, 5, 4, 5}
)

// directoryAttribute is one Attribute of SubjectDirectoryAttributes ::= SEQUENCE OF Attribute.
type directoryAttribute struct {
	Type   asn1.ObjectIdentifier
	Values []asn1.RawValue `asn1:"set"`
}

// MOICALastFourExtension is the Subject Directory Attributes extension of a MOICA card holding
// the last four digits of the ID, as the development CA's MOICA-shaped cards carry it.
func MOICALastFourExtension(lastFour string) (pkix.Extension, error) {
	value, err := asn1.MarshalWithParams(lastFour, "printable")
	if err != nil {
		return pkix.Extension{}, err
	}
	der, err := asn1.Marshal([]directoryAttribute{{Type: oidMOICALastFour, Values: []asn1.RawValue{{FullBytes: value}}}})
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: oidSubjectDirectoryAttributes, Value: der}, nil
}

var errNoLastFour = errors.New("no MOICA last-four attribute")

// moicaLastFour returns the last four digits of the holder's ID that a MOICA certificate
// carries, or errNoLastFour when it carries none. Two different values are an error.
func moicaLastFour(cert *x509.Certificate) (string, error) {
	var found []string
	for _, ext := range cert.Extensions {
		switch {
		case ext.Id.Equal(oidSubjectDirectoryAttributes):
			var attrs []directoryAttribute
			if rest, err := asn1.Unmarshal(ext.Value, &attrs); err != nil || len(rest) > 0 {
				return "", fmt.Errorf("the Subject Directory Attributes extension is malformed")
			}
			for _, a := range attrs {
				if !a.Type.Equal(oidMOICALastFour) {
					continue
				}
				for _, v := range a.Values {
					s, err := directoryString(v.FullBytes)
					if err != nil {
						return "", err
					}
					found = append(found, s)
				}
			}
		case ext.Id.Equal(oidMOICALastFourExtension):
			s, err := directoryString(ext.Value)
			if err != nil {
				return "", err
			}
			found = append(found, s)
		}
	}
	if len(found) == 0 {
		return "", errNoLastFour
	}
	for _, s := range found {
		if s != found[0] {
			return "", fmt.Errorf("the certificate carries two different last four digits of an ID")
		}
	}
	if !fourDigits(found[0]) {
		return "", fmt.Errorf("the certificate's last four digits of an ID are not four digits")
	}
	return found[0], nil
}

// directoryString reads a DER PrintableString, IA5String or UTF8String.
func directoryString(der []byte) (string, error) {
	var raw asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &raw); err != nil || len(rest) > 0 || raw.Class != asn1.ClassUniversal {
		return "", fmt.Errorf("the certificate's last four digits of an ID are not a string")
	}
	switch raw.Tag {
	case asn1.TagPrintableString, asn1.TagIA5String, asn1.TagUTF8String:
		return string(raw.Bytes), nil
	}
	return "", fmt.Errorf("the certificate's last four digits of an ID are not a string")
}

func fourDigits(s string) bool {
	if len(s) != 4 {
		return false
	}
	for i := range 4 {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// serialNumbers are the subject's serialNumber attributes (OID 2.5.4.5), every one: the
// certificate's Subject.SerialNumber keeps only the last.
func serialNumbers(cert *x509.Certificate) []string {
	var out []string
	for _, atv := range cert.Subject.Names {
		if atv.Type.Equal(oidSerialNumber) {
			s, _ := atv.Value.(string)
			out = append(out, s)
		}
	}
	return out
}
