package token

import (
	"encoding/json"

	"github.com/go-jose/go-jose/v4"
)

// JWKS returns the public keys of the ring as a JSON Web Key Set (RFC 7517):
// every asymmetric key that is next or active, and retired keys while
// tokens they signed may still be valid, so that a verifier that fetched the
// set once keeps working across a rotation. HMAC keys and revoked keys are
// never published.
func (kr *Keyring) JWKS() jose.JSONWebKeySet {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range kr.keys {
		if k.public == nil {
			continue
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.public, KeyID: k.KID, Algorithm: k.Algorithm, Use: "sig"})
	}
	return set
}

// JWKSJSON is JWKS marshalled.
func (kr *Keyring) JWKSJSON() ([]byte, error) { return json.Marshal(kr.JWKS()) }
