package node_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/node"
)

// exampleNode opens a node in a new temporary home; cleanup closes it and
// removes the home. Real applications keep their home and use a passphrase
// with the default (slow, safe) KDF parameters.
func exampleNode() (n *node.Node, cleanup func()) {
	home, err := os.MkdirTemp("", "weft-example-")
	if err != nil {
		log.Fatal(err)
	}
	n, err = node.New(context.Background(), node.Config{
		Home:       home,
		Passphrase: []byte("correct horse battery staple"),
		KDF:        &crypto.KDFParams{Time: 1, Memory: 1024, Threads: 1}, // cheap, for the example only
	})
	if err != nil {
		log.Fatal(err)
	}
	return n, func() {
		n.Close()
		os.RemoveAll(home)
	}
}

// Open a node, create two users, and have one write to the other.
func ExampleNew() {
	ctx := context.Background()
	n, cleanup := exampleNode()
	defer cleanup()

	alice, err := n.CreateIdentity(ctx, "alice")
	if err != nil {
		log.Fatal(err)
	}
	bob, err := n.CreateIdentity(ctx, "bob")
	if err != nil {
		log.Fatal(err)
	}

	// Alice creates a thread with Bob as a member (she is a manager).
	thread, err := n.As(alice).CreateThread(ctx, []crypto.UserID{bob}, nil,
		[]byte("public title"), []byte("private title"), nil)
	if err != nil {
		log.Fatal(err)
	}
	msg, err := n.As(alice).SendMessage(ctx, thread, []byte("public meta"), []byte("private meta"), []byte("hello, Bob"))
	if err != nil {
		log.Fatal(err)
	}

	// Bob reads it back, decrypted with the thread key wrapped to him.
	m, err := n.As(bob).GetMessage(ctx, msg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("status:", m.StatusCode)
	fmt.Println("from alice:", m.Author == alice)
	fmt.Println("public meta:", string(m.PublicMeta))
	fmt.Println("private meta:", string(m.PrivateMeta))
	fmt.Println("data:", string(m.Data))
	// Output:
	// status: 0
	// from alice: true
	// public meta: public meta
	// private meta: private meta
	// data: hello, Bob
}

// Subscribe to a user's events and see a new message arrive.
func ExampleUser_Subscribe() {
	ctx := context.Background()
	n, cleanup := exampleNode()
	defer cleanup()

	alice, _ := n.CreateIdentity(ctx, "alice")
	bob, _ := n.CreateIdentity(ctx, "bob")
	thread, err := n.As(alice).CreateThread(ctx, []crypto.UserID{bob}, nil, nil, nil, nil)
	if err != nil {
		log.Fatal(err)
	}

	// Bob listens to this thread (nil would mean all of his threads).
	sub, err := n.As(bob).Subscribe(ctx, &thread)
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()

	if _, err := n.As(alice).SendMessage(ctx, thread, nil, nil, []byte("are you there?")); err != nil {
		log.Fatal(err)
	}
	// A new message comes with the message itself, then the thread's
	// updated counters.
	for i := 0; i < 2; i++ {
		e := <-sub.C
		switch e.Type {
		case node.EventThreadNewMessage:
			fmt.Println(e.Type, string(e.Message.Data))
		case node.EventThreadStats:
			fmt.Println(e.Type, e.Stats.MessagesCount)
		}
	}
	// Output:
	// threadNewMessage are you there?
	// threadStats 1
}

// Page through a thread's messages, newest first, with LastID as a cursor.
func ExampleUser_ListMessages() {
	ctx := context.Background()
	n, cleanup := exampleNode()
	defer cleanup()

	alice, _ := n.CreateIdentity(ctx, "alice")
	u := n.As(alice)
	thread, err := u.CreateThread(ctx, nil, nil, nil, nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		if _, err := u.SendMessage(ctx, thread, nil, nil, fmt.Appendf(nil, "message %d", i)); err != nil {
			log.Fatal(err)
		}
	}

	p := node.Page{Limit: 2, Desc: true}
	for {
		page, err := u.ListMessages(ctx, thread, p)
		if err != nil {
			log.Fatal(err)
		}
		if len(page.Items) == 0 {
			break
		}
		fmt.Printf("page of %d (of %d):", len(page.Items), page.TotalAvailable)
		for _, m := range page.Items {
			fmt.Printf(" %q", m.Data)
		}
		fmt.Println()
		p.LastID = page.Items[len(page.Items)-1].MessageID
	}

	// Skip and Limit select a window without a cursor.
	page, _ := u.ListMessages(ctx, thread, node.Page{Skip: 1, Limit: 3})
	fmt.Printf("oldest first, skip 1, limit 3: %q %q %q\n", page.Items[0].Data, page.Items[1].Data, page.Items[2].Data)
	// Output:
	// page of 2 (of 5): "message 5" "message 4"
	// page of 2 (of 5): "message 3" "message 2"
	// page of 1 (of 5): "message 1"
	// oldest first, skip 1, limit 3: "message 2" "message 3" "message 4"
}
