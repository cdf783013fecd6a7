package crypto

import (
	"crypto/ed25519"
	"fmt"
	"strings"
)

// SignatureSize is the size in bytes of a signature made by [Identity.Sign].
const SignatureSize = 64

const signaturePrefix = "weft-sig-v1\x00"

// signedMessage returns the message actually signed for domain and msg.
func signedMessage(domain string, msg []byte) []byte {
	m := make([]byte, 0, len(signaturePrefix)+len(domain)+1+len(msg))
	m = append(m, signaturePrefix...)
	m = append(m, domain...)
	m = append(m, 0)
	return append(m, msg...)
}

// Sign signs msg in the given domain with Ed25519 and returns the
// [SignatureSize]-byte signature. The message actually signed is
//
//	"weft-sig-v1\x00" + domain + "\x00" + msg
//
// so a signature is only valid for the domain it was made in. domain is a
// short constant such as "event"; Sign panics if it contains a zero byte.
// Signatures are deterministic.
func (id *Identity) Sign(domain string, msg []byte) []byte {
	if strings.IndexByte(domain, 0) >= 0 {
		panic("crypto: signature domain contains a zero byte")
	}
	return ed25519.Sign(id.priv, signedMessage(domain, msg))
}

// Verify checks that sig is a signature of msg in the given domain by the
// user u, as made by [Identity.Sign]. It returns nil if it is, and otherwise
// an error wrapping [ErrBadSignature] (also for a signature of the wrong
// length, an invalid user ID or a domain containing a zero byte).
func Verify(u UserID, domain string, msg, sig []byte) error {
	if len(sig) != SignatureSize {
		return fmt.Errorf("%w: signature is %d bytes, want %d", ErrBadSignature, len(sig), SignatureSize)
	}
	if strings.IndexByte(domain, 0) >= 0 {
		return fmt.Errorf("%w: signature domain contains a zero byte", ErrBadSignature)
	}
	if err := checkVerifyKey(u[:]); err != nil {
		return fmt.Errorf("%w: signer %v", ErrBadSignature, err)
	}
	if !ed25519.Verify(ed25519.PublicKey(u[:]), signedMessage(domain, msg), sig) {
		return fmt.Errorf("%w: verification failed for %v in domain %q", ErrBadSignature, u, domain)
	}
	return nil
}
