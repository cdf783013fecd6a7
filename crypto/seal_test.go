package crypto

import (
	"bytes"
	"errors"
	"testing"
)

// TestSealKnownAnswer checks sealing against the XChaCha20-Poly1305 test
// vector of draft-irtf-cfrg-xchacha-03, appendix A.3.1.
func TestSealKnownAnswer(t *testing.T) {
	key := ThreadKey(mustHex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"))
	nonce := [24]byte(mustHex("404142434445464748494a4b4c4d4e4f5051525354555657"))
	aad := mustHex("50515253c0c1c2c3c4c5c6c7")
	pt := []byte("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.")
	ct := mustHex("bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e")
	tag := mustHex("c0875924c1c7987947deafd8780acf49")
	want := append(append(nonce[:], ct...), tag...)
	if got := sealWithNonce(key, nonce, pt, aad); !bytes.Equal(got, want) {
		t.Errorf("sealWithNonce = %x, want %x", got, want)
	}
	got, err := Open(key, want, aad)
	if err != nil || !bytes.Equal(got, pt) {
		t.Errorf("Open = %q, %v", got, err)
	}
}

func TestSealOpen(t *testing.T) {
	key, err := NewThreadKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 15, 16, 17, 64, 1000} {
		pt := bytes.Repeat([]byte{byte(n)}, n)
		aad := []byte("thread|epoch|header")
		sealed, err := Seal(key, pt, aad)
		if err != nil {
			t.Fatal(err)
		}
		if len(sealed) != len(pt)+SealOverhead {
			t.Fatalf("sealed %d bytes to %d, want %d", n, len(sealed), n+SealOverhead)
		}
		got, err := Open(key, sealed, aad)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if !bytes.Equal(got, pt) || got == nil {
			t.Fatalf("Open = %x, want %x", got, pt)
		}
		again, _ := Seal(key, pt, aad)
		if bytes.Equal(again[:24], sealed[:24]) {
			t.Fatal("nonce repeated")
		}
	}
	// A nil aad is the same as an empty one.
	sealed, _ := Seal(key, []byte("x"), nil)
	if _, err := Open(key, sealed, []byte{}); err != nil {
		t.Error(err)
	}
}

func TestOpenFailures(t *testing.T) {
	key, _ := NewThreadKey()
	other, _ := NewThreadKey()
	pt := []byte("secret")
	aad := []byte("aad")
	sealed, err := Seal(key, pt, aad)
	if err != nil {
		t.Fatal(err)
	}
	fail := func(name string, key ThreadKey, sealed, aad []byte) {
		t.Helper()
		got, err := Open(key, sealed, aad)
		if !errors.Is(err, ErrOpen) {
			t.Errorf("%s: Open = %q, %v; want ErrOpen", name, got, err)
		}
		if got != nil {
			t.Errorf("%s: Open returned plaintext with an error", name)
		}
	}
	fail("wrong key", other, sealed, aad)
	fail("zero key", ThreadKey{}, sealed, aad)
	fail("wrong aad", key, sealed, []byte("aaD"))
	fail("no aad", key, sealed, nil)
	fail("longer aad", key, sealed, []byte("aad\x00"))
	for i := range sealed {
		for _, bit := range []byte{0x01, 0x80} {
			tampered := bytes.Clone(sealed)
			tampered[i] ^= bit
			fail("tampered", key, tampered, aad)
		}
	}
	for n := range len(sealed) {
		fail("truncated", key, sealed[:n], aad)
	}
	fail("extended", key, append(bytes.Clone(sealed), 0), aad)
	fail("nil", key, nil, aad)
}
