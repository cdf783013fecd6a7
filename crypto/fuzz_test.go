package crypto

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/weftnet/weft/crypto/internal/bech32"
)

func FuzzParseUserID(f *testing.F) {
	userIDs, secretKeys, invalid := vectorStrings(f)
	for _, s := range append(append(userIDs, secretKeys...), invalid...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseUserID(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedUserID) {
				t.Fatalf("ParseUserID(%q) = %v, want ErrMalformedUserID", s, err)
			}
			if u != (UserID{}) {
				t.Fatalf("ParseUserID(%q) returned a user ID with an error", s)
			}
			return
		}
		if got := u.String(); got != s {
			t.Fatalf("ParseUserID(%q).String() = %q", s, got)
		}
		if _, err := u.X25519(); err != nil {
			t.Fatalf("ParseUserID(%q).X25519() = %v", s, err)
		}
		if _, err := UserIDFromBytes(u[:]); err != nil {
			t.Fatalf("UserIDFromBytes(ParseUserID(%q)) = %v", s, err)
		}
	})
}

func FuzzUserIDFromBytes(f *testing.F) {
	v := readVectors(f)
	for _, iv := range v.Identities {
		f.Add([]byte(iv.Ed25519Public))
	}
	f.Add(make([]byte, 32))
	f.Add(bytes.Repeat([]byte{0xff}, 32))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := UserIDFromBytes(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedUserID) {
				t.Fatalf("UserIDFromBytes(%x) = %v, want ErrMalformedUserID", b, err)
			}
			return
		}
		if got, err := ParseUserID(u.String()); err != nil || got != u {
			t.Fatalf("ParseUserID(UserIDFromBytes(%x).String()) = %x, %v", b, got, err)
		}
	})
}

func FuzzParseIdentity(f *testing.F) {
	userIDs, secretKeys, invalid := vectorStrings(f)
	for _, s := range append(append(secretKeys, userIDs...), invalid...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseIdentity(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedIdentity) {
				t.Fatalf("ParseIdentity(%q) = %v, want ErrMalformedIdentity", s, err)
			}
			if id != nil {
				t.Fatalf("ParseIdentity(%q) returned an identity with an error", s)
			}
			return
		}
		if got := id.String(); got != s {
			t.Fatalf("ParseIdentity(%q).String() = %q", s, got)
		}
	})
}

func FuzzBech32Decode(f *testing.F) {
	userIDs, secretKeys, invalid := vectorStrings(f)
	for _, s := range append(append(userIDs, secretKeys...), invalid...) {
		f.Add(s)
	}
	f.Add("a12uel5l")
	f.Add("A12UEL5L")
	f.Add("?1ezyfcl")
	f.Add("11" + strings.Repeat("q", 82) + "c8247j")
	f.Fuzz(func(t *testing.T, s string) {
		hrp, data, err := bech32.Decode(s)
		if err != nil {
			return
		}
		got, err := bech32.Encode(hrp, data)
		if err != nil {
			t.Fatalf("Encode(Decode(%q)) failed: %v", s, err)
		}
		want := s
		if strings.ToLower(hrp) == strings.ToUpper(hrp) {
			// No letters in hrp: Encode cannot know the case of s.
			want = strings.ToLower(s)
		}
		if got != want {
			t.Fatalf("Encode(Decode(%q)) = %q", s, got)
		}
	})
}

func FuzzOpen(f *testing.F) {
	v := readVectors(f)
	for _, sv := range v.Sealed {
		f.Add([]byte(sv.Key), []byte(sv.Sealed), []byte(sv.AAD))
	}
	f.Add([]byte{}, []byte{}, []byte{})
	f.Add(make([]byte, 32), make([]byte, SealOverhead), []byte("aad"))
	f.Fuzz(func(t *testing.T, k, sealed, aad []byte) {
		var key ThreadKey
		copy(key[:], k)
		pt, err := Open(key, sealed, aad)
		if err != nil {
			if !errors.Is(err, ErrOpen) {
				t.Fatalf("Open = %v, want ErrOpen", err)
			}
			if pt != nil {
				t.Fatal("Open returned plaintext with an error")
			}
			return
		}
		if len(pt) != len(sealed)-SealOverhead {
			t.Fatalf("Open returned %d bytes from %d", len(pt), len(sealed))
		}
		if again := sealWithNonce(key, [24]byte(sealed), pt, aad); !bytes.Equal(again, sealed) {
			t.Fatalf("re-sealing gives %x, want %x", again, sealed)
		}
	})
}

