package crypto

import (
	"bytes"
	"errors"
	"testing"
)

func TestWrapUnwrap(t *testing.T) {
	alice, err := GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	bob, err := GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	key, err := NewThreadKey()
	if err != nil {
		t.Fatal(err)
	}
	if key == (ThreadKey{}) {
		t.Fatal("NewThreadKey returned the zero key")
	}
	if key2, _ := NewThreadKey(); key2 == key {
		t.Fatal("NewThreadKey returned the same key twice")
	}
	binding := [32]byte{1, 2, 3}
	const epoch = 5

	wrapped, err := WrapThreadKey(alice.UserID(), binding, epoch, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(wrapped) != WrappedKeySize {
		t.Fatalf("wrapped key is %d bytes, want %d", len(wrapped), WrappedKeySize)
	}
	got, err := alice.UnwrapThreadKey(binding, epoch, wrapped)
	if err != nil {
		t.Fatal(err)
	}
	if got != key {
		t.Fatalf("unwrapped %x, want %x", got, key)
	}
	again, err := WrapThreadKey(alice.UserID(), binding, epoch, key)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(again, wrapped) {
		t.Error("wrapping is not randomized")
	}

	fail := func(name string, id *Identity, binding [32]byte, epoch uint32, wrapped []byte) {
		t.Helper()
		k, err := id.UnwrapThreadKey(binding, epoch, wrapped)
		if !errors.Is(err, ErrUnwrap) {
			t.Errorf("%s: UnwrapThreadKey = %x, %v; want ErrUnwrap", name, k, err)
		}
		if k != (ThreadKey{}) {
			t.Errorf("%s: UnwrapThreadKey returned a key with an error", name)
		}
	}
	fail("wrong recipient", bob, binding, epoch, wrapped)
	fail("wrong binding", alice, [32]byte{1, 2, 4}, epoch, wrapped)
	fail("wrong epoch", alice, binding, epoch+1, wrapped)
	fail("wrong epoch (high bit)", alice, binding, epoch|1<<31, wrapped)
	for i := range wrapped {
		tampered := bytes.Clone(wrapped)
		tampered[i] ^= 0x01
		fail("tampered", alice, binding, epoch, tampered)
	}
	for n := range len(wrapped) {
		fail("truncated", alice, binding, epoch, wrapped[:n])
	}
	fail("extended", alice, binding, epoch, append(bytes.Clone(wrapped), 0))
	fail("nil", alice, binding, epoch, nil)
}

func TestWrapToInvalidUserID(t *testing.T) {
	key, _ := NewThreadKey()
	for _, u := range []UserID{{}, {1}} {
		if _, err := WrapThreadKey(u, [32]byte{}, 0, key); !errors.Is(err, ErrMalformedUserID) {
			t.Errorf("WrapThreadKey(%x) = %v, want ErrMalformedUserID", u, err)
		}
	}
}
