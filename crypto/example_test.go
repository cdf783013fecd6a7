package crypto_test

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/weftnet/weft/crypto"
)

func ExampleNewIdentityFromSeed() {
	// A fixed seed gives a fixed identity. Use GenerateIdentity for real
	// keys.
	seed := bytes.Repeat([]byte{0}, 32)
	id, err := crypto.NewIdentityFromSeed(seed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(id.UserID())
	fmt.Println(id)
	// Output:
	// weft18d4z00xwk6jz6c4r4rgz5mcdwdjny9thrh3y8f36cpy2rz6emg5ssxqhs9
	// WEFT-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQU3ZH3C
}

func ExampleGenerateIdentity() {
	id, err := crypto.GenerateIdentity()
	if err != nil {
		log.Fatal(err)
	}
	// Share the user ID; keep the secret key in a Keystore.
	u := id.UserID()
	fmt.Printf("user ID: %s\n", u)

	// A user ID read back from its text form is the same user.
	parsed, err := crypto.ParseUserID(u.String())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(parsed == u)
}

func ExampleParseUserID() {
	u, err := crypto.ParseUserID("weft18d4z00xwk6jz6c4r4rgz5mcdwdjny9thrh3y8f36cpy2rz6emg5ssxqhs9")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%x\n", u[:])

	// A typo is caught by the checksum.
	_, err = crypto.ParseUserID("weft18d4z00xwk6jz6c4r4rgz5mcdwdjny9thrh3y8f36cpy2rz6emg5ssxqhs8")
	fmt.Println(err)
	// Output:
	// 3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29
	// malformed user ID: checksum mismatch: is there a typo?
}

func ExampleIdentity_Sign() {
	id, err := crypto.GenerateIdentity()
	if err != nil {
		log.Fatal(err)
	}
	msg := []byte("event header and ciphertext hash")
	sig := id.Sign("event", msg)

	// Anyone who knows the user ID can verify.
	fmt.Println(crypto.Verify(id.UserID(), "event", msg, sig))
	// A signature is only valid in its domain.
	fmt.Println(crypto.Verify(id.UserID(), "invite", msg, sig) != nil)
	// Output:
	// <nil>
	// true
}

func ExampleWrapThreadKey() {
	alice, err := crypto.GenerateIdentity()
	if err != nil {
		log.Fatal(err)
	}
	key, err := crypto.NewThreadKey()
	if err != nil {
		log.Fatal(err)
	}
	var threadID [32]byte // the thread's ID binds the wrapped key to it
	const epoch = 0

	// Wrap the thread key for Alice, knowing only her user ID.
	wrapped, err := crypto.WrapThreadKey(alice.UserID(), threadID, epoch, key)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(wrapped) == crypto.WrappedKeySize)

	// Alice unwraps it with her identity.
	got, err := alice.UnwrapThreadKey(threadID, epoch, wrapped)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got == key)
	// Output:
	// true
	// true
}

func ExampleSeal() {
	key, err := crypto.NewThreadKey()
	if err != nil {
		log.Fatal(err)
	}
	aad := []byte("thread ID, epoch, event header")
	sealed, err := crypto.Seal(key, []byte("hello, weft"), aad)
	if err != nil {
		log.Fatal(err)
	}
	plaintext, err := crypto.Open(key, sealed, aad)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", plaintext)

	// The additional data must match.
	_, err = crypto.Open(key, sealed, []byte("another header"))
	fmt.Println(err)
	// Output:
	// hello, weft
	// cannot open sealed data: wrong key or additional data, or data altered
}

func ExampleWriteKeystore() {
	dir, err := os.MkdirTemp("", "weft-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "keys.json")

	id, err := crypto.GenerateIdentity()
	if err != nil {
		log.Fatal(err)
	}
	ks := &crypto.Keystore{Entries: []crypto.KeyEntry{
		{Name: "me", Identity: id, Created: time.Now()},
	}}
	passphrase := []byte("correct horse battery staple")
	if err := crypto.WriteKeystore(path, ks, passphrase, crypto.DefaultKDFParams()); err != nil {
		log.Fatal(err)
	}

	_, err = crypto.ReadKeystore(path, nil)
	fmt.Println(errors.Is(err, crypto.ErrPassphraseRequired))

	ks, err = crypto.ReadKeystore(path, passphrase)
	if err != nil {
		log.Fatal(err)
	}
	_, ok := ks.Find(id.UserID())
	fmt.Println(ok)
	// Output:
	// true
	// true
}
