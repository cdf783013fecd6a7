package crypto

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
)

func TestUserIDRoundTrip(t *testing.T) {
	for range 50 {
		id, err := GenerateIdentity()
		if err != nil {
			t.Fatal(err)
		}
		u := id.UserID()
		s := u.String()
		if !strings.HasPrefix(s, "weft1") || s != strings.ToLower(s) {
			t.Fatalf("String() = %q, want lower-case weft1...", s)
		}
		got, err := ParseUserID(s)
		if err != nil {
			t.Fatalf("ParseUserID(%q): %v", s, err)
		}
		if got != u {
			t.Fatalf("ParseUserID(%q) = %x, want %x", s, got, u)
		}
		got, err = UserIDFromBytes(u[:])
		if err != nil || got != u {
			t.Fatalf("UserIDFromBytes(%x) = %x, %v", u[:], got, err)
		}
		if u.IsZero() {
			t.Fatal("IsZero() of a real user ID")
		}
	}
}

func TestUserIDTypo(t *testing.T) {
	id, err := NewIdentityFromSeed(rfc8032Seed)
	if err != nil {
		t.Fatal(err)
	}
	s := id.UserID().String()
	// Every single-character substitution within the alphabet, anywhere
	// after the separator, is caught by the checksum.
	const charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
	for i := len("weft1"); i < len(s); i++ {
		for _, c := range []byte(charset) {
			if c == s[i] {
				continue
			}
			bad := s[:i] + string(c) + s[i+1:]
			_, err := ParseUserID(bad)
			if !errors.Is(err, ErrMalformedUserID) {
				t.Fatalf("ParseUserID(%q) = %v, want ErrMalformedUserID", bad, err)
			}
			if !strings.Contains(err.Error(), "checksum") {
				t.Fatalf("ParseUserID(%q) = %q, want a message about the checksum", bad, err)
			}
		}
	}
	// Characters outside the alphabet are rejected too.
	for _, c := range "1bio-_ /" {
		bad := s[:20] + string(c) + s[21:]
		if _, err := ParseUserID(bad); !errors.Is(err, ErrMalformedUserID) {
			t.Errorf("ParseUserID(%q) = %v, want ErrMalformedUserID", bad, err)
		}
	}
}

func TestUserIDRejects(t *testing.T) {
	id, err := NewIdentityFromSeed(rfc8032Seed)
	if err != nil {
		t.Fatal(err)
	}
	u := id.UserID()
	s := u.String()
	cases := map[string]string{
		"upper":      strings.ToUpper(s),
		"mixed":      s[:10] + strings.ToUpper(s[10:11]) + s[11:],
		"space":      s + " ",
		"tab":        "\t" + s,
		"wrong hrp":  mustEncode(t, "age", u[:]),
		"no hrp":     s[4:],
		"empty":      "",
		"short data": mustEncode(t, "weft", u[:16]),
		"long data":  mustEncode(t, "weft", append(u[:], u[:]...)),
		"double":     s + s,
	}
	for i := 0; i < len(s); i++ {
		cases["truncated to "+string(rune('0'+i/10))+string(rune('0'+i%10))] = s[:i]
	}
	for name, in := range cases {
		if got, err := ParseUserID(in); !errors.Is(err, ErrMalformedUserID) {
			t.Errorf("%s: ParseUserID(%q) = %v, %v; want ErrMalformedUserID", name, in, got, err)
		}
	}
}

func TestUserIDFromBytes(t *testing.T) {
	for _, n := range []int{0, 1, 31, 33, 64} {
		if _, err := UserIDFromBytes(make([]byte, n)); !errors.Is(err, ErrMalformedUserID) {
			t.Errorf("UserIDFromBytes(%d bytes) = %v, want ErrMalformedUserID", n, err)
		}
	}
	// Find byte strings that are not points: about half of all y
	// coordinates are not on the curve.
	found := 0
	for i := range 64 {
		b := bytes.Repeat([]byte{byte(i)}, 32)
		b[31] &= 0x7f
		_, err := UserIDFromBytes(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedUserID) {
				t.Fatalf("UserIDFromBytes(%x) = %v, want ErrMalformedUserID", b, err)
			}
			found++
		}
	}
	if found == 0 {
		t.Error("no invalid point found")
	}
	// The identity point is rejected.
	one := make([]byte, 32)
	one[0] = 1
	if _, err := UserIDFromBytes(one); !errors.Is(err, ErrMalformedUserID) {
		t.Errorf("identity point accepted: %v", err)
	}
	// The input is copied.
	id, _ := NewIdentityFromSeed(rfc8032Seed)
	b := id.UserID()
	buf := slices.Clone(b[:])
	u, err := UserIDFromBytes(buf)
	if err != nil {
		t.Fatal(err)
	}
	buf[0] ^= 1
	if u != b {
		t.Error("UserIDFromBytes aliases its input")
	}
}

