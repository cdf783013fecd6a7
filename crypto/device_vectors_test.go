package crypto

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

const deviceVectorsFile = "testdata/devices.json"

type deviceVectors struct {
	Comment            []string              `json:"comment"`
	Devices            []deviceKeyVector     `json:"devices"`
	Certs              []certVector          `json:"certs"`
	Revocations        []revocationVector    `json:"revocations"`
	InvalidCerts       []invalidBytesVector  `json:"invalid_certs"`
	InvalidRevocations []invalidBytesVector  `json:"invalid_revocations"`
	InvalidDeviceIDs   []invalidStringVector `json:"invalid_device_ids"`
}

type deviceKeyVector struct {
	Seed          hexBytes `json:"seed"`
	Ed25519Public hexBytes `json:"ed25519_public"`
	DeviceID      string   `json:"device_id"`
	SecretKey     string   `json:"secret_key"`
	X25519Public  hexBytes `json:"x25519_public"`
}

type certVector struct {
	UserSeed   hexBytes `json:"user_seed"`
	User       string   `json:"user"`
	Device     string   `json:"device"`
	Name       string   `json:"name"`
	Created    int64    `json:"created"`
	Generation uint32   `json:"generation"`
	Cert       hexBytes `json:"cert"`
}

type revocationVector struct {
	User string `json:"user"`
	// SignerSeed is the seed of the user key, or of the issuing device
	// if IssuerCert is set.
	SignerSeed hexBytes `json:"signer_seed"`
	IssuerCert hexBytes `json:"issuer_cert,omitempty"`
	Device     string   `json:"device"`
	Created    int64    `json:"created"`
	Revocation hexBytes `json:"revocation"`
}

// invalidBytesVector is an input that must be rejected, by the parser or,
// if Parses, by Verify for the user VerifyAs.
type invalidBytesVector struct {
	Input         hexBytes `json:"input"`
	Reason        string   `json:"reason"`
	Parses        bool     `json:"parses"`
	VerifyAs      string   `json:"verify_as,omitempty"`
	ErrorContains string   `json:"error_contains"`
}

// Fixed inputs: the user is the RFC 8032 key of vectorSeeds; devices have
// their own seeds.
var deviceSeeds = [][]byte{seq(0x40, 32), seq(0x80, 32), bytes.Repeat([]byte{0x77}, 32)}

const vectorTime = 1767225600 // 2026-01-01T00:00:00Z

