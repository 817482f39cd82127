package provider

import "github.com/mcert/mcert/binding"

// The provider's secrets in the store.
const (
	cryptoKeyName  = "oidc-crypto-key"
	subjectKeyName = "pairwise-subject-key"
)

// Secrets are the names of the server's secrets in the store, the provider's and the binding
// service's: what seal.SealPlain seals in a store from before sealing.
var Secrets = append([]string{cryptoKeyName, subjectKeyName}, binding.Secrets...)