func FuzzUnwrap(f *testing.F) {
	v := readVectors(f)
	id, err := NewIdentityFromSeed(v.Wrapped[0].RecipientSeed)
	if err != nil {
		f.Fatal(err)
	}
	for _, wv := range v.Wrapped {
		f.Add([]byte(wv.Wrapped), []byte(wv.Binding), wv.Epoch)
	}
	f.Add([]byte{}, []byte{}, uint32(0))
	f.Add(make([]byte, WrappedKeySize), make([]byte, 32), uint32(1))
	f.Fuzz(func(t *testing.T, wrapped, b []byte, epoch uint32) {
		var binding [32]byte
		copy(binding[:], b)
		key, err := id.UnwrapThreadKey(binding, epoch, wrapped)
		if err != nil {
			if !errors.Is(err, ErrUnwrap) {
				t.Fatalf("UnwrapThreadKey = %v, want ErrUnwrap", err)
			}
			if key != (ThreadKey{}) {
				t.Fatal("UnwrapThreadKey returned a key with an error")
			}
			return
		}
		if len(wrapped) != WrappedKeySize {
			t.Fatalf("unwrapped a %d-byte input", len(wrapped))
		}
	})
}

func FuzzVerify(f *testing.F) {
	v := readVectors(f)
	for _, sv := range v.Signatures {
		id, err := NewIdentityFromSeed(sv.Seed)
		if err != nil {
			f.Fatal(err)
		}
		u := id.UserID()
		f.Add(u[:], sv.Domain, []byte(sv.Message), []byte(sv.Signature))
	}
	f.Fuzz(func(t *testing.T, pub []byte, domain string, msg, sig []byte) {
		var u UserID
		copy(u[:], pub)
		if err := Verify(u, domain, msg, sig); err != nil && !errors.Is(err, ErrBadSignature) {
			t.Fatalf("Verify = %v, want ErrBadSignature", err)
		}
	})
}

// FuzzParseKeystore checks the keystore file decoder. Encrypted files are
// only opened when their KDF parameters are cheap.
func FuzzParseKeystore(f *testing.F) {
	ks := &Keystore{}
	for _, seed := range vectorSeeds {
		id, err := NewIdentityFromSeed(seed)
		if err != nil {
			f.Fatal(err)
		}
		ks.Entries = append(ks.Entries, KeyEntry{Name: "n", Identity: id})
	}
	dir := f.TempDir()
	for i, write := range []func(string) error{
		func(p string) error { return WriteKeystoreUnencrypted(p, ks) },
		func(p string) error {
			return WriteKeystore(p, ks, []byte("pw"), KDFParams{Time: 1, Memory: 8, Threads: 1})
		},
	} {
		p := dir + "/" + string(rune('a'+i))
		if err := write(p); err != nil {
			f.Fatal(err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"weft_keystore":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, params, err := parseKeystoreFile(data)
		if err != nil {
			if !errors.Is(err, ErrKeystoreCorrupt) && !errors.Is(err, ErrKeystoreVersion) {
				t.Fatalf("parseKeystoreFile = %v, want ErrKeystoreCorrupt or ErrKeystoreVersion", err)
			}
			return
		}
		if params == nil {
			if _, err := decodeEntries(file.Entries); err != nil && !errors.Is(err, ErrKeystoreCorrupt) {
				t.Fatalf("decodeEntries = %v, want ErrKeystoreCorrupt", err)
			}
			return
		}
		if params.Time > 2 || params.Memory > 64 {
			return
		}
		key := deriveKeystoreKey([]byte("pw"), file.Salt, *params)
		pt, err := Open(key, file.Sealed, keystoreHeader(*params, file.Salt))
		if err != nil {
			return
		}
		if _, err := decodeEntries(pt); err != nil && !errors.Is(err, ErrKeystoreCorrupt) {
			t.Fatalf("decodeEntries = %v, want ErrKeystoreCorrupt", err)
		}
	})
}
