package crypto

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
)

func TestIdentityRoundTrip(t *testing.T) {
	for range 50 {
		id, err := GenerateIdentity()
		if err != nil {
			t.Fatal(err)
		}
		s := id.String()
		if !strings.HasPrefix(s, "WEFT-SECRET-KEY-1") || s != strings.ToUpper(s) {
			t.Fatalf("String() = %q, want upper-case WEFT-SECRET-KEY-1...", s)
		}
		got, err := ParseIdentity(s)
		if err != nil {
			t.Fatalf("ParseIdentity: %v", err)
		}
		if got.UserID() != id.UserID() || !bytes.Equal(got.Seed(), id.Seed()) || !bytes.Equal(got.X25519(), id.X25519()) {
			t.Fatal("ParseIdentity(String()) is a different identity")
		}
		got, err = NewIdentityFromSeed(id.Seed())
		if err != nil || got.String() != s {
			t.Fatalf("NewIdentityFromSeed(Seed()) = %v, %v", got, err)
		}
	}
}

func TestIdentityCopies(t *testing.T) {
	seed := bytes.Clone(rfc8032Seed)
	id, err := NewIdentityFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	u := id.UserID()
	seed[0] ^= 1
	if !bytes.Equal(id.Seed(), rfc8032Seed) {
		t.Error("NewIdentityFromSeed aliases its input")
	}
	id.Seed()[0] ^= 1
	id.X25519()[0] ^= 1
	if !bytes.Equal(id.Seed(), rfc8032Seed) {
		t.Error("Seed() does not return a copy")
	}
	if id2, _ := NewIdentityFromSeed(rfc8032Seed); !bytes.Equal(id.X25519(), id2.X25519()) || id.UserID() != u {
		t.Error("X25519() does not return a copy")
	}
}

func TestIdentityRejects(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := NewIdentityFromSeed(make([]byte, n)); !errors.Is(err, ErrMalformedIdentity) {
			t.Errorf("NewIdentityFromSeed(%d bytes) = %v, want ErrMalformedIdentity", n, err)
		}
	}
	id, err := NewIdentityFromSeed(rfc8032Seed)
	if err != nil {
		t.Fatal(err)
	}
	s := id.String()
	cases := []string{
		"",
		strings.ToLower(s),
		s[:20] + strings.ToLower(s[20:21]) + s[21:],
		s + " ",
		" " + s,
		s + "\n",
		id.UserID().String(),
		strings.Replace(s, "WEFT-", "AGE-", 1),
		typo(s, 30),
		typo(s, len(s)-1),
	}
	for i := range s {
		cases = append(cases, s[:i])
	}
	for _, in := range cases {
		_, err := ParseIdentity(in)
		if !errors.Is(err, ErrMalformedIdentity) {
			t.Errorf("ParseIdentity(%q) = %v, want ErrMalformedIdentity", in, err)
			continue
		}
		// The secret must not leak into error messages.
		if len(in) > 30 && strings.Contains(strings.ToUpper(err.Error()), strings.ToUpper(in[17:30])) {
			t.Errorf("error %q contains key material", err)
		}
	}
	_, err = ParseIdentity(typo(s, 30))
	if err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("ParseIdentity(typo) = %v, want a message about the checksum", err)
	}
}

func TestSignVerify(t *testing.T) {
	id, err := NewIdentityFromSeed(rfc8032Seed)
	if err != nil {
		t.Fatal(err)
	}
	other, err := GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("the event header")
	sig := id.Sign("event", msg)
	if len(sig) != SignatureSize {
		t.Fatalf("signature is %d bytes, want %d", len(sig), SignatureSize)
	}
	if err := Verify(id.UserID(), "event", msg, sig); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !bytes.Equal(sig, id.Sign("event", msg)) {
		t.Error("signatures are not deterministic")
	}

	// The signed message is the documented domain-separated encoding.
	raw := []byte("weft-sig-v1\x00event\x00the event header")
	pub := id.UserID()
	if !ed25519.Verify(ed25519.PublicKey(pub[:]), raw, sig) {
		t.Error("signature is not over \"weft-sig-v1\\x00\" + domain + \"\\x00\" + msg")
	}

	bad := func(name string, u UserID, domain string, msg, sig []byte) {
		t.Helper()
		if err := Verify(u, domain, msg, sig); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: Verify = %v, want ErrBadSignature", name, err)
		}
	}
	bad("wrong domain", id.UserID(), "invite", msg, sig)
	bad("empty domain", id.UserID(), "", msg, sig)
	bad("domain/message boundary", id.UserID(), "event\x00the", []byte(" event header"), sig)
	bad("wrong message", id.UserID(), "event", []byte("the event headeR"), sig)
	bad("empty message", id.UserID(), "event", nil, sig)
	bad("wrong key", other.UserID(), "event", msg, sig)
	bad("zero key", UserID{}, "event", msg, sig)
	bad("nil sig", id.UserID(), "event", msg, nil)
	bad("short sig", id.UserID(), "event", msg, sig[:SignatureSize-1])
	bad("long sig", id.UserID(), "event", msg, append(bytes.Clone(sig), 0))
	for i := range len(sig) * 8 {
		flipped := bytes.Clone(sig)
		flipped[i/8] ^= 1 << (i % 8)
		bad("flipped bit", id.UserID(), "event", msg, flipped)
	}
	for i := range len(msg) * 8 {
		flipped := bytes.Clone(msg)
		flipped[i/8] ^= 1 << (i % 8)
		bad("flipped message bit", id.UserID(), "event", flipped, sig)
	}
}

func TestSignDomainWithZeroBytePanics(t *testing.T) {
	id, err := GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Error("Sign with a zero byte in the domain did not panic")
		}
	}()
	id.Sign("ev\x00ent", nil)
}

func TestSignEmptyDomain(t *testing.T) {
	id, err := GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	sig := id.Sign("", []byte("x"))
	if err := Verify(id.UserID(), "", []byte("x"), sig); err != nil {
		t.Error(err)
	}
}
