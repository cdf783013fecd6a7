package node

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/protocol"
)

// A held event whose parents do not come within HeldTTL is dropped, from
// memory and disk; when it comes again with its past it is taken.
func TestHeldEventsExpire(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	clock := time.Unix(1_700_000_000, 0)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	n, err := New(ctx, Config{Home: t.TempDir(), Unencrypted: true, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()

	writer, _ := crypto.NewIdentityFromSeed(bytes.Repeat([]byte{9}, 32))
	genesis, key, err := protocol.NewThread(writer, nil, nil, protocol.DefaultPolicy(), nil, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	ts, gm, _ := protocol.NewThreadState(genesis)
	var posts [][]byte
	for i := range 2 {
		ev, err := protocol.NewPost(ts, writer, protocol.KeyRing{gm.ID: key}, nil, nil, []byte{byte(i)}, int64(i+2))
		if err != nil {
			t.Fatal(err)
		}
		meta, err := ts.Validate(ev, ts.Heads)
		if err != nil {
			t.Fatal(err)
		}
		ts.Apply(ev, meta)
		posts = append(posts, ev.Encode(nil))
	}
	if res, err := n.Ingest(ctx, [][]byte{genesis.Encode(nil), posts[1]}); err != nil || res.Held != 1 {
		t.Fatalf("ingest: %v %+v", err, res)
	}
	advance(HeldTTL - time.Minute)
	if err := n.expireHeld(ctx); err != nil {
		t.Fatal(err)
	}
	if got := n.Metrics().HeldEvents; got != 1 {
		t.Fatalf("%d held before the TTL, want 1", got)
	}
	advance(2 * time.Minute)
	if err := n.expireHeld(ctx); err != nil {
		t.Fatal(err)
	}
	if got := n.Metrics().HeldEvents; got != 0 {
		t.Fatalf("%d held after the TTL, want 0", got)
	}
	if held, err := n.store.AllHeld(); err != nil || len(held) != 0 {
		t.Fatalf("still held on disk: %v %d", err, len(held))
	}
	if res, err := n.Ingest(ctx, posts); err != nil || res.Accepted != 2 {
		t.Fatalf("again with its past: %v %+v", err, res)
	}
}
