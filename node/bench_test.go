package node_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/protocol"
)

// Benchmarks of the node's write paths with 1 KiB messages. Run them as
//
//	go test ./node -run='^$' -bench=. -benchtime=3000x -cpu=1,2
//
// SendMessage seals, signs, validates and stores one message and waits for
// its commit (one fsync, shared by the calls that wait together: group
// commit). Ingest validates foreign events on all cores and stores them in
// chunks of 512; IngestBaselineVerify is only the Decode + CheckEvent
// (Ed25519 verify) part of it, the bound Ingest cannot beat.

const benchDataSize = 1 << 10

func benchData() []byte {
	d := make([]byte, benchDataSize)
	rand.Read(d)
	return d
}

// benchNode opens a node in a fresh home with one identity and one thread.
func benchNode(b *testing.B) (*node.Node, *node.User, protocol.ThreadID) {
	b.Helper()
	ctx := context.Background()
	n, err := node.New(ctx, node.Config{
		Home:       b.TempDir(),
		Passphrase: []byte("bench"),
		KDF:        &crypto.KDFParams{Time: 1, Memory: 1024, Threads: 1},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	me, err := n.CreateIdentity(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	u := n.As(me)
	tid, err := u.CreateThread(ctx, nil, nil, []byte("bench"), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	return n, u, tid
}

func BenchmarkSendMessage(b *testing.B) {
	_, u, tid := benchNode(b)
	ctx := context.Background()
	data := benchData()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := u.SendMessage(ctx, tid, []byte("pub"), []byte("priv"), data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkSendMessageParallel sends from 8 goroutines per CPU: the node
// commits the messages that wait together in one transaction and one fsync.
func BenchmarkSendMessageParallel(b *testing.B) {
	_, u, tid := benchNode(b)
	ctx := context.Background()
	data := benchData()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := u.SendMessage(ctx, tid, []byte("pub"), []byte("priv"), data); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// benchChain is a valid thread built outside any node: a genesis by an
// owner and 1 KiB posts by three other members, in turn. It is built once
// and extended as benchmarks ask for more events.
var benchChain struct {
	sync.Mutex
	genesis []byte
	posts   [][]byte
	ts      *protocol.ThreadState
	writers []*crypto.Identity
	rings   []protocol.KeyRing
	metas   map[protocol.EventID]protocol.EventMeta
	data    []byte
}

func benchIdentity(b *testing.B, name string) *crypto.Identity {
	seed := sha256.Sum256([]byte("weft bench " + name))
	id, err := crypto.NewIdentityFromSeed(seed[:])
	if err != nil {
		b.Fatal(err)
	}
	return id
}

// benchEvents returns the encoded genesis and the first n encoded posts of
// the benchmark thread.
func benchEvents(b *testing.B, n int) ([]byte, [][]byte) {
	b.Helper()
	c := &benchChain
	c.Lock()
	defer c.Unlock()
	const t0 = int64(1_700_000_000_000)
	if c.ts == nil {
		owner := benchIdentity(b, "owner")
		var members []crypto.UserID
		for i := 0; i < 3; i++ {
			id := benchIdentity(b, fmt.Sprintf("writer%d", i))
			c.writers = append(c.writers, id)
			members = append(members, id.UserID())
		}
		gen, _, err := protocol.NewThread(owner, members, nil, protocol.DefaultPolicy(), []byte("bench"), nil, t0)
		if err != nil {
			b.Fatal(err)
		}
		ts, meta, err := protocol.NewThreadState(gen)
		if err != nil {
			b.Fatal(err)
		}
		c.ts, c.genesis = ts, gen.Encode(nil)
		c.metas = map[protocol.EventID]protocol.EventMeta{meta.ID: meta}
		for _, w := range c.writers {
			ring := protocol.KeyRing{}
			if _, err := protocol.UnwrapKeys(ring, gen, w); err != nil {
				b.Fatal(err)
			}
			c.rings = append(c.rings, ring)
		}
		c.data = benchData()
	}
	for i := len(c.posts); i < n; i++ {
		k := i % len(c.writers)
		ev, err := protocol.NewPost(c.ts, c.writers[k], c.rings[k], []byte("pub"), []byte("priv"), c.data, t0+int64(i+1))
		if err != nil {
			b.Fatal(err)
		}
		parents := make([]protocol.EventMeta, 0, len(ev.Parents))
		for _, p := range ev.Parents {
			parents = append(parents, c.metas[p])
		}
		meta, err := c.ts.Validate(ev, parents)
		if err != nil {
			b.Fatalf("building post %d: %v", i, err)
		}
		c.ts.Apply(ev, meta)
		c.metas[meta.ID] = meta
		c.posts = append(c.posts, ev.Encode(nil))
	}
	return c.genesis, c.posts[:n]
}

func BenchmarkIngest(b *testing.B) {
	genesis, posts := benchEvents(b, b.N)
	ctx := context.Background()
	n, err := node.New(ctx, node.Config{Home: b.TempDir(), Unencrypted: true})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	if res, err := n.Ingest(ctx, [][]byte{genesis}); err != nil || res.Accepted != 1 {
		b.Fatalf("ingesting the genesis: %+v, %v", res, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < len(posts); i += 512 {
		chunk := posts[i:min(i+512, len(posts))]
		res, err := n.Ingest(ctx, chunk)
		if err != nil {
			b.Fatal(err)
		}
		if res.Accepted != len(chunk) {
			b.Fatalf("chunk at %d: %+v", i, res)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkIngestBaselineVerify decodes and checks (signature included) the
// same events on all cores, storing nothing.
func BenchmarkIngestBaselineVerify(b *testing.B) {
	_, posts := benchEvents(b, b.N)
	lim := protocol.DefaultLimits()
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			raw := posts[next.Add(1)-1]
			ev, err := protocol.Decode(raw)
			if err == nil {
				err = protocol.CheckEvent(ev, lim)
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
