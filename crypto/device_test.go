package crypto

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

type deviceFixture struct {
	user, other *Identity
	devs        []*DeviceIdentity
	certs       []*DeviceCert
}

func newDeviceFixture(t *testing.T) *deviceFixture {
	t.Helper()
	f := &deviceFixture{user: mustUser(t, rfc8032Seed), other: mustUser(t, vectorSeeds[1])}
	for i, seed := range deviceSeeds {
		d := mustDevice(t, seed)
		c, err := f.user.CertifyDevice(d.DeviceID(), "dev", time.Unix(vectorTime+int64(i), 0), 0)
		if err != nil {
			t.Fatal(err)
		}
		f.devs = append(f.devs, d)
		f.certs = append(f.certs, c)
	}
	return f
}

func TestDeviceIDText(t *testing.T) {
	d, err := GenerateDeviceIdentity()
	if err != nil {
		t.Fatal(err)
	}
	id := d.DeviceID()
	text, err := id.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	var back DeviceID
	if err := back.UnmarshalText(text); err != nil || back != id {
		t.Fatalf("UnmarshalText(%s) = %v, %v", text, back, err)
	}
	if err := back.UnmarshalText([]byte("weft1xyz")); err == nil || back != id {
		t.Fatal("UnmarshalText of garbage changed the value or succeeded")
	}
	if err := back.UnmarshalText(nil); err != nil || !back.IsZero() {
		t.Fatal("empty text is not the zero DeviceID")
	}
	if z, _ := (DeviceID{}).MarshalText(); len(z) != 0 {
		t.Fatal("zero DeviceID marshals to non-empty text")
	}
	if _, err := (DeviceID{}).X25519(); !errors.Is(err, ErrMalformedDeviceID) {
		t.Fatalf("zero X25519: %v", err)
	}
	if k, err := ParseDeviceIdentity(d.String()); err != nil || !bytes.Equal(k.Seed(), d.Seed()) {
		t.Fatalf("ParseDeviceIdentity: %v", err)
	}
	// A user secret key is not a device secret key, and vice versa.
	u := mustUser(t, rfc8032Seed)
	if _, err := ParseDeviceIdentity(u.String()); !errors.Is(err, ErrMalformedDeviceKey) {
		t.Fatalf("ParseDeviceIdentity(user key) = %v", err)
	}
	if _, err := ParseIdentity(d.String()); !errors.Is(err, ErrMalformedIdentity) {
		t.Fatalf("ParseIdentity(device key) = %v", err)
	}
	if _, err := NewDeviceIdentityFromSeed(make([]byte, 31)); !errors.Is(err, ErrMalformedDeviceKey) {
		t.Fatalf("31-byte seed: %v", err)
	}
}

func TestDeviceSignAndWrap(t *testing.T) {
	f := newDeviceFixture(t)
	d := f.devs[0]
	sig := d.Sign("event", []byte("m"))
	if err := VerifyDevice(d.DeviceID(), "event", []byte("m"), sig); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		VerifyDevice(d.DeviceID(), "event", []byte("n"), sig),
		VerifyDevice(d.DeviceID(), "other", []byte("m"), sig),
		VerifyDevice(f.devs[1].DeviceID(), "event", []byte("m"), sig),
		VerifyDevice(d.DeviceID(), "event", []byte("m"), sig[:63]),
		VerifyDevice(DeviceID{}, "event", []byte("m"), sig),
		VerifyDevice(d.DeviceID(), "ev\x00ent", []byte("m"), sig),
	} {
		if !errors.Is(err, ErrBadSignature) {
			t.Errorf("VerifyDevice = %v, want ErrBadSignature", err)
		}
	}

	var binding [32]byte
	key, _ := NewThreadKey()
	w, err := WrapThreadKeyToDevice(d.DeviceID(), binding, 3, key)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := d.UnwrapThreadKey(binding, 3, w); err != nil || got != key {
		t.Fatalf("UnwrapThreadKey = %v", err)
	}
	if _, err := f.devs[1].UnwrapThreadKey(binding, 3, w); !errors.Is(err, ErrUnwrap) {
		t.Fatalf("other device unwrapped: %v", err)
	}
	// The user key does not open what was wrapped to its devices.
	if _, err := f.user.UnwrapThreadKey(binding, 3, w); !errors.Is(err, ErrUnwrap) {
		t.Fatalf("user key unwrapped a device's key: %v", err)
	}
	if _, err := WrapThreadKeyToDevice(DeviceID{}, binding, 3, key); !errors.Is(err, ErrMalformedDeviceID) {
		t.Fatalf("wrap to zero device: %v", err)
	}
}

