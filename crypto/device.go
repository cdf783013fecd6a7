package crypto

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"

	"github.com/weftnet/weft/crypto/internal/bech32"
)

// Errors about devices. Like the other sentinel errors of this package, an
// error returned by this package wraps at most one of these.
var (
	// ErrMalformedDeviceID: a device ID string or byte string is not valid.
	ErrMalformedDeviceID = errors.New("malformed device ID")
	// ErrMalformedDeviceKey: a device secret-key string or seed is not valid.
	ErrMalformedDeviceKey = errors.New("malformed device secret key")
	// ErrBadDeviceCert: a device certificate is malformed, was not signed
	// by the user it names, names another user than expected, or was
	// altered.
	ErrBadDeviceCert = errors.New("bad device certificate")
	// ErrBadRevocation: a device revocation is malformed, its signature or
	// its issuer's certificate does not verify, or it names another user
	// than expected.
	ErrBadRevocation = errors.New("bad device revocation")
	// ErrUnknownDevice: a DeviceSet has no certificate for the device.
	ErrUnknownDevice = errors.New("unknown device")
	// ErrDeviceRevoked: the device has been revoked.
	ErrDeviceRevoked = errors.New("device revoked")
)

const (
	deviceIDHRP  = "weftdev"
	deviceKeyHRP = "WEFT-DEVICE-SECRET-KEY-"
)

// DeviceID identifies one device of a user: it is the device's Ed25519
// public key. Every event is signed by a device; the device's
// [DeviceCert] says which user it belongs to.
//
// Its text form (see [DeviceID.String] and [ParseDeviceID]) is the
// lower-case bech32 encoding of the key with the human-readable part
// "weftdev", for example
//
//	weftdev1...
//
// so that a device ID can never be mistaken for a user ID ("weft1...").
// The same validity rules as for [UserID] apply: a canonical encoding of an
// Ed25519 point not of small order. The zero DeviceID means "no device".
type DeviceID [32]byte

// ParseDeviceID parses a device ID in its text form, "weftdev1..." in lower
// case. Errors wrap [ErrMalformedDeviceID].
func ParseDeviceID(s string) (DeviceID, error) {
	if strings.ContainsFunc(s, func(r rune) bool { return 'A' <= r && r <= 'Z' }) {
		return DeviceID{}, fmt.Errorf("%w: must be lower case", ErrMalformedDeviceID)
	}
	hrp, data, err := bech32.Decode(s)
	if errors.Is(err, bech32.ErrChecksum) {
		return DeviceID{}, fmt.Errorf("%w: checksum mismatch: is there a typo?", ErrMalformedDeviceID)
	}
	if err != nil {
		return DeviceID{}, fmt.Errorf("%w: %v", ErrMalformedDeviceID, err)
	}
	if hrp != deviceIDHRP {
		return DeviceID{}, fmt.Errorf("%w: prefix is %q, want %q", ErrMalformedDeviceID, hrp+"1", deviceIDHRP+"1")
	}
	return DeviceIDFromBytes(data)
}

// DeviceIDFromBytes returns the device ID whose Ed25519 public key is b,
// which must be 32 bytes long, canonical and not of small order. Errors wrap
// [ErrMalformedDeviceID].
func DeviceIDFromBytes(b []byte) (DeviceID, error) {
	if len(b) != len(DeviceID{}) {
		return DeviceID{}, fmt.Errorf("%w: public key is %d bytes, want %d", ErrMalformedDeviceID, len(b), len(DeviceID{}))
	}
	if _, err := decodePoint(b); err != nil {
		return DeviceID{}, asDeviceIDError(err)
	}
	return DeviceID(b), nil
}

// asDeviceIDError turns an error wrapping ErrMalformedUserID from the
// shared point checks into one wrapping ErrMalformedDeviceID.
func asDeviceIDError(err error) error {
	return fmt.Errorf("%w: %s", ErrMalformedDeviceID, strings.TrimPrefix(err.Error(), ErrMalformedUserID.Error()+": "))
}

// String returns the text form of d, "weftdev1..." in lower case.
func (d DeviceID) String() string {
	s, err := bech32.Encode(deviceIDHRP, d[:])
	if err != nil {
		panic("crypto: bech32 encoding of a device ID failed: " + err.Error())
	}
	return s
}

// IsZero reports whether d is the zero DeviceID.
func (d DeviceID) IsZero() bool { return d == DeviceID{} }

// MarshalText implements [encoding.TextMarshaler]: the text form of d, or an
// empty string for the zero DeviceID.
func (d DeviceID) MarshalText() ([]byte, error) {
	if d.IsZero() {
		return []byte{}, nil
	}
	return []byte(d.String()), nil
}

// UnmarshalText implements [encoding.TextUnmarshaler] like [ParseDeviceID],
// except that an empty text sets d to the zero DeviceID. On error d is left
// unchanged.
func (d *DeviceID) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*d = DeviceID{}
		return nil
	}
	v, err := ParseDeviceID(string(text))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// X25519 returns the X25519 public key of the device (the Montgomery form
// of its Ed25519 key), to which thread keys are wrapped by
// [WrapThreadKeyToDevice]. It fails, with an error wrapping
// [ErrMalformedDeviceID], only if d is not a valid public key.
func (d DeviceID) X25519() ([]byte, error) {
	p, err := decodePoint(d[:])
	if err != nil {
		return nil, asDeviceIDError(err)
	}
	return p.BytesMontgomery(), nil
}

