package crypto

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Signature domains of device certificates and revocations.
const (
	deviceCertDomain = "device-cert"
	revocationDomain = "device-revocation"
)

const (
	deviceCertVersion = 1
	revocationVersion = 1

	// MaxDeviceNameSize is the maximum length in bytes of a device name.
	MaxDeviceNameSize = 64

	// maxUnixTime is 9999-12-31T23:59:59Z, so that every time in a
	// certificate has an RFC 3339 form.
	maxUnixTime = 253402300799

	certFixedSize = 1 + 32 + 32 + 4 + 8 + 1 // before the name
	// MaxDeviceCertSize is the size of a certificate with the longest name.
	MaxDeviceCertSize = certFixedSize + MaxDeviceNameSize + SignatureSize

	revocationFixedSize = 1 + 32 + 32 + 8 + 1 // before the issuer
)

// Issuer kinds in a revocation.
const (
	issuerUser   = 0
	issuerDevice = 1
)

// DeviceCert certifies, with a signature by the user key, that a device key
// belongs to the user. Every replica checks the certificate of the device
// that signed an event before accepting it.
//
// A certificate binds the user ID, the device ID, a creation time (whole
// seconds), a short device name for display and a generation (see
// [DeviceSet] for its role in revocation). Its binary form, returned by
// [DeviceCert.Bytes] and parsed by [ParseDeviceCert], is canonical:
//
//	version     1 byte, 1
//	user        32 bytes, the user's Ed25519 public key
//	device      32 bytes, the device's Ed25519 public key
//	generation  4 bytes, uint32 big endian
//	created     8 bytes, Unix time in seconds, int64 big endian, in
//	            [0, 253402300799]
//	name_len    1 byte, at most 64
//	name        name_len bytes of UTF-8 without control characters
//	signature   64 bytes, by the user key over all the bytes above, in
//	            the signature domain "device-cert" (see [Identity.Sign])
//
// A DeviceCert is immutable. One returned by [ParseDeviceCert] is well
// formed but not yet verified: call [DeviceCert.Verify].
type DeviceCert struct {
	user       UserID
	device     DeviceID
	generation uint32
	created    int64
	name       string
	sig        [SignatureSize]byte
}

// CertifyDevice returns a certificate, signed by id, that the device dev
// belongs to the user of id. created is rounded down to whole seconds. The
// device must not be the user key itself. Errors wrap [ErrBadDeviceCert].
func (id *Identity) CertifyDevice(dev DeviceID, name string, created time.Time, generation uint32) (*DeviceCert, error) {
	c := &DeviceCert{user: id.UserID(), device: dev, generation: generation, created: created.Unix(), name: name}
	if err := c.checkFields(); err != nil {
		return nil, err
	}
	if _, err := DeviceIDFromBytes(dev[:]); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadDeviceCert, err)
	}
	copy(c.sig[:], id.Sign(deviceCertDomain, c.signed()))
	return c, nil
}

// checkFields checks the rules of the format that do not involve
// signatures or curve points.
func (c *DeviceCert) checkFields() error {
	if err := checkDeviceName(c.name); err != nil {
		return fmt.Errorf("%w: %v", ErrBadDeviceCert, err)
	}
	if c.created < 0 || c.created > maxUnixTime {
		return fmt.Errorf("%w: creation time %d out of range", ErrBadDeviceCert, c.created)
	}
	if c.device == DeviceID(c.user) {
		return fmt.Errorf("%w: the device key is the user key", ErrBadDeviceCert)
	}
	return nil
}

func checkDeviceName(name string) error {
	if len(name) > MaxDeviceNameSize {
		return fmt.Errorf("device name is %d bytes, want at most %d", len(name), MaxDeviceNameSize)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("device name is not valid UTF-8")
	}
	if i := strings.IndexFunc(name, unicode.IsControl); i >= 0 {
		return fmt.Errorf("device name contains a control character at byte %d", i)
	}
	return nil
}