func mustDevice(t testing.TB, seed []byte) *DeviceIdentity {
	t.Helper()
	d, err := NewDeviceIdentityFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mustUser(t testing.TB, seed []byte) *Identity {
	t.Helper()
	id, err := NewIdentityFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// forgeCert builds a certificate with arbitrary fields, bypassing the
// checks of CertifyDevice, signed by signer.
func forgeCert(signer *Identity, c DeviceCert) []byte {
	copy(c.sig[:], signer.Sign(deviceCertDomain, c.signed()))
	return c.Bytes()
}

func generateDeviceVectors(t *testing.T) *deviceVectors {
	t.Helper()
	v := &deviceVectors{Comment: []string{
		"Device vectors for github.com/weftnet/weft/crypto. Byte strings are hex.",
		"Regenerate with: go test ./crypto -run TestVectors -update",
		"Formats: see DeviceCert and DeviceRevocation in the package documentation.",
		"Certificates are signed by the user key in domain \"device-cert\", revocations in \"device-revocation\"",
		"  (Ed25519 over \"weft-sig-v1\" 0x00 domain 0x00 message).",
		"invalid_*: parses=false means the parser rejects the input; otherwise Verify(verify_as) does.",
	}}
	user := mustUser(t, rfc8032Seed)
	other := mustUser(t, vectorSeeds[1])
	devs := make([]*DeviceIdentity, len(deviceSeeds))
	for i, seed := range deviceSeeds {
		d := mustDevice(t, seed)
		devs[i] = d
		id := d.DeviceID()
		x, err := id.X25519()
		if err != nil {
			t.Fatal(err)
		}
		v.Devices = append(v.Devices, deviceKeyVector{seed, id[:], id.String(), d.String(), x})
	}

	certInputs := []struct {
		dev        int
		name       string
		created    int64
		generation uint32
	}{
		{0, "laptop", vectorTime, 0},
		{1, "Téléphone de Zoë 📱", vectorTime + 3600, 0},
		{2, "", 0, 7},
		{0, strings.Repeat("x", MaxDeviceNameSize), maxUnixTime, 0xffffffff},
	}
	var certs []*DeviceCert
	for _, in := range certInputs {
		c, err := user.CertifyDevice(devs[in.dev].DeviceID(), in.name, time.Unix(in.created, 0), in.generation)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
		v.Certs = append(v.Certs, certVector{rfc8032Seed, user.UserID().String(), devs[in.dev].DeviceID().String(),
			in.name, in.created, in.generation, c.Bytes()})
	}

	// Revocations: by the user key, and by device 0 (with certificate 0)
	// of device 1.
	r1, err := user.RevokeDevice(devs[1].DeviceID(), time.Unix(vectorTime+7200, 0))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := devs[0].RevokeDevice(certs[0], devs[1].DeviceID(), time.Unix(vectorTime+7200, 0))
	if err != nil {
		t.Fatal(err)
	}
	r3, err := devs[2].RevokeDevice(certs[2], devs[2].DeviceID(), time.Unix(vectorTime, 0))
	if err != nil {
		t.Fatal(err)
	}
	v.Revocations = []revocationVector{
		{user.UserID().String(), rfc8032Seed, nil, devs[1].DeviceID().String(), vectorTime + 7200, r1.Bytes()},
		{user.UserID().String(), deviceSeeds[0], certs[0].Bytes(), devs[1].DeviceID().String(), vectorTime + 7200, r2.Bytes()},
		{user.UserID().String(), deviceSeeds[2], certs[2].Bytes(), devs[2].DeviceID().String(), vectorTime, r3.Bytes()},
	}

	u := user.UserID().String()
	good := certs[0].Bytes()
	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 1; return b }
	withByte := func(b []byte, i int, x byte) []byte { b = bytes.Clone(b); b[i] = x; return b }
	otherCert, err := other.CertifyDevice(devs[0].DeviceID(), "laptop", time.Unix(vectorTime, 0), 0)
	if err != nil {
		t.Fatal(err)
	}
	// A certificate of the user key itself as a device.
	selfCert := forgeCert(user, DeviceCert{user: user.UserID(), device: DeviceID(user.UserID()), created: vectorTime})
	// A name with a control character and one that is not UTF-8.
	ctrlName := forgeCert(user, DeviceCert{user: user.UserID(), device: devs[0].DeviceID(), created: vectorTime, name: "a\nb"})
	badUTF8 := forgeCert(user, DeviceCert{user: user.UserID(), device: devs[0].DeviceID(), created: vectorTime, name: "\xff"})
	negTime := forgeCert(user, DeviceCert{user: user.UserID(), device: devs[0].DeviceID(), created: -1})
	smallOrder := forgeCert(user, DeviceCert{user: user.UserID(), device: DeviceID(mustHex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")), created: vectorTime})
	v.InvalidCerts = []invalidBytesVector{
		{nil, "empty", false, "", "empty"},
		{good[:len(good)-1], "truncated signature", false, "", "truncated"},
		{good[:certFixedSize-1], "truncated header", false, "", "truncated"},
		{append(bytes.Clone(good), 0), "trailing byte", false, "", "trailing"},
		{withByte(good, 0, 2), "unknown version", false, "", "unknown version"},
		{withByte(good, certFixedSize-1, MaxDeviceNameSize+1), "name too long", false, "", "truncated"},
		{selfCert, "device key is the user key", false, "", "device key is the user key"},
		{ctrlName, "control character in name", false, "", "control character"},
		{badUTF8, "name not UTF-8", false, "", "not valid UTF-8"},
		{negTime, "creation time before 1970", false, "", "out of range"},
		{smallOrder, "device key of small order", false, "", "small order"},
		{flip(good, certFixedSize), "name altered", true, u, "does not verify"},
		{flip(good, 65), "generation altered", true, u, "does not verify"},
		{flip(good, len(good)-1), "signature altered", true, u, "does not verify"},
		{otherCert.Bytes(), "signed by another user", true, u, "is for user"},
		{good, "verified as another user", true, other.UserID().String(), "is for user"},
	}
	rgood := r2.Bytes()
	otherRev, err := other.RevokeDevice(devs[1].DeviceID(), time.Unix(vectorTime, 0))
	if err != nil {
		t.Fatal(err)
	}
	// Device 0 signing a revocation that carries the certificate of
	// device 2: the signature does not match the issuer.
	wrongIssuer := DeviceRevocation{user: user.UserID(), device: devs[1].DeviceID(), created: vectorTime, issuer: certs[2]}
	copy(wrongIssuer.sig[:], devs[0].Sign(revocationDomain, wrongIssuer.signed()))
	// An issuer certificate that was altered (and so does not verify).
	badIssuerCert, err := ParseDeviceCert(flip(certs[0].Bytes(), certFixedSize))
	if err != nil {
		t.Fatal(err)
	}
	badIssuer := DeviceRevocation{user: user.UserID(), device: devs[1].DeviceID(), created: vectorTime, issuer: badIssuerCert}
	copy(badIssuer.sig[:], devs[0].Sign(revocationDomain, badIssuer.signed()))
	v.InvalidRevocations = []invalidBytesVector{
		{nil, "empty", false, "", "empty"},
		{rgood[:len(rgood)-1], "truncated signature", false, "", "truncated signature"},
		{rgood[:revocationFixedSize+1], "truncated issuer", false, "", "truncated issuer"},
		{append(bytes.Clone(rgood), 0), "trailing byte", false, "", "trailing"},
		{withByte(rgood, 0, 0), "unknown version", false, "", "unknown version"},
		{withByte(rgood, revocationFixedSize-1, 2), "unknown issuer kind", false, "", "unknown issuer kind"},
		{withByte(rgood, revocationFixedSize+2, 9), "issuer certificate malformed", false, "", "issuer"},
		{flip(rgood, 40), "revoked device altered", true, u, "does not verify"},
		{flip(rgood, len(rgood)-1), "signature altered", true, u, "does not verify"},
		{flip(r1.Bytes(), 70), "user-signed, time altered", true, u, "does not verify"},
		{otherRev.Bytes(), "revocation by another user", true, u, "is for user"},
		{wrongIssuer.Bytes(), "signed by a device other than the issuer", true, u, "does not verify"},
		{badIssuer.Bytes(), "issuer certificate does not verify", true, u, "issuer"},
	}

	valid := devs[0].DeviceID().String()
	v.InvalidDeviceIDs = []invalidStringVector{
		{typo(valid, 12), "one-character typo", "checksum mismatch"},
		{strings.ToUpper(valid), "upper case", "lower case"},
		{user.UserID().String(), "a user ID", "prefix"},
		{mustEncode(t, "weftdev", make([]byte, 31)), "31 bytes", "31 bytes"},
		{mustEncode(t, "weftdev", mustHex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")), "point of order 8", "small order"},
		{"", "empty", "malformed device ID"},
	}
	return v
}

func readDeviceVectors(t testing.TB) *deviceVectors {
	t.Helper()
	b, err := os.ReadFile(deviceVectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var v deviceVectors
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: %v", deviceVectorsFile, err)
	}
	if len(v.Devices) == 0 || len(v.Certs) == 0 || len(v.Revocations) == 0 || len(v.InvalidCerts) == 0 ||
		len(v.InvalidRevocations) == 0 || len(v.InvalidDeviceIDs) == 0 {
		t.Fatalf("%s: a section is empty", deviceVectorsFile)
	}
	return &v
}

// TestVectorsDevices checks that the generator still produces the committed
// file (and rewrites it with -update).
func TestVectorsDevices(t *testing.T) {
	want := generateDeviceVectors(t)
	b, err := json.MarshalIndent(want, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	if *update {
		if err := os.WriteFile(deviceVectorsFile, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", deviceVectorsFile)
	}
	got, err := os.ReadFile(deviceVectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, b) {
		t.Errorf("%s differs from the generated vectors; run go test ./crypto -run TestVectors -update and review the diff", deviceVectorsFile)
	}
}

// TestVectorsDevicesFile checks the committed vectors directly, as another
// implementation would.
func TestVectorsDevicesFile(t *testing.T) {
	v := readDeviceVectors(t)
	for _, dv := range v.Devices {
		d := mustDevice(t, dv.Seed)
		id := d.DeviceID()
		if !bytes.Equal(id[:], dv.Ed25519Public) || id.String() != dv.DeviceID || d.String() != dv.SecretKey {
			t.Errorf("seed %x: got %x %s %s", dv.Seed, id[:], id, d)
		}
		if p, err := ParseDeviceID(dv.DeviceID); err != nil || p != id {
			t.Errorf("ParseDeviceID(%s) = %v, %v", dv.DeviceID, p, err)
		}
		if p, err := ParseDeviceIdentity(dv.SecretKey); err != nil || p.DeviceID() != id {
			t.Errorf("ParseDeviceIdentity(%s) failed: %v", dv.SecretKey, err)
		}
		if x, err := id.X25519(); err != nil || !bytes.Equal(x, dv.X25519Public) {
			t.Errorf("X25519 = %x, %v; want %x", x, err, dv.X25519Public)
		}
	}
	for _, cv := range v.Certs {
		user := mustUser(t, cv.UserSeed)
		if user.UserID().String() != cv.User {
			t.Fatalf("user %s, want %s", user.UserID(), cv.User)
		}
		c, err := ParseDeviceCert(cv.Cert)
		if err != nil {
			t.Errorf("ParseDeviceCert(%x): %v", cv.Cert, err)
			continue
		}
		if !bytes.Equal(c.Bytes(), cv.Cert) {
			t.Errorf("Bytes() = %x, want %x", c.Bytes(), cv.Cert)
		}
		if err := c.Verify(user.UserID()); err != nil {
			t.Errorf("Verify: %v", err)
		}
		if c.User() != user.UserID() || c.Device().String() != cv.Device || c.Name() != cv.Name ||
			c.Created().Unix() != cv.Created || c.Generation() != cv.Generation {
			t.Errorf("fields of %x differ from %+v", cv.Cert, cv)
		}
		dev, _ := ParseDeviceID(cv.Device)
		again, err := user.CertifyDevice(dev, cv.Name, time.Unix(cv.Created, 0), cv.Generation)
		if err != nil || !bytes.Equal(again.Bytes(), cv.Cert) {
			t.Errorf("CertifyDevice = %x, %v; want %x", again.Bytes(), err, cv.Cert)
		}
	}
	for _, rv := range v.Revocations {
		u, _ := ParseUserID(rv.User)
		r, err := ParseDeviceRevocation(rv.Revocation)
		if err != nil {
			t.Errorf("ParseDeviceRevocation(%x): %v", rv.Revocation, err)
			continue
		}
		if !bytes.Equal(r.Bytes(), rv.Revocation) {
			t.Errorf("Bytes() = %x, want %x", r.Bytes(), rv.Revocation)
		}
		if err := r.Verify(u); err != nil {
			t.Errorf("Verify: %v", err)
		}
		if r.Device().String() != rv.Device || r.Created().Unix() != rv.Created || r.User() != u {
			t.Errorf("fields of %x differ from %+v", rv.Revocation, rv)
		}
		var again *DeviceRevocation
		dev, _ := ParseDeviceID(rv.Device)
		if rv.IssuerCert == nil {
			if r.Issuer() != nil {
				t.Errorf("issuer %v, want the user key", r.Issuer().Device())
			}
			again, err = mustUser(t, rv.SignerSeed).RevokeDevice(dev, time.Unix(rv.Created, 0))
		} else {
			if r.Issuer() == nil || !bytes.Equal(r.Issuer().Bytes(), rv.IssuerCert) {
				t.Errorf("issuer certificate differs")
			}
			ic, err := ParseDeviceCert(rv.IssuerCert)
			if err != nil {
				t.Fatal(err)
			}
			again, err = mustDevice(t, rv.SignerSeed).RevokeDevice(ic, dev, time.Unix(rv.Created, 0))
			if err != nil {
				t.Fatal(err)
			}
		}
		if err != nil || !bytes.Equal(again.Bytes(), rv.Revocation) {
			t.Errorf("RevokeDevice = %x, %v; want %x", again.Bytes(), err, rv.Revocation)
		}
	}
	for _, iv := range v.InvalidCerts {
		c, err := ParseDeviceCert(iv.Input)
		if !iv.Parses {
			if err == nil || !errors.Is(err, ErrBadDeviceCert) || !strings.Contains(err.Error(), iv.ErrorContains) {
				t.Errorf("%s: ParseDeviceCert = %v, want ErrBadDeviceCert mentioning %q", iv.Reason, err, iv.ErrorContains)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: ParseDeviceCert = %v, want success", iv.Reason, err)
			continue
		}
		u, _ := ParseUserID(iv.VerifyAs)
		if err := c.Verify(u); err == nil || !errors.Is(err, ErrBadDeviceCert) || !strings.Contains(err.Error(), iv.ErrorContains) {
			t.Errorf("%s: Verify = %v, want ErrBadDeviceCert mentioning %q", iv.Reason, err, iv.ErrorContains)
		}
	}
	for _, iv := range v.InvalidRevocations {
		r, err := ParseDeviceRevocation(iv.Input)
		if !iv.Parses {
			if err == nil || !errors.Is(err, ErrBadRevocation) || !strings.Contains(err.Error(), iv.ErrorContains) {
				t.Errorf("%s: ParseDeviceRevocation = %v, want ErrBadRevocation mentioning %q", iv.Reason, err, iv.ErrorContains)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: ParseDeviceRevocation = %v, want success", iv.Reason, err)
			continue
		}
		u, _ := ParseUserID(iv.VerifyAs)
		if err := r.Verify(u); err == nil || !errors.Is(err, ErrBadRevocation) || !strings.Contains(err.Error(), iv.ErrorContains) {
			t.Errorf("%s: Verify = %v, want ErrBadRevocation mentioning %q", iv.Reason, err, iv.ErrorContains)
		}
	}
	for _, iv := range v.InvalidDeviceIDs {
		_, err := ParseDeviceID(iv.Input)
		if err == nil || !errors.Is(err, ErrMalformedDeviceID) || !strings.Contains(err.Error(), iv.ErrorContains) {
			t.Errorf("%s: ParseDeviceID(%q) = %v, want ErrMalformedDeviceID mentioning %q", iv.Reason, iv.Input, err, iv.ErrorContains)
		}
	}
}
