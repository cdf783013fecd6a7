package api_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/node"
)

// A client creates a thread and sends a message through the local API,
// then reads the message back. Here the API is served by an httptest
// server; against a running `weft daemon`, use api.NewClientForHome(home),
// which reads the address and token from HOME/api.json.
func Example() {
	ctx := context.Background()

	// An offline node with two users, served with a token.
	home, err := os.MkdirTemp("", "weft-api-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(home)
	n, err := node.New(ctx, node.Config{Home: home, Unencrypted: true})
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close()
	if _, err := n.CreateIdentity(ctx, "alice"); err != nil { // the default acting user
		log.Fatal(err)
	}
	bob, err := n.CreateIdentity(ctx, "bob")
	if err != nil {
		log.Fatal(err)
	}
	token, err := api.NewToken()
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(api.NewServer(n, token, nil))
	defer srv.Close()

	c := api.NewClient(strings.TrimPrefix(srv.URL, "http://"), token)
	thread, err := c.CreateThread(ctx, api.CreateThreadRequest{
		Users:       []crypto.UserID{bob},
		PublicMeta:  []byte("weekend plans"),
		PrivateMeta: []byte("just us"),
	})
	if err != nil {
		log.Fatal(err)
	}
	msg, err := c.Send(ctx, thread, api.SendRequest{Data: []byte("hello, Bob")})
	if err != nil {
		log.Fatal(err)
	}

	m, err := c.GetMessage(ctx, msg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("data:", string(m.Data))
	fmt.Println("status:", m.StatusCode)
	l, err := c.ListMessages(ctx, thread, node.Page{Limit: 10, Desc: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("messages:", l.TotalAvailable)
	th, err := c.GetThread(ctx, thread)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("thread:", string(th.PublicMeta), "/", string(th.PrivateMeta), "/", len(th.Users), "members")

	// Errors carry a stable code.
	_, err = c.Send(ctx, thread, api.SendRequest{Data: make([]byte, 512<<10+1)}) // over the default 512 KiB
	var e *api.Error
	if errors.As(err, &e) {
		fmt.Println("error:", e.Status, e.Code)
	}
	// Output:
	// data: hello, Bob
	// status: 0
	// messages: 1
	// thread: weekend plans / just us / 2 members
	// error: 413 too_large
}