// signed returns the bytes covered by the signature.
func (c *DeviceCert) signed() []byte {
	b := make([]byte, 0, certFixedSize+len(c.name)+SignatureSize)
	b = append(b, deviceCertVersion)
	b = append(b, c.user[:]...)
	b = append(b, c.device[:]...)
	b = binary.BigEndian.AppendUint32(b, c.generation)
	b = binary.BigEndian.AppendUint64(b, uint64(c.created))
	b = append(b, byte(len(c.name)))
	return append(b, c.name...)
}

// Bytes returns the canonical binary form of c.
func (c *DeviceCert) Bytes() []byte { return append(c.signed(), c.sig[:]...) }

// ParseDeviceCert parses the binary form of a certificate. It checks the
// format (version, lengths, name, time range, no trailing bytes) and that
// both keys are valid public keys, but not the signature: call
// [DeviceCert.Verify]. Errors wrap [ErrBadDeviceCert].
func ParseDeviceCert(b []byte) (*DeviceCert, error) {
	c, rest, err := parseDeviceCertPrefix(b)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadDeviceCert, len(rest))
	}
	return c, nil
}

// parseDeviceCertPrefix parses a certificate at the start of b and returns
// the bytes after it.
func parseDeviceCertPrefix(b []byte) (*DeviceCert, []byte, error) {
	if len(b) < 1 {
		return nil, nil, fmt.Errorf("%w: empty", ErrBadDeviceCert)
	}
	if b[0] != deviceCertVersion {
		return nil, nil, fmt.Errorf("%w: unknown version %d", ErrBadDeviceCert, b[0])
	}
	if len(b) < certFixedSize {
		return nil, nil, fmt.Errorf("%w: truncated (%d bytes)", ErrBadDeviceCert, len(b))
	}
	n := int(b[certFixedSize-1])
	if len(b) < certFixedSize+n+SignatureSize {
		return nil, nil, fmt.Errorf("%w: truncated (%d bytes, want %d)", ErrBadDeviceCert, len(b), certFixedSize+n+SignatureSize)
	}
	c := &DeviceCert{
		user:       UserID(b[1:33]),
		device:     DeviceID(b[33:65]),
		generation: binary.BigEndian.Uint32(b[65:69]),
		created:    int64(binary.BigEndian.Uint64(b[69:77])),
		name:       string(b[certFixedSize : certFixedSize+n]),
		sig:        [SignatureSize]byte(b[certFixedSize+n : certFixedSize+n+SignatureSize]),
	}
	if err := c.checkFields(); err != nil {
		return nil, nil, err
	}
	if _, err := UserIDFromBytes(c.user[:]); err != nil {
		return nil, nil, fmt.Errorf("%w: user: %v", ErrBadDeviceCert, err)
	}
	if _, err := DeviceIDFromBytes(c.device[:]); err != nil {
		return nil, nil, fmt.Errorf("%w: device: %v", ErrBadDeviceCert, err)
	}
	return c, b[certFixedSize+n+SignatureSize:], nil
}

// Verify checks that c was signed by the user u and certifies a device of
// u. Errors wrap [ErrBadDeviceCert]: the certificate is for another user,
// or its signature does not verify (it was altered or forged).
func (c *DeviceCert) Verify(u UserID) error {
	if c.user != u {
		return fmt.Errorf("%w: certificate is for user %v, not %v", ErrBadDeviceCert, c.user, u)
	}
	if err := c.checkFields(); err != nil {
		return err
	}
	if err := Verify(u, deviceCertDomain, c.signed(), c.sig[:]); err != nil {
		return fmt.Errorf("%w: signature of user %v does not verify", ErrBadDeviceCert, u)
	}
	return nil
}

// User returns the user the certificate is for.
func (c *DeviceCert) User() UserID { return c.user }

// Device returns the certified device.
func (c *DeviceCert) Device() DeviceID { return c.device }

// Name returns the device name, for display only.
func (c *DeviceCert) Name() string { return c.name }

// Created returns the creation time of the certificate, in UTC.
func (c *DeviceCert) Created() time.Time { return time.Unix(c.created, 0).UTC() }

// Generation returns the generation of the certificate.
func (c *DeviceCert) Generation() uint32 { return c.generation }

