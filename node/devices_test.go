package node_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/protocol"
)

// TestTwoDevicesOfOneUser (issue 9): Alice on two nodes (the second
// imported her key, so it is a second device of hers), Bob on a third.
// Both of Alice's devices post concurrently with Bob; every node ends with
// every message, in one order, with no equivocation, and each message says
// which of Alice's devices wrote it.
func TestTwoDevicesOfOneUser(t *testing.T) {
	ctx := context.Background()
	per := 500
	if testing.Short() {
		per = 100
	}
	n1, alice1 := netNode(t, t.TempDir(), "alice")
	nb, bob := netNode(t, t.TempDir(), "bob")
	n2, _ := netNode(t, t.TempDir(), "")
	secret := bobIdentityFrom(t, n1, alice1.ID()).String()
	uid, err := n2.ImportIdentity(ctx, "alice", secret)
	if err != nil || uid != alice1.ID() {
		t.Fatalf("import: %v", err)
	}
	alice2 := n2.As(uid)
	d1, _ := n1.DeviceID(alice1.ID())
	d2, _ := n2.DeviceID(alice1.ID())
	if d1 == d2 || d1.IsZero() {
		t.Fatalf("devices %s and %s", d1, d2)
	}
	connect(t, n1, nb)
	connect(t, n2, nb)
	connect(t, n1, n2)
	th, err := alice1.CreateThread(ctx, []crypto.UserID{bob.ID()}, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []*node.User{alice2, bob} {
		eventually(t, 15*time.Second, "the thread everywhere", func() bool { return hasThread(u, th) })
	}

	var wg sync.WaitGroup
	sent := map[string][]protocol.EventID{}
	var mu sync.Mutex
	for name, u := range map[string]*node.User{"alice1": alice1, "alice2": alice2, "bob": bob} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				id, err := u.SendMessage(ctx, th, nil, nil, []byte(fmt.Sprintf("%s %d", name, i)))
				if err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
				mu.Lock()
				sent[name] = append(sent[name], id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	total := 3 * per
	nodes := map[string]*node.Node{"alice1": n1, "alice2": n2, "bob": nb}
	users := map[string]*node.User{"alice1": alice1, "alice2": alice2, "bob": bob}
	for name, u := range users {
		eventually(t, 60*time.Second, name+" to have every message", func() bool { return messageCount(u, th) == total })
	}
	h1, c1 := orderHash(t, n1, th)
	for name, n := range nodes {
		h, c := orderHash(t, n, th)
		if h != h1 || c != c1 {
			t.Fatalf("%s: %d events, hash differs from alice1's %d", name, c, c1)
		}
		got, err := users[name].GetThread(ctx, th)
		if err != nil || len(got.Equivocations) != 0 {
			t.Fatalf("%s: %v, equivocations %+v", name, err, got.Equivocations)
		}
	}
	// Each message shows its user and, for Alice's, the device.
	want := map[protocol.EventID]*crypto.DeviceID{}
	for _, id := range sent["alice1"] {
		want[id] = &d1
	}
	for _, id := range sent["alice2"] {
		want[id] = &d2
	}
	l, err := bob.ListMessages(ctx, th, node.Page{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range l.Items {
		d, alices := want[m.MessageID]
		switch {
		case alices && (m.Author != alice1.ID() || m.Device == nil || *m.Device != *d):
			t.Fatalf("message %s: author %s device %v, want alice on %s", m.MessageID, m.Author, m.Device, d)
		case !alices && (m.Author != bob.ID() || m.Device == nil):
			t.Fatalf("bob's message %s: author %s device %v", m.MessageID, m.Author, m.Device)
		}
	}
	if !slices.ContainsFunc(l.Items, func(m node.Message) bool { return m.Author == alice1.ID() }) {
		t.Fatal("no message of alice")
	}
	// Bob lists Alice's devices from the thread's own records.
	devs, err := bob.Devices(ctx, th)
	if err != nil {
		t.Fatal(err)
	}
	var alices []crypto.DeviceID
	for _, d := range devs {
		if d.User == alice1.ID() {
			alices = append(alices, d.Device)
			if d.Name == "" || d.Events == 0 || d.ThisNode {
				t.Errorf("alice's device as bob sees it: %+v", d)
			}
		}
	}
	if len(alices) != 2 || !slices.Contains(alices, d1) || !slices.Contains(alices, d2) {
		t.Fatalf("bob lists alice's devices %v, want %s and %s", alices, d1, d2)
	}
	mine, err := alice2.Devices(ctx, th)
	if err != nil || !slices.ContainsFunc(mine, func(d node.DeviceInfo) bool { return d.Device == d2 && d.ThisNode }) {
		t.Fatalf("alice's second node does not mark its own device: %v %+v", err, mine)
	}
}
