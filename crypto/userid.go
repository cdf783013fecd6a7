package crypto

import (
	"errors"
	"fmt"
	"strings"

	"filippo.io/edwards25519"

	"github.com/weftnet/weft/crypto/internal/bech32"
)

const userIDHRP = "weft"

// UserID identifies a user: it is the user's Ed25519 public key.
//
// Its text form (see [UserID.String] and [ParseUserID]) is the lower-case
// bech32 encoding of the key with the human-readable part "weft".
//
// A UserID obtained from [ParseUserID], [UserIDFromBytes],
// [UserID.UnmarshalText] or [Identity.UserID] is always a valid public key.
// The zero UserID is not a valid public key; it means "no user", and its
// MarshalText form is the empty string (which UnmarshalText accepts back).
type UserID [32]byte

// ParseUserID parses a user ID in its text form, "weft1..." in lower case.
// It accepts only the canonical form: no surrounding space, no upper case.
// Errors wrap [ErrMalformedUserID].
func ParseUserID(s string) (UserID, error) {
	if strings.ContainsFunc(s, func(r rune) bool { return 'A' <= r && r <= 'Z' }) {
		return UserID{}, fmt.Errorf("%w: must be lower case", ErrMalformedUserID)
	}
	hrp, data, err := bech32.Decode(s)
	if errors.Is(err, bech32.ErrChecksum) {
		return UserID{}, fmt.Errorf("%w: checksum mismatch: is there a typo?", ErrMalformedUserID)
	}
	if err != nil {
		return UserID{}, fmt.Errorf("%w: %v", ErrMalformedUserID, err)
	}
	if hrp != userIDHRP {
		return UserID{}, fmt.Errorf("%w: prefix is %q, want %q", ErrMalformedUserID, hrp+"1", userIDHRP+"1")
	}
	return UserIDFromBytes(data)
}

// UserIDFromBytes returns the user ID whose Ed25519 public key is b. b must
// be 32 bytes long and the canonical encoding of a point that is not of small
// order. Errors wrap [ErrMalformedUserID].
func UserIDFromBytes(b []byte) (UserID, error) {
	if len(b) != len(UserID{}) {
		return UserID{}, fmt.Errorf("%w: public key is %d bytes, want %d", ErrMalformedUserID, len(b), len(UserID{}))
	}
	if _, err := decodePoint(b); err != nil {
		return UserID{}, err
	}
	return UserID(b), nil
}

// decodePoint decodes b as an Ed25519 public key, rejecting non-canonical
// encodings (so that each key has exactly one user ID) and points of small
// order (for which anyone can forge signatures and X25519 yields no secret).
func decodePoint(b []byte) (*edwards25519.Point, error) {
	p, err := new(edwards25519.Point).SetBytes(b)
	if err != nil {
		return nil, fmt.Errorf("%w: not a valid Ed25519 public key", ErrMalformedUserID)
	}
	if string(p.Bytes()) != string(b) {
		return nil, fmt.Errorf("%w: non-canonical Ed25519 point encoding", ErrMalformedUserID)
	}
	if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return nil, fmt.Errorf("%w: Ed25519 point of small order", ErrMalformedUserID)
	}
	return p, nil
}

// String returns the text form of u, "weft1..." in lower case.
func (u UserID) String() string {
	s, err := bech32.Encode(userIDHRP, u[:])
	if err != nil {
		panic("crypto: bech32 encoding of a user ID failed: " + err.Error())
	}
	return s
}

// IsZero reports whether u is the zero UserID.
func (u UserID) IsZero() bool {
	return u == UserID{}
}

// MarshalText implements [encoding.TextMarshaler]. It returns the text form
// of u, or an empty string for the zero UserID.
func (u UserID) MarshalText() ([]byte, error) {
	if u.IsZero() {
		return []byte{}, nil
	}
	return []byte(u.String()), nil
}

// UnmarshalText implements [encoding.TextUnmarshaler] like [ParseUserID],
// except that an empty text sets u to the zero UserID. On error u is left
// unchanged.
func (u *UserID) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*u = UserID{}
		return nil
	}
	v, err := ParseUserID(string(text))
	if err != nil {
		return err
	}
	*u = v
	return nil
}

// X25519 returns the X25519 public key corresponding to u: the 32-byte
// Montgomery u-coordinate of the Ed25519 point. It fails, with an error
// wrapping [ErrMalformedUserID], only if u is not a valid public key (for
// example the zero UserID).
func (u UserID) X25519() ([]byte, error) {
	p, err := decodePoint(u[:])
	if err != nil {
		return nil, err
	}
	return p.BytesMontgomery(), nil
}
