package crypto

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
)

// DeviceSet is what a replica knows about the devices of one user: the
// certificates and revocations it has seen, in any order. It answers
// whether a device is currently a device of the user.
//
// The answer depends only on the set of certificates and revocations added,
// never on the order in which they were added, so every replica that has
// seen the same records agrees. The rules are:
//
//   - A device is known if the set has a valid certificate for it; its
//     current certificate is the one with the highest generation (then the
//     latest creation time, then the smallest encoding).
//   - A revocation signed by the user key revokes the device for good.
//   - A revocation signed by a device D revokes the device X if the
//     generation of D's certificate (the one carried in the revocation) is
//     at least the generation of X's current certificate. Revocations are
//     sticky: a revocation signed by D still counts after D itself is
//     revoked, since replicas cannot agree on which came first.
//
// Generations exist for the stolen-device case: a thief holding a device
// can revoke the user's other devices, and nothing can order its
// revocations after its own. The user, with the user key, then revokes the
// thief's device and certifies the remaining devices again with a higher
// generation, which the thief's revocations (of a lower generation) no
// longer reach. In normal use every certificate has the same generation
// ([DeviceSet.Generation]) and any device can revoke any other.
//
// A DeviceSet is safe for concurrent use. The zero DeviceSet is not usable:
// use [NewDeviceSet].
type DeviceSet struct {
	user UserID

	mu      sync.Mutex
	certs   map[DeviceID]*DeviceCert
	revoked map[DeviceID]*revocationState
}

type revocationState struct {
	byUser bool
	// maxIssuerGen is the highest generation of a device that revoked the
	// device; valid if byDevice.
	byDevice     bool
	maxIssuerGen uint32
	first        *DeviceRevocation // earliest by creation time, for display
}

// NewDeviceSet returns an empty DeviceSet for the user u.
func NewDeviceSet(u UserID) *DeviceSet {
	return &DeviceSet{user: u, certs: make(map[DeviceID]*DeviceCert), revoked: make(map[DeviceID]*revocationState)}
}

// User returns the user of s.
func (s *DeviceSet) User() UserID { return s.user }

// AddCert verifies c and adds it to s. Adding a certificate s already has,
// or one superseded by a certificate of a higher generation, is not an
// error. Errors wrap [ErrBadDeviceCert].
func (s *DeviceSet) AddCert(c *DeviceCert) error {
	if err := c.Verify(s.user); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addCertLocked(c)
	return nil
}

func (s *DeviceSet) addCertLocked(c *DeviceCert) {
	old, ok := s.certs[c.device]
	if !ok || certLess(old, c) {
		s.certs[c.device] = c
	}
}

// certLess orders certificates of one device: the greatest is current.
func certLess(a, b *DeviceCert) bool {
	if a.generation != b.generation {
		return a.generation < b.generation
	}
	if a.created != b.created {
		return a.created < b.created
	}
	return bytes.Compare(a.Bytes(), b.Bytes()) > 0
}

// AddRevocation verifies r and adds it to s, together with the issuer's
// certificate it carries. Errors wrap [ErrBadRevocation].
func (s *DeviceSet) AddRevocation(r *DeviceRevocation) error {
	if err := r.Verify(s.user); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.issuer != nil {
		s.addCertLocked(r.issuer)
	}
	st := s.revoked[r.device]
	if st == nil {
		st = &revocationState{}
		s.revoked[r.device] = st
	}
	if r.issuer == nil {
		st.byUser = true
	} else if !st.byDevice || r.issuer.generation > st.maxIssuerGen {
		st.byDevice = true
		st.maxIssuerGen = r.issuer.generation
	}
	if st.first == nil || r.created < st.first.created ||
		(r.created == st.first.created && bytes.Compare(r.Bytes(), st.first.Bytes()) < 0) {
		st.first = r
	}
	return nil
}

// Status returns the current certificate of the device d and nil if d is an
// active device of the user. Otherwise it returns an error wrapping
// [ErrUnknownDevice] (no certificate) or [ErrDeviceRevoked] (along with the
// certificate).
func (s *DeviceSet) Status(d DeviceID) (*DeviceCert, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.certs[d]
	if !ok {
		return nil, fmt.Errorf("%w: %v is not a certified device of %v", ErrUnknownDevice, d, s.user)
	}
	if s.isRevokedLocked(c) {
		return c, fmt.Errorf("%w: %v of %v", ErrDeviceRevoked, d, s.user)
	}
	return c, nil
}

func (s *DeviceSet) isRevokedLocked(c *DeviceCert) bool {
	st := s.revoked[c.device]
	return st != nil && (st.byUser || (st.byDevice && st.maxIssuerGen >= c.generation))
}

// Revocation returns the earliest revocation of d that s has, if any,
// whether or not it takes effect.
func (s *DeviceSet) Revocation(d DeviceID) (*DeviceRevocation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.revoked[d]
	if st == nil {
		return nil, false
	}
	return st.first, true
}

// Active returns the current certificates of the active devices, sorted by
// creation time then device ID.
func (s *DeviceSet) Active() []*DeviceCert {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*DeviceCert
	for _, c := range s.certs {
		if !s.isRevokedLocked(c) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b *DeviceCert) int {
		if a.created != b.created {
			if a.created < b.created {
				return -1
			}
			return 1
		}
		return bytes.Compare(a.device[:], b.device[:])
	})
	return out
}

// Generation returns the highest generation among the certificates in s
// (0 if none): the generation to give new certificates.
func (s *DeviceSet) Generation() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var g uint32
	for _, c := range s.certs {
		g = max(g, c.generation)
	}
	return g
}
