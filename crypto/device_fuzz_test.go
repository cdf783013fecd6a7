package crypto

import (
	"bytes"
	"errors"
	"testing"
)

func FuzzParseDeviceID(f *testing.F) {
	v := readDeviceVectors(f)
	for _, d := range v.Devices {
		f.Add(d.DeviceID)
		f.Add(d.SecretKey)
	}
	for _, iv := range v.InvalidDeviceIDs {
		f.Add(iv.Input)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDeviceID(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedDeviceID) || !d.IsZero() {
				t.Fatalf("ParseDeviceID(%q) = %v, %v", s, d, err)
			}
			return
		}
		if d.String() != s {
			t.Fatalf("ParseDeviceID(%q).String() = %q", s, d.String())
		}
		if _, err := d.X25519(); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzDeviceIDFromBytes(f *testing.F) {
	v := readDeviceVectors(f)
	for _, d := range v.Devices {
		f.Add([]byte(d.Ed25519Public))
	}
	f.Add(make([]byte, 32))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DeviceIDFromBytes(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedDeviceID) {
				t.Fatalf("DeviceIDFromBytes(%x) = %v", b, err)
			}
			return
		}
		if !bytes.Equal(d[:], b) {
			t.Fatal("DeviceIDFromBytes changed the bytes")
		}
		if back, err := ParseDeviceID(d.String()); err != nil || back != d {
			t.Fatalf("ParseDeviceID(String()) = %v, %v", back, err)
		}
	})
}

func FuzzParseDeviceIdentity(f *testing.F) {
	v := readDeviceVectors(f)
	for _, d := range v.Devices {
		f.Add(d.SecretKey)
		f.Add(d.DeviceID)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDeviceIdentity(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedDeviceKey) || d != nil {
				t.Fatalf("ParseDeviceIdentity(%q) = %v", s, err)
			}
			return
		}
		if d.String() != s {
			t.Fatalf("ParseDeviceIdentity(%q).String() = %q", s, d.String())
		}
	})
}

// FuzzParseDeviceCert checks that the parser never panics, fails only with
// ErrBadDeviceCert, and that whatever parses encodes back to the same bytes.
func FuzzParseDeviceCert(f *testing.F) {
	v := readDeviceVectors(f)
	for _, c := range v.Certs {
		f.Add([]byte(c.Cert))
	}
	for _, iv := range v.InvalidCerts {
		f.Add([]byte(iv.Input))
	}
	user := v.Certs[0].User
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseDeviceCert(b)
		if err != nil {
			if !errors.Is(err, ErrBadDeviceCert) || c != nil {
				t.Fatalf("ParseDeviceCert(%x) = %v", b, err)
			}
			return
		}
		if !bytes.Equal(c.Bytes(), b) {
			t.Fatalf("ParseDeviceCert(%x).Bytes() = %x", b, c.Bytes())
		}
		u, _ := ParseUserID(user)
		if err := c.Verify(u); err != nil && !errors.Is(err, ErrBadDeviceCert) {
			t.Fatalf("Verify = %v", err)
		}
	})
}

func FuzzParseDeviceRevocation(f *testing.F) {
	v := readDeviceVectors(f)
	for _, r := range v.Revocations {
		f.Add([]byte(r.Revocation))
	}
	for _, iv := range v.InvalidRevocations {
		f.Add([]byte(iv.Input))
	}
	user := v.Revocations[0].User
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseDeviceRevocation(b)
		if err != nil {
			if !errors.Is(err, ErrBadRevocation) || r != nil {
				t.Fatalf("ParseDeviceRevocation(%x) = %v", b, err)
			}
			return
		}
		if !bytes.Equal(r.Bytes(), b) {
			t.Fatalf("ParseDeviceRevocation(%x).Bytes() = %x", b, r.Bytes())
		}
		u, _ := ParseUserID(user)
		if err := r.Verify(u); err != nil && !errors.Is(err, ErrBadRevocation) {
			t.Fatalf("Verify = %v", err)
		}
	})
}