// TestDeviceCertEveryTruncationAndFlip checks that no prefix of a
// certificate or revocation parses, and that flipping any bit makes it fail
// to parse or to verify.
func TestDeviceCertEveryTruncationAndFlip(t *testing.T) {
	f := newDeviceFixture(t)
	r, err := f.devs[0].RevokeDevice(f.certs[0], f.devs[1].DeviceID(), time.Unix(vectorTime, 0))
	if err != nil {
		t.Fatal(err)
	}
	u := f.user.UserID()
	cb, rb := f.certs[0].Bytes(), r.Bytes()
	for n := range len(cb) {
		if _, err := ParseDeviceCert(cb[:n]); !errors.Is(err, ErrBadDeviceCert) {
			t.Fatalf("cert truncated to %d: %v", n, err)
		}
	}
	for n := range len(rb) {
		if _, err := ParseDeviceRevocation(rb[:n]); !errors.Is(err, ErrBadRevocation) {
			t.Fatalf("revocation truncated to %d: %v", n, err)
		}
	}
	for i := range len(cb) * 8 {
		b := bytes.Clone(cb)
		b[i/8] ^= 1 << (i % 8)
		c, err := ParseDeviceCert(b)
		if err == nil {
			err = c.Verify(u)
		}
		if !errors.Is(err, ErrBadDeviceCert) {
			t.Fatalf("cert with bit %d flipped: %v", i, err)
		}
	}
	for i := range len(rb) * 8 {
		b := bytes.Clone(rb)
		b[i/8] ^= 1 << (i % 8)
		r, err := ParseDeviceRevocation(b)
		if err == nil {
			err = r.Verify(u)
		}
		if !errors.Is(err, ErrBadRevocation) {
			t.Fatalf("revocation with bit %d flipped: %v", i, err)
		}
	}
}

func TestCertifyDeviceErrors(t *testing.T) {
	f := newDeviceFixture(t)
	d := f.devs[0].DeviceID()
	now := time.Unix(vectorTime, 0)
	for name, err := range map[string]error{
		"long name": func() error {
			_, err := f.user.CertifyDevice(d, string(make([]byte, MaxDeviceNameSize+1)), now, 0)
			return err
		}(),
		"control": func() error { _, err := f.user.CertifyDevice(d, "a\tb", now, 0); return err }(),
		"self": func() error {
			_, err := f.user.CertifyDevice(DeviceID(f.user.UserID()), "me", now, 0)
			return err
		}(),
		"zero device": func() error { _, err := f.user.CertifyDevice(DeviceID{}, "x", now, 0); return err }(),
		"before 1970": func() error { _, err := f.user.CertifyDevice(d, "x", time.Unix(-1, 0), 0); return err }(),
	} {
		if !errors.Is(err, ErrBadDeviceCert) {
			t.Errorf("%s: %v, want ErrBadDeviceCert", name, err)
		}
	}
	if _, err := f.devs[0].RevokeDevice(f.certs[1], d, now); !errors.Is(err, ErrBadRevocation) {
		t.Errorf("revocation with another device's certificate: %v", err)
	}
	if _, err := f.devs[0].RevokeDevice(nil, d, now); !errors.Is(err, ErrBadRevocation) {
		t.Errorf("revocation without a certificate: %v", err)
	}
	if _, err := f.user.RevokeDevice(DeviceID{}, now); !errors.Is(err, ErrBadRevocation) {
		t.Errorf("revocation of the zero device: %v", err)
	}
	// Created is rounded down to seconds.
	c, err := f.user.CertifyDevice(d, "x", time.Unix(vectorTime, 999999999), 0)
	if err != nil || c.Created() != time.Unix(vectorTime, 0).UTC() {
		t.Errorf("Created = %v, %v", c.Created(), err)
	}
}

