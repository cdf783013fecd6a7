package protocol_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/protocol"
)

// Alice creates a thread with Bob and posts to it; Bob's replica receives
// the events from the wire, checks them against the rules, and Bob reads
// the message with the key Alice wrapped for him.
func Example() {
	alice, err := crypto.NewIdentityFromSeed(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		log.Fatal(err)
	}
	bob, err := crypto.NewIdentityFromSeed(bytes.Repeat([]byte{2}, 32))
	if err != nil {
		log.Fatal(err)
	}
	now := int64(1_700_000_000_000) // Unix milliseconds

	// Alice's side: create the thread (she is its manager) and post.
	create, key, err := protocol.NewThread(alice, []crypto.UserID{bob.UserID()}, nil,
		protocol.DefaultPolicy(), []byte("Lunch"), []byte("team only"), now)
	if err != nil {
		log.Fatal(err)
	}
	aliceState, _, err := protocol.NewThreadState(create)
	if err != nil {
		log.Fatal(err)
	}
	aliceRing := protocol.KeyRing{create.ID(): key}
	post, err := protocol.NewPost(aliceState, alice, aliceRing,
		[]byte(`{"type":"text"}`), nil, []byte("Noon at the usual place?"), now+1000)
	if err != nil {
		log.Fatal(err)
	}
	onTheWire := [][]byte{create.Encode(nil), post.Encode(nil)}

	// Bob's replica: decode and check each event, then judge it against
	// the thread's state (the post's only parent is the creation).
	gotCreate, err := protocol.Decode(onTheWire[0])
	if err != nil {
		log.Fatal(err)
	}
	if err := protocol.CheckEvent(gotCreate, protocol.DefaultLimits()); err != nil {
		log.Fatal(err)
	}
	bobState, createMeta, err := protocol.NewThreadState(gotCreate)
	if err != nil {
		log.Fatal(err)
	}
	gotPost, err := protocol.Decode(onTheWire[1])
	if err != nil {
		log.Fatal(err)
	}
	if err := protocol.CheckEvent(gotPost, protocol.DefaultLimits()); err != nil {
		log.Fatal(err)
	}
	meta, err := bobState.Validate(gotPost, []protocol.EventMeta{createMeta})
	if err != nil {
		log.Fatal(err)
	}
	bobState.Apply(gotPost, meta)
	fmt.Printf("thread %t: %d members, %d manager\n", bobState.ID == gotPost.Thread,
		len(bobState.Current.Users), len(bobState.Current.Managers))
	fmt.Printf("%s by alice: %t, sequence %d, Lamport time %d, epoch %d\n",
		meta.Kind, meta.Writer == alice.UserID(), meta.Seq, meta.Lamport, meta.Epoch)

	// Bob unwraps the thread key sent to him and opens the message.
	bobRing := protocol.KeyRing{}
	n, err := protocol.UnwrapKeys(bobRing, gotCreate, bob)
	if err != nil {
		log.Fatal(err)
	}
	data, err := protocol.OpenField(gotPost, protocol.FieldData, bobRing[meta.KeyRef])
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("bob unwrapped %d key and reads: %s\n", n, data)
	fmt.Printf("public metadata: %s\n", gotPost.Content.PublicMeta)
	// Output:
	// thread true: 2 members, 1 manager
	// MessagePost by alice: true, sequence 2, Lamport time 2, epoch 0
	// bob unwrapped 1 key and reads: Noon at the usual place?
	// public metadata: {"type":"text"}
}