func TestUserIDText(t *testing.T) {
	id, err := NewIdentityFromSeed(rfc8032Seed)
	if err != nil {
		t.Fatal(err)
	}
	type doc struct {
		Author UserID   `json:"author"`
		Other  UserID   `json:"other"`
		List   []UserID `json:"list"`
	}
	in := doc{Author: id.UserID(), List: []UserID{id.UserID()}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"author":"` + id.UserID().String() + `","other":"","list":["` + id.UserID().String() + `"]}`
	if string(b) != want {
		t.Errorf("json.Marshal = %s, want %s", b, want)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Author != in.Author || !out.Other.IsZero() || len(out.List) != 1 || out.List[0] != in.Author {
		t.Errorf("round trip: got %+v, want %+v", out, in)
	}
	bad := strings.Replace(want, "weft1", "weft1q", 1)
	if err := json.Unmarshal([]byte(bad), &out); !errors.Is(err, ErrMalformedUserID) {
		t.Errorf("json.Unmarshal of a bad user ID: %v, want ErrMalformedUserID", err)
	}
	u := id.UserID()
	if err := u.UnmarshalText([]byte("weft1garbage")); err == nil || u != id.UserID() {
		t.Errorf("UnmarshalText of garbage: err %v, changed receiver: %v", err, u != id.UserID())
	}
}

func TestUserIDZero(t *testing.T) {
	var u UserID
	if !u.IsZero() {
		t.Error("IsZero() = false for the zero UserID")
	}
	if _, err := u.X25519(); !errors.Is(err, ErrMalformedUserID) {
		t.Errorf("zero UserID X25519() = %v, want ErrMalformedUserID", err)
	}
	if _, err := ParseUserID(u.String()); !errors.Is(err, ErrMalformedUserID) {
		t.Errorf("ParseUserID(zero) = %v, want ErrMalformedUserID", err)
	}
}

// TestX25519Conversion checks that the X25519 keys derived from an identity
// match: the public key of Identity.X25519 is UserID.X25519, and the latter
// is the birational map u = (1 + y) / (1 - y) of the Ed25519 point,
// computed here independently with math/big.
func TestX25519Conversion(t *testing.T) {
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	seeds := append([][]byte{}, vectorSeeds...)
	for range 20 {
		id, err := GenerateIdentity()
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, id.Seed())
	}
	for _, seed := range seeds {
		id, err := NewIdentityFromSeed(seed)
		if err != nil {
			t.Fatal(err)
		}
		upub, err := id.UserID().X25519()
		if err != nil {
			t.Fatal(err)
		}
		priv, err := ecdh.X25519().NewPrivateKey(id.X25519())
		if err != nil {
			t.Fatal(err)
		}
		if got := priv.PublicKey().Bytes(); !bytes.Equal(got, upub) {
			t.Errorf("seed %x: X25519(identity.X25519(), basepoint) = %x, userID.X25519() = %x", seed, got, upub)
		}

		// Independent computation of the Montgomery u-coordinate.
		pub := id.UserID()
		le := slices.Clone(pub[:])
		le[31] &= 0x7f
		slices.Reverse(le)
		y := new(big.Int).SetBytes(le)
		num := new(big.Int).Add(big.NewInt(1), y)
		den := new(big.Int).Sub(big.NewInt(1), y)
		den.Mod(den, p)
		den.ModInverse(den, p)
		uu := num.Mul(num, den)
		uu.Mod(uu, p)
		want := make([]byte, 32)
		uu.FillBytes(want)
		slices.Reverse(want)
		if !bytes.Equal(upub, want) {
			t.Errorf("seed %x: UserID.X25519() = %x, want %x", seed, upub, want)
		}

		// The X25519 scalar is the clamped Ed25519 scalar: check the clamping.
		x := id.X25519()
		if x[0]&7 != 0 || x[31]&0x80 != 0 || x[31]&0x40 == 0 {
			t.Errorf("seed %x: X25519 scalar %x is not clamped", seed, x)
		}
		// And both parties of a key agreement get the same secret.
		other, _ := ecdh.X25519().GenerateKey(nil)
		opub, _ := ecdh.X25519().NewPublicKey(upub)
		s1, err := other.ECDH(opub)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := priv.ECDH(other.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(s1, s2) {
			t.Errorf("seed %x: ECDH secrets differ", seed)
		}
	}
}

func TestRFC8032PublicKey(t *testing.T) {
	id, err := NewIdentityFromSeed(rfc8032Seed)
	if err != nil {
		t.Fatal(err)
	}
	want := mustHex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
	u := id.UserID()
	if !bytes.Equal(u[:], want) {
		t.Errorf("public key %x, want %x (RFC 8032 TEST 1)", u[:], want)
	}
	if !bytes.Equal(u[:], ed25519.NewKeyFromSeed(rfc8032Seed).Public().(ed25519.PublicKey)) {
		t.Error("public key differs from crypto/ed25519")
	}
}
