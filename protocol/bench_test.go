package protocol_test

import (
	"bytes"
	"sync"
	"testing"

	"github.com/weftnet/weft/protocol"
)

const benchPool = 2000

var (
	benchOnce    sync.Once
	benchCreate  *protocol.Event
	benchPosts   []*protocol.Event // bob's chain of 1 KiB posts, decoded from the wire
	benchPostLen int
)

// benchThread builds, once, a thread and a chain of benchPool posts of
// 1 KiB of data by bob, each decoded from its wire form as a replica
// would receive it.
func benchThread(b *testing.B) {
	benchOnce.Do(func() {
		f := stdFixture(b)
		benchCreate = f.create
		data := bytes.Repeat([]byte("x"), 1024)
		for range benchPool {
			ev, err := protocol.NewPost(f.ts, ident(b, "bob"), f.rings["bob"], []byte(`{"t":1}`), []byte("meta"), data, f.now())
			if err != nil {
				b.Fatal(err)
			}
			f.accept(ev)
			enc := ev.Encode(nil)
			benchPostLen = len(enc)
			benchPosts = append(benchPosts, mustDecode(b, enc))
		}
	})
}

// BenchmarkValidatePost measures what a replica does for each event from
// another writer: CheckEvent (shape, limits, content hash, Ed25519
// signature), Validate against the thread state, and Apply.
func BenchmarkValidatePost(b *testing.B) {
	benchThread(b)
	lim := protocol.DefaultLimits()
	var ts *protocol.ThreadState
	var metas map[protocol.EventID]protocol.EventMeta
	reset := func() {
		var m protocol.EventMeta
		var err error
		ts, m, err = protocol.NewThreadState(benchCreate)
		if err != nil {
			b.Fatal(err)
		}
		metas = map[protocol.EventID]protocol.EventMeta{m.ID: m}
	}
	reset()
	b.SetBytes(int64(benchPostLen))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i > 0 && i%benchPool == 0 {
			b.StopTimer()
			reset()
			b.StartTimer()
		}
		ev := benchPosts[i%benchPool]
		if err := protocol.CheckEvent(ev, lim); err != nil {
			b.Fatal(err)
		}
		ps := make([]protocol.EventMeta, len(ev.Parents))
		for j, p := range ev.Parents {
			ps[j] = metas[p]
		}
		meta, err := ts.Validate(ev, ps)
		if err != nil {
			b.Fatal(err)
		}
		ts.Apply(ev, meta)
		metas[meta.ID] = meta
	}
}

// BenchmarkEncodeDecode measures the wire round trip of a 1 KiB post.
func BenchmarkEncodeDecode(b *testing.B) {
	benchThread(b)
	ev := benchPosts[0]
	buf := ev.Encode(nil)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf = ev.Encode(buf[:0])
		if _, err := protocol.Decode(buf); err != nil {
			b.Fatal(err)
		}
	}
}
