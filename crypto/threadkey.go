package crypto

import (
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"encoding/binary"
	"fmt"
)

// ThreadKey is a 256-bit symmetric key: the key of one epoch of a thread.
type ThreadKey [32]byte

// WrappedKeySize is the size in bytes of a thread key wrapped by
// [WrapThreadKey]: the 32-byte HPKE encapsulated key followed by the
// 48-byte ciphertext of the thread key.
const WrappedKeySize = 32 + 32 + 16

const threadKeyInfoPrefix = "weft/thread-key/v1"

// NewThreadKey returns a new random thread key.
func NewThreadKey() (ThreadKey, error) {
	var k ThreadKey
	if _, err := rand.Read(k[:]); err != nil {
		return ThreadKey{}, fmt.Errorf("crypto: generating thread key: %w", err)
	}
	return k, nil
}

func threadKeyInfo(binding [32]byte, epoch uint32) []byte {
	info := make([]byte, 0, len(threadKeyInfoPrefix)+len(binding)+4)
	info = append(info, threadKeyInfoPrefix...)
	info = append(info, binding[:]...)
	return binary.BigEndian.AppendUint32(info, epoch)
}

// WrapThreadKey encrypts key to the user to, for the given binding (usually
// the thread ID) and epoch, with HPKE. The result is [WrappedKeySize] bytes
// long and can only be unwrapped by the Identity of to, with the same
// binding and epoch. Wrapping is randomized. An invalid user ID gives an
// error wrapping [ErrMalformedUserID].
func WrapThreadKey(to UserID, binding [32]byte, epoch uint32, key ThreadKey) ([]byte, error) {
	xpub, err := to.X25519()
	if err != nil {
		return nil, err
	}
	pub, err := ecdh.X25519().NewPublicKey(xpub)
	if err != nil {
		return nil, fmt.Errorf("%w: X25519 public key: %v", ErrMalformedUserID, err)
	}
	kem, err := hpke.NewDHKEMPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("crypto: HPKE public key: %w", err)
	}
	wrapped, err := hpke.Seal(kem, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), threadKeyInfo(binding, epoch), key[:])
	if err != nil {
		return nil, fmt.Errorf("crypto: wrapping thread key: %w", err)
	}
	if len(wrapped) != WrappedKeySize {
		return nil, fmt.Errorf("crypto: wrapped thread key is %d bytes, want %d", len(wrapped), WrappedKeySize)
	}
	return wrapped, nil
}

// UnwrapThreadKey decrypts a thread key wrapped to id by [WrapThreadKey]
// for the given binding and epoch. Errors wrap [ErrUnwrap]: the key was
// wrapped to someone else or for another binding or epoch, or wrapped was
// altered or truncated.
func (id *Identity) UnwrapThreadKey(binding [32]byte, epoch uint32, wrapped []byte) (ThreadKey, error) {
	if len(wrapped) != WrappedKeySize {
		return ThreadKey{}, fmt.Errorf("%w: wrapped key is %d bytes, want %d", ErrUnwrap, len(wrapped), WrappedKeySize)
	}
	pt, err := hpke.Open(id.kem, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), threadKeyInfo(binding, epoch), wrapped)
	if err != nil {
		return ThreadKey{}, fmt.Errorf("%w: not wrapped to %v for this binding and epoch, or altered", ErrUnwrap, id.userID)
	}
	if len(pt) != len(ThreadKey{}) {
		return ThreadKey{}, fmt.Errorf("%w: unwrapped key is %d bytes, want %d", ErrUnwrap, len(pt), len(ThreadKey{}))
	}
	return ThreadKey(pt), nil
}