// DeviceIdentity is the secret key of one device: an Ed25519 key that signs
// the device's events and revocations, and whose X25519 form unwraps the
// thread keys wrapped to the device. It is generated on the device and never
// leaves it (pairing sends only its [DeviceID]).
//
// Its text form (see [DeviceIdentity.String] and [ParseDeviceIdentity]) is
// the upper-case bech32 encoding of the 32-byte seed with the
// human-readable part "WEFT-DEVICE-SECRET-KEY-". A DeviceIdentity is
// immutable and safe for concurrent use.
type DeviceIdentity struct {
	// k holds the key pair; the key-pair code is shared with Identity,
	// which is what a device key is, used in another role.
	k *Identity
}

// GenerateDeviceIdentity returns a new random DeviceIdentity.
func GenerateDeviceIdentity() (*DeviceIdentity, error) {
	k, err := GenerateIdentity()
	if err != nil {
		return nil, fmt.Errorf("crypto: generating device key: %w", errors.Unwrap(err))
	}
	return &DeviceIdentity{k: k}, nil
}

// NewDeviceIdentityFromSeed returns the DeviceIdentity with the given
// 32-byte Ed25519 seed. Errors wrap [ErrMalformedDeviceKey].
func NewDeviceIdentityFromSeed(seed []byte) (*DeviceIdentity, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: seed is %d bytes, want %d", ErrMalformedDeviceKey, len(seed), ed25519.SeedSize)
	}
	k, err := NewIdentityFromSeed(seed)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedDeviceKey, err)
	}
	return &DeviceIdentity{k: k}, nil
}

// ParseDeviceIdentity parses a device secret key in its text form,
// "WEFT-DEVICE-SECRET-KEY-1..." in upper case. Errors wrap
// [ErrMalformedDeviceKey] and never contain the key.
func ParseDeviceIdentity(s string) (*DeviceIdentity, error) {
	if strings.ContainsFunc(s, func(r rune) bool { return 'a' <= r && r <= 'z' }) {
		return nil, fmt.Errorf("%w: must be upper case", ErrMalformedDeviceKey)
	}
	hrp, data, err := bech32.Decode(s)
	if errors.Is(err, bech32.ErrChecksum) {
		return nil, fmt.Errorf("%w: checksum mismatch: is there a typo?", ErrMalformedDeviceKey)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: not a valid bech32 string", ErrMalformedDeviceKey)
	}
	defer clear(data)
	if hrp != deviceKeyHRP {
		return nil, fmt.Errorf("%w: prefix is not %q", ErrMalformedDeviceKey, deviceKeyHRP+"1")
	}
	return NewDeviceIdentityFromSeed(data)
}

// String returns the text form of the device secret key,
// "WEFT-DEVICE-SECRET-KEY-1..." in upper case. Handle it as the secret it
// is.
func (d *DeviceIdentity) String() string {
	s, err := bech32.Encode(deviceKeyHRP, d.k.seed[:])
	if err != nil {
		panic("crypto: bech32 encoding of a device key failed: " + err.Error())
	}
	return s
}

// DeviceID returns the public device ID of d.
func (d *DeviceIdentity) DeviceID() DeviceID { return DeviceID(d.k.userID) }

// Seed returns a copy of the 32-byte Ed25519 seed of d.
func (d *DeviceIdentity) Seed() []byte { return d.k.Seed() }

// Sign signs msg in the given domain exactly as [Identity.Sign] does, with
// the device key. Verify with [VerifyDevice].
func (d *DeviceIdentity) Sign(domain string, msg []byte) []byte { return d.k.Sign(domain, msg) }

// VerifyDevice checks that sig is a signature of msg in the given domain by
// the device dev, as made by [DeviceIdentity.Sign]. Errors wrap
// [ErrBadSignature]. It does not check that the device is certified or not
// revoked: that is the job of a [DeviceSet].
func VerifyDevice(dev DeviceID, domain string, msg, sig []byte) error {
	if len(sig) != SignatureSize {
		return fmt.Errorf("%w: signature is %d bytes, want %d", ErrBadSignature, len(sig), SignatureSize)
	}
	if strings.IndexByte(domain, 0) >= 0 {
		return fmt.Errorf("%w: signature domain contains a zero byte", ErrBadSignature)
	}
	if err := checkVerifyKey(dev[:]); err != nil {
		return fmt.Errorf("%w: signer %v", ErrBadSignature, asDeviceIDError(err))
	}
	if !ed25519.Verify(ed25519.PublicKey(dev[:]), signedMessage(domain, msg), sig) {
		return fmt.Errorf("%w: verification failed for %v in domain %q", ErrBadSignature, dev, domain)
	}
	return nil
}

// WrapThreadKeyToDevice is [WrapThreadKey] with a device as the recipient:
// the same HPKE construction and info string, to the X25519 form of the
// device key. Only the [DeviceIdentity] of to can unwrap the result. An
// invalid device ID gives an error wrapping [ErrMalformedDeviceID].
func WrapThreadKeyToDevice(to DeviceID, binding [32]byte, epoch uint32, key ThreadKey) ([]byte, error) {
	if _, err := to.X25519(); err != nil {
		return nil, err
	}
	return WrapThreadKey(UserID(to), binding, epoch, key)
}

// UnwrapThreadKey decrypts a thread key wrapped to d by
// [WrapThreadKeyToDevice]. Errors wrap [ErrUnwrap].
func (d *DeviceIdentity) UnwrapThreadKey(binding [32]byte, epoch uint32, wrapped []byte) (ThreadKey, error) {
	k, err := d.k.UnwrapThreadKey(binding, epoch, wrapped)
	if err != nil {
		return ThreadKey{}, fmt.Errorf("%w: not wrapped to device %v for this binding and epoch, or altered", ErrUnwrap, d.DeviceID())
	}
	return k, nil
}