func status(s *DeviceSet, d DeviceID) error {
	_, err := s.Status(d)
	return err
}

func TestDeviceSet(t *testing.T) {
	f := newDeviceFixture(t)
	now := time.Unix(vectorTime+100, 0)
	s := NewDeviceSet(f.user.UserID())
	if err := status(s, f.devs[0].DeviceID()); !errors.Is(err, ErrUnknownDevice) {
		t.Fatalf("empty set: %v", err)
	}
	for _, c := range f.certs {
		if err := s.AddCert(c); err != nil {
			t.Fatal(err)
		}
	}
	otherCert, _ := f.other.CertifyDevice(f.devs[0].DeviceID(), "x", now, 0)
	if err := s.AddCert(otherCert); !errors.Is(err, ErrBadDeviceCert) {
		t.Fatalf("cert of another user accepted: %v", err)
	}
	if n := len(s.Active()); n != 3 {
		t.Fatalf("%d active devices, want 3", n)
	}

	// Device 0 revokes device 1: device 1 is revoked, 0 and 2 keep working.
	r, _ := f.devs[0].RevokeDevice(f.certs[0], f.devs[1].DeviceID(), now)
	if err := s.AddRevocation(r); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Status(f.devs[1].DeviceID()); !errors.Is(err, ErrDeviceRevoked) || c == nil {
		t.Fatalf("revoked device: %v", err)
	}
	if err := status(s, f.devs[0].DeviceID()); err != nil {
		t.Fatal(err)
	}
	if got, ok := s.Revocation(f.devs[1].DeviceID()); !ok || got != r {
		t.Fatal("Revocation not recorded")
	}
	if n := len(s.Active()); n != 2 {
		t.Fatalf("%d active devices, want 2", n)
	}
	otherRev, _ := f.other.RevokeDevice(f.devs[0].DeviceID(), now)
	if err := s.AddRevocation(otherRev); !errors.Is(err, ErrBadRevocation) {
		t.Fatalf("revocation by another user accepted: %v", err)
	}
	if err := status(s, f.devs[0].DeviceID()); err != nil {
		t.Fatal(err)
	}
}

