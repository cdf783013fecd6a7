package bech32

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// Valid and invalid bech32 strings from BIP-173.
var bip173Valid = []string{
	"A12UEL5L",
	"a12uel5l",
	"an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
	"abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
	"11" + strings.Repeat("q", 82) + "c8247j",
	"split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
	"?1ezyfcl",
}

var bip173Invalid = []string{
	"\x201nwldj5",   // HRP character out of range
	"\x7f1axkwrx",   // HRP character out of range
	"\x801eym55h",   // HRP character out of range
	"pzry9x0s0muk",  // no separator character
	"1pzry9x0s0muk", // empty HRP
	"x1b4n0q5v",     // invalid data character
	"li1dgmt3",      // too short checksum
	"de1lg7wt\xff",  // invalid character in checksum
	"A1G7SGD8",      // checksum calculated with uppercase form of HRP
	"10a06t8",       // empty HRP
	"1qzzfhee",      // empty HRP
	"a12UEL5L",      // mixed case
}

func TestBIP173Valid(t *testing.T) {
	for _, s := range bip173Valid {
		hrp, data, err := Decode(s)
		if err != nil {
			t.Errorf("Decode(%q): %v", s, err)
			continue
		}
		got, err := Encode(hrp, data)
		if err != nil {
			t.Errorf("Encode(%q, %x): %v", hrp, data, err)
			continue
		}
		if got != s {
			t.Errorf("Encode(Decode(%q)) = %q", s, got)
		}
	}
}

func TestBIP173Invalid(t *testing.T) {
	for _, s := range bip173Invalid {
		if hrp, data, err := Decode(s); err == nil {
			t.Errorf("Decode(%q) = %q, %x; want error", s, hrp, data)
		}
	}
}

func TestChecksumError(t *testing.T) {
	s := "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw"
	for i := len("abcdef1"); i < len(s); i++ {
		for _, c := range []byte(charset) {
			if c == s[i] {
				continue
			}
			typo := s[:i] + string(c) + s[i+1:]
			_, _, err := Decode(typo)
			if !errors.Is(err, ErrChecksum) {
				t.Fatalf("Decode(%q) = %v, want ErrChecksum", typo, err)
			}
		}
	}
	// A typo in the human-readable part is a checksum error too.
	if _, _, err := Decode("abcdeg1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw"); !errors.Is(err, ErrChecksum) {
		t.Errorf("hrp typo: got %v, want ErrChecksum", err)
	}
}

func TestRoundTrip(t *testing.T) {
	for n := 0; n < 70; n++ {
		data := bytes.Repeat([]byte{byte(n*37 + 1)}, n)
		for _, hrp := range []string{"weft", "WEFT-SECRET-KEY-", "1", "a1b"} {
			s, err := Encode(hrp, data)
			if err != nil {
				t.Fatal(err)
			}
			if hrp == "WEFT-SECRET-KEY-" && s != strings.ToUpper(s) {
				t.Errorf("Encode(%q) = %q, want upper case", hrp, s)
			}
			gotHRP, got, err := Decode(s)
			if err != nil {
				t.Fatalf("Decode(%q): %v", s, err)
			}
			if gotHRP != hrp || !bytes.Equal(got, data) {
				t.Errorf("Decode(%q) = %q, %x; want %q, %x", s, gotHRP, got, hrp, data)
			}
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	for _, hrp := range []string{"", "Weft", "we ft", "we\x7fft"} {
		if s, err := Encode(hrp, []byte{1, 2, 3}); err == nil {
			t.Errorf("Encode(%q) = %q, want error", hrp, s)
		}
	}
}

func TestNonZeroPadding(t *testing.T) {
	// One byte is 8 bits = two 5-bit groups with 2 padding bits. Build a
	// string whose padding bits are not zero and check it is rejected, even
	// with a valid checksum.
	values := []byte{0, 1} // last group 00001: padding bits "01" != 0
	s := "a1" + string(charset[values[0]]) + string(charset[values[1]])
	for _, p := range createChecksum("a", values) {
		s += string(charset[p])
	}
	if _, _, err := Decode(s); err == nil || errors.Is(err, ErrChecksum) {
		t.Errorf("Decode(%q) = %v, want padding error", s, err)
	}
	// Three 5-bit groups for one byte: a whole superfluous group.
	values = []byte{0, 0, 0}
	s = "a1qqq"
	for _, p := range createChecksum("a", values) {
		s += string(charset[p])
	}
	if _, _, err := Decode(s); err == nil || errors.Is(err, ErrChecksum) {
		t.Errorf("Decode(%q) = %v, want padding error", s, err)
	}
}
