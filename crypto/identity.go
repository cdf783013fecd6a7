package crypto

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"fmt"
	"strings"

	"github.com/weftnet/weft/crypto/internal/bech32"
)

const identityHRP = "WEFT-SECRET-KEY-"

const seedSize = ed25519.SeedSize

// Identity is a user's secret key: an Ed25519 private key, which also
// provides the X25519 key used to unwrap thread keys sent to the user.
//
// Its text form (see [Identity.String] and [ParseIdentity]) is the
// upper-case bech32 encoding of the 32-byte Ed25519 seed with the
// human-readable part "WEFT-SECRET-KEY-".
//
// An Identity is immutable and safe for concurrent use. Use the constructors
// in this package; the zero Identity is not usable.
type Identity struct {
	seed   [seedSize]byte
	priv   ed25519.PrivateKey
	userID UserID
	x25519 [32]byte
	kem    hpke.PrivateKey
}

// GenerateIdentity returns a new random Identity.
func GenerateIdentity() (*Identity, error) {
	seed := make([]byte, seedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("crypto: generating identity: %w", err)
	}
	return NewIdentityFromSeed(seed)
}

// NewIdentityFromSeed returns the Identity with the given 32-byte Ed25519
// seed (the private key as defined by RFC 8032). Errors wrap
// [ErrMalformedIdentity].
func NewIdentityFromSeed(seed []byte) (*Identity, error) {
	if len(seed) != seedSize {
		return nil, fmt.Errorf("%w: seed is %d bytes, want %d", ErrMalformedIdentity, len(seed), seedSize)
	}
	id := &Identity{priv: ed25519.NewKeyFromSeed(seed)}
	copy(id.seed[:], seed)
	copy(id.userID[:], id.priv.Public().(ed25519.PublicKey))

	// As crypto_sign_ed25519_sk_to_curve25519: the clamped first half of
	// SHA-512(seed), which is the Ed25519 secret scalar.
	h := sha512.Sum512(seed)
	copy(id.x25519[:], h[:32])
	id.x25519[0] &= 248
	id.x25519[31] &= 127
	id.x25519[31] |= 64
	clear(h[:])

	xk, err := ecdh.X25519().NewPrivateKey(id.x25519[:])
	if err != nil {
		return nil, fmt.Errorf("crypto: deriving X25519 key: %w", err)
	}
	id.kem, err = hpke.NewDHKEMPrivateKey(xk)
	if err != nil {
		return nil, fmt.Errorf("crypto: deriving HPKE key: %w", err)
	}
	return id, nil
}

// ParseIdentity parses a secret key in its text form,
// "WEFT-SECRET-KEY-1..." in upper case. Errors wrap [ErrMalformedIdentity]
// and never contain the key.
func ParseIdentity(s string) (*Identity, error) {
	if strings.ContainsFunc(s, func(r rune) bool { return 'a' <= r && r <= 'z' }) {
		return nil, fmt.Errorf("%w: must be upper case", ErrMalformedIdentity)
	}
	hrp, data, err := bech32.Decode(s)
	if errors.Is(err, bech32.ErrChecksum) {
		return nil, fmt.Errorf("%w: checksum mismatch: is there a typo?", ErrMalformedIdentity)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: not a valid bech32 string", ErrMalformedIdentity)
	}
	defer clear(data)
	if hrp != identityHRP {
		return nil, fmt.Errorf("%w: prefix is not %q", ErrMalformedIdentity, identityHRP+"1")
	}
	return NewIdentityFromSeed(data)
}

// String returns the text form of the secret key, "WEFT-SECRET-KEY-1..." in
// upper case. Handle it as the secret it is.
func (id *Identity) String() string {
	s, err := bech32.Encode(identityHRP, id.seed[:])
	if err != nil {
		panic("crypto: bech32 encoding of a secret key failed: " + err.Error())
	}
	return s
}

// UserID returns the user ID (public key) of id.
func (id *Identity) UserID() UserID {
	return id.userID
}

// Seed returns a copy of the 32-byte Ed25519 seed of id.
// WriterID is the key an identity writes events with: its own (see
// protocol.Signer; a device writes with its device key instead).
func (id *Identity) WriterID() UserID { return id.UserID() }

// DeviceCertBytes is nil: an identity writing with its own key is no
// device.
func (id *Identity) DeviceCertBytes() []byte { return nil }

func (id *Identity) Seed() []byte {
	return append([]byte(nil), id.seed[:]...)
}

// X25519 returns a copy of the X25519 private key (scalar) corresponding to
// id, computed like libsodium's crypto_sign_ed25519_sk_to_curve25519:
// SHA-512(seed)[:32], clamped. Its public key is [UserID.X25519] of
// [Identity.UserID].
func (id *Identity) X25519() []byte {
	return append([]byte(nil), id.x25519[:]...)
}
