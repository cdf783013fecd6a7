package crypto

import "testing"

func benchIdentity(b *testing.B) *Identity {
	b.Helper()
	id, err := NewIdentityFromSeed(rfc8032Seed)
	if err != nil {
		b.Fatal(err)
	}
	return id
}

func BenchmarkSign(b *testing.B) {
	id := benchIdentity(b)
	msg := make([]byte, 256)
	for b.Loop() {
		id.Sign("event", msg)
	}
}

func BenchmarkVerify(b *testing.B) {
	id := benchIdentity(b)
	msg := make([]byte, 256)
	sig := id.Sign("event", msg)
	u := id.UserID()
	for b.Loop() {
		if err := Verify(u, "event", msg, sig); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSeal1KiB(b *testing.B) {
	key, _ := NewThreadKey()
	pt := make([]byte, 1024)
	aad := make([]byte, 64)
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		if _, err := Seal(key, pt, aad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen1KiB(b *testing.B) {
	key, _ := NewThreadKey()
	pt := make([]byte, 1024)
	aad := make([]byte, 64)
	sealed, _ := Seal(key, pt, aad)
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		if _, err := Open(key, sealed, aad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWrapThreadKey(b *testing.B) {
	id := benchIdentity(b)
	key, _ := NewThreadKey()
	u := id.UserID()
	for b.Loop() {
		if _, err := WrapThreadKey(u, [32]byte{1}, 3, key); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnwrapThreadKey(b *testing.B) {
	id := benchIdentity(b)
	key, _ := NewThreadKey()
	wrapped, err := WrapThreadKey(id.UserID(), [32]byte{1}, 3, key)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := id.UnwrapThreadKey([32]byte{1}, 3, wrapped); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseUserID(b *testing.B) {
	s := benchIdentity(b).UserID().String()
	for b.Loop() {
		if _, err := ParseUserID(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKeystoreKDFDefault(b *testing.B) {
	salt := make([]byte, keystoreSaltSize)
	for b.Loop() {
		deriveKeystoreKey([]byte("passphrase"), salt, DefaultKDFParams())
	}
}