// TestDeviceSetStolenDevice plays the stolen-device scenario: the thief's
// device revokes the others; the user key revokes the thief and
// re-certifies the others with a higher generation, which the thief can no
// longer revoke.
func TestDeviceSetStolenDevice(t *testing.T) {
	f := newDeviceFixture(t)
	now := time.Unix(vectorTime+100, 0)
	laptop, phone, thief := 0, 1, 2
	id := func(i int) DeviceID { return f.devs[i].DeviceID() }
	s := NewDeviceSet(f.user.UserID())
	for _, c := range f.certs {
		s.AddCert(c)
	}
	tr1, _ := f.devs[thief].RevokeDevice(f.certs[thief], id(laptop), now)
	s.AddRevocation(tr1)
	if err := status(s, id(laptop)); !errors.Is(err, ErrDeviceRevoked) {
		t.Fatalf("laptop: %v", err)
	}

	ur, _ := f.user.RevokeDevice(id(thief), now)
	s.AddRevocation(ur)
	g := s.Generation() + 1
	for _, i := range []int{laptop, phone} {
		c, err := f.user.CertifyDevice(id(i), "again", now, g)
		if err != nil {
			t.Fatal(err)
		}
		s.AddCert(c)
	}
	if err := status(s, id(laptop)); err != nil {
		t.Fatalf("re-certified laptop: %v", err)
	}
	// The thief's later (or earlier: it cannot be told) revocations of
	// the new generation do not take effect.
	tr2, _ := f.devs[thief].RevokeDevice(f.certs[thief], id(phone), now)
	s.AddRevocation(tr2)
	if err := status(s, id(phone)); err != nil {
		t.Fatalf("phone revoked by the revoked thief: %v", err)
	}
	if err := status(s, id(thief)); !errors.Is(err, ErrDeviceRevoked) {
		t.Fatalf("thief: %v", err)
	}
	// A user revocation is final, even against a newer certificate.
	c, _ := f.user.CertifyDevice(id(thief), "back", now, g+1)
	s.AddCert(c)
	if err := status(s, id(thief)); !errors.Is(err, ErrDeviceRevoked) {
		t.Fatalf("thief re-certified: %v", err)
	}
	// Devices of the new generation can still revoke each other.
	lc, _ := s.Status(id(laptop))
	lr, _ := f.devs[laptop].RevokeDevice(lc, id(phone), now)
	s.AddRevocation(lr)
	if err := status(s, id(phone)); !errors.Is(err, ErrDeviceRevoked) {
		t.Fatalf("phone after laptop revoked it: %v", err)
	}
}

// TestDeviceSetOrderIndependent adds the same records in many orders and
// checks that every order gives the same answers.
func TestDeviceSetOrderIndependent(t *testing.T) {
	f := newDeviceFixture(t)
	now := time.Unix(vectorTime+100, 0)
	recert, _ := f.user.CertifyDevice(f.devs[0].DeviceID(), "laptop v2", now, 1)
	r01, _ := f.devs[0].RevokeDevice(f.certs[0], f.devs[1].DeviceID(), now)
	r20, _ := f.devs[2].RevokeDevice(f.certs[2], f.devs[0].DeviceID(), now)
	ru2, _ := f.user.RevokeDevice(f.devs[2].DeviceID(), now)
	self1, _ := f.devs[1].RevokeDevice(f.certs[1], f.devs[1].DeviceID(), now)
	records := []any{f.certs[0], f.certs[1], f.certs[2], recert, r01, r20, ru2, self1}

	answer := func(order []int) string {
		s := NewDeviceSet(f.user.UserID())
		for _, i := range order {
			var err error
			switch r := records[i].(type) {
			case *DeviceCert:
				err = s.AddCert(r)
			case *DeviceRevocation:
				err = s.AddRevocation(r)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		var out []byte
		for _, d := range f.devs {
			c, err := s.Status(d.DeviceID())
			out = append(out, byte('0'+btoi(err == nil)))
			if c != nil {
				out = append(out, c.Bytes()...)
			}
		}
		return string(out)
	}
	order := make([]int, len(records))
	for i := range order {
		order[i] = i
	}
	want := answer(order)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		if got := answer(order); got != want {
			t.Fatalf("order %v gives a different answer", order)
		}
	}
	// Expected: device 0 active (re-certified at generation 1, so device
	// 2's revocation at generation 0 does not reach it); 1 and 2 revoked.
	s := NewDeviceSet(f.user.UserID())
	for _, r := range records {
		switch r := r.(type) {
		case *DeviceCert:
			s.AddCert(r)
		case *DeviceRevocation:
			s.AddRevocation(r)
		}
	}
	if c, err := s.Status(f.devs[0].DeviceID()); err != nil || c.Name() != "laptop v2" {
		t.Errorf("device 0: %v", err)
	}
	for _, i := range []int{1, 2} {
		if err := status(s, f.devs[i].DeviceID()); !errors.Is(err, ErrDeviceRevoked) {
			t.Errorf("device %d: %v", i, err)
		}
	}
	if s.Generation() != 1 {
		t.Errorf("Generation = %d, want 1", s.Generation())
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
