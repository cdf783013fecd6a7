package crypto

import (
	"crypto/rand"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// SealOverhead is how many bytes longer the output of [Seal] is than its
// plaintext: a 24-byte nonce and a 16-byte authentication tag.
const SealOverhead = 24 + 16

// Seal encrypts and authenticates plaintext, and authenticates aad, with
// XChaCha20-Poly1305 under key and a random nonce. The result is
// nonce || ciphertext || tag, [SealOverhead] bytes longer than plaintext.
// aad is not included in the result; [Open] needs the same aad.
func Seal(key ThreadKey, plaintext, aad []byte) ([]byte, error) {
	var nonce [chacha20poly1305.NonceSizeX]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("crypto: generating nonce: %w", err)
	}
	return sealWithNonce(key, nonce, plaintext, aad), nil
}

func sealWithNonce(key ThreadKey, nonce [chacha20poly1305.NonceSizeX]byte, plaintext, aad []byte) []byte {
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		panic("crypto: XChaCha20-Poly1305 with a 32-byte key failed: " + err.Error())
	}
	out := make([]byte, 0, len(nonce)+len(plaintext)+aead.Overhead())
	out = append(out, nonce[:]...)
	return aead.Seal(out, nonce[:], plaintext, aad)
}

// Open decrypts and authenticates the output of [Seal] with the same key and
// aad, and returns the plaintext. Errors wrap [ErrOpen]: the key or aad is
// wrong, or sealed was altered or truncated.
func Open(key ThreadKey, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < SealOverhead {
		return nil, fmt.Errorf("%w: sealed data is %d bytes, want at least %d", ErrOpen, len(sealed), SealOverhead)
	}
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		panic("crypto: XChaCha20-Poly1305 with a 32-byte key failed: " + err.Error())
	}
	nonce, ct := sealed[:chacha20poly1305.NonceSizeX], sealed[chacha20poly1305.NonceSizeX:]
	pt, err := aead.Open(nil, nonce, ct, aad)
	if err != nil {
		return nil, fmt.Errorf("%w: wrong key or additional data, or data altered", ErrOpen)
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}