// Equal reports whether c and o are the same certificate.
func (c *DeviceCert) Equal(o *DeviceCert) bool { return bytes.Equal(c.Bytes(), o.Bytes()) }

// DeviceRevocation says that a device no longer belongs to a user: replicas
// reject the device's later events and thread keys are no longer wrapped to
// it. It is signed either by the user key or by another certified device of
// the same user (so that a lost phone can be revoked from the laptop even
// when the user key is not on the laptop); in the second case it carries
// the issuing device's certificate, so that it can be verified on its own.
// A device may also revoke itself.
//
// Its binary form, returned by [DeviceRevocation.Bytes] and parsed by
// [ParseDeviceRevocation], is canonical:
//
//	version      1 byte, 1
//	user         32 bytes
//	device       32 bytes, the revoked device
//	created      8 bytes, Unix time in seconds, as in DeviceCert
//	issuer_kind  1 byte: 0 = signed by the user key,
//	                     1 = signed by a device of the user
//	if issuer_kind is 1:
//	  cert_len   2 bytes, uint16 big endian
//	  cert       cert_len bytes, the issuer's DeviceCert
//	signature    64 bytes, by the issuer over all the bytes above, in the
//	             signature domain "device-revocation"
//
// A DeviceRevocation is immutable. One returned by [ParseDeviceRevocation]
// is well formed but not yet verified: call [DeviceRevocation.Verify].
type DeviceRevocation struct {
	user    UserID
	device  DeviceID
	created int64
	issuer  *DeviceCert // nil if signed by the user key
	sig     [SignatureSize]byte
}

// RevokeDevice returns a revocation of the device dev, signed by the user
// key id. Errors wrap [ErrBadRevocation].
func (id *Identity) RevokeDevice(dev DeviceID, created time.Time) (*DeviceRevocation, error) {
	r := &DeviceRevocation{user: id.UserID(), device: dev, created: created.Unix()}
	if err := r.checkFields(); err != nil {
		return nil, err
	}
	copy(r.sig[:], id.Sign(revocationDomain, r.signed()))
	return r, nil
}

// RevokeDevice returns a revocation of the device dev signed by d, whose
// own certificate is own. Errors wrap [ErrBadRevocation], also if own is
// not the certificate of d.
func (d *DeviceIdentity) RevokeDevice(own *DeviceCert, dev DeviceID, created time.Time) (*DeviceRevocation, error) {
	if own == nil || own.Device() != d.DeviceID() {
		return nil, fmt.Errorf("%w: the issuer certificate is not the certificate of device %v", ErrBadRevocation, d.DeviceID())
	}
	r := &DeviceRevocation{user: own.User(), device: dev, created: created.Unix(), issuer: own}
	if err := r.checkFields(); err != nil {
		return nil, err
	}
	copy(r.sig[:], d.Sign(revocationDomain, r.signed()))
	return r, nil
}

func (r *DeviceRevocation) checkFields() error {
	if r.created < 0 || r.created > maxUnixTime {
		return fmt.Errorf("%w: creation time %d out of range", ErrBadRevocation, r.created)
	}
	if _, err := DeviceIDFromBytes(r.device[:]); err != nil {
		return fmt.Errorf("%w: device: %v", ErrBadRevocation, err)
	}
	if r.issuer != nil && r.issuer.User() != r.user {
		return fmt.Errorf("%w: issuer certificate is for user %v, not %v", ErrBadRevocation, r.issuer.User(), r.user)
	}
	return nil
}

func (r *DeviceRevocation) signed() []byte {
	b := make([]byte, 0, revocationFixedSize+2+MaxDeviceCertSize+SignatureSize)
	b = append(b, revocationVersion)
	b = append(b, r.user[:]...)
	b = append(b, r.device[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.created))
	if r.issuer == nil {
		return append(b, issuerUser)
	}
	b = append(b, issuerDevice)
	cert := r.issuer.Bytes()
	b = binary.BigEndian.AppendUint16(b, uint16(len(cert)))
	return append(b, cert...)
}

// Bytes returns the canonical binary form of r.
func (r *DeviceRevocation) Bytes() []byte { return append(r.signed(), r.sig[:]...) }

// ParseDeviceRevocation parses the binary form of a revocation, checking its
// format (including that of the issuer certificate) but no signature: call
// [DeviceRevocation.Verify]. Errors wrap [ErrBadRevocation].
func ParseDeviceRevocation(b []byte) (*DeviceRevocation, error) {
	if len(b) < 1 {
		return nil, fmt.Errorf("%w: empty", ErrBadRevocation)
	}
	if b[0] != revocationVersion {
		return nil, fmt.Errorf("%w: unknown version %d", ErrBadRevocation, b[0])
	}
	if len(b) < revocationFixedSize {
		return nil, fmt.Errorf("%w: truncated (%d bytes)", ErrBadRevocation, len(b))
	}
	r := &DeviceRevocation{
		user:    UserID(b[1:33]),
		device:  DeviceID(b[33:65]),
		created: int64(binary.BigEndian.Uint64(b[65:73])),
	}
	if _, err := UserIDFromBytes(r.user[:]); err != nil {
		return nil, fmt.Errorf("%w: user: %v", ErrBadRevocation, err)
	}
	rest := b[revocationFixedSize:]
	switch kind := b[revocationFixedSize-1]; kind {
	case issuerUser:
	case issuerDevice:
		if len(rest) < 2 {
			return nil, fmt.Errorf("%w: truncated issuer certificate", ErrBadRevocation)
		}
		n := int(binary.BigEndian.Uint16(rest))
		rest = rest[2:]
		if len(rest) < n {
			return nil, fmt.Errorf("%w: truncated issuer certificate", ErrBadRevocation)
		}
		cert, err := ParseDeviceCert(rest[:n])
		if err != nil {
			return nil, fmt.Errorf("%w: issuer: %v", ErrBadRevocation, err)
		}
		r.issuer = cert
		rest = rest[n:]
	default:
		return nil, fmt.Errorf("%w: unknown issuer kind %d", ErrBadRevocation, kind)
	}
	if len(rest) < SignatureSize {
		return nil, fmt.Errorf("%w: truncated signature", ErrBadRevocation)
	}
	if len(rest) > SignatureSize {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadRevocation, len(rest)-SignatureSize)
	}
	r.sig = [SignatureSize]byte(rest)
	if err := r.checkFields(); err != nil {
		return nil, err
	}
	return r, nil
}

// Verify checks that r revokes a device of the user u and was signed by u,
// or by a device of u whose certificate (carried in r) verifies. Errors wrap
// [ErrBadRevocation]. Whether the revocation takes effect also depends on
// the generations involved: see [DeviceSet].
func (r *DeviceRevocation) Verify(u UserID) error {
	if r.user != u {
		return fmt.Errorf("%w: revocation is for user %v, not %v", ErrBadRevocation, r.user, u)
	}
	if err := r.checkFields(); err != nil {
		return err
	}
	if r.issuer == nil {
		if err := Verify(u, revocationDomain, r.signed(), r.sig[:]); err != nil {
			return fmt.Errorf("%w: signature of user %v does not verify", ErrBadRevocation, u)
		}
		return nil
	}
	if err := r.issuer.Verify(u); err != nil {
		return fmt.Errorf("%w: issuer: %v", ErrBadRevocation, err)
	}
	if err := VerifyDevice(r.issuer.Device(), revocationDomain, r.signed(), r.sig[:]); err != nil {
		return fmt.Errorf("%w: signature of device %v does not verify", ErrBadRevocation, r.issuer.Device())
	}
	return nil
}

// User returns the user whose device is revoked.
func (r *DeviceRevocation) User() UserID { return r.user }

// Device returns the revoked device.
func (r *DeviceRevocation) Device() DeviceID { return r.device }

// Created returns the time the revocation was made, in UTC.
func (r *DeviceRevocation) Created() time.Time { return time.Unix(r.created, 0).UTC() }

// Issuer returns the certificate of the device that signed r, or nil if r
// was signed by the user key.
func (r *DeviceRevocation) Issuer() *DeviceCert { return r.issuer }
