package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/protocol"
	"github.com/weftnet/weft/storage"
)

// SyncResult is one catch-up run.
//
// PeakRSSBytes is the process's VmHWM after the catch-up. The run resets
// the high-water mark to the current RSS just before B connects (writing 5
// to /proc/self/clear_refs); if the kernel refuses, HWMReset is false and
// the peak includes everything before (building A's backlog). The whole
// process holds both nodes (A serving, B catching up).
type SyncResult struct {
	Events         int
	Elapsed        time.Duration
	EventsPerSec   float64
	PeakRSSBytes   int64
	HeapAfterBytes uint64 // runtime heap in use after catch-up and a GC

	HWMReset           bool
	RSSBeforeBytes     int64 // VmRSS just before B connects (after a GC)
	RSSAfterBytes      int64 // VmRSS when B holds every event
	RSSMaxSampledBytes int64 // the largest VmRSS seen every 20ms during catch-up
	HeapBeforeBytes    uint64
	// HeapSettledBytes is the heap in use once B's store has settled after
	// the catch-up (Badger's compactions hold large transient buffers):
	// what the catch-up left behind.
	HeapSettledBytes uint64
	RSSSettledBytes  int64
	BuildElapsed     time.Duration // writing the backlog into A
}

// SyncCatchUp measures how fast a fresh replica catches up a backlog: node
// A holds a thread of events 1 KiB messages; node B, a fresh home with the
// thread's second member's identity, connects to A only and pulls them
// through /weft/sync/1.0.0. Elapsed runs from B's Connect to B's store
// holding every message.
func SyncCatchUp(ctx context.Context, events int, logf func(string, ...any)) (SyncResult, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	res := SyncResult{Events: events}
	if events < 1 {
		return res, errors.New("bench: events must be positive")
	}
	root, err := os.MkdirTemp("", "weft-bench-sync-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(root)
	netCfg := func() *node.NetworkConfig {
		return &node.NetworkConfig{Listen: []string{"/ip4/127.0.0.1/tcp/0"}, NoMDNS: true}
	}

	writer, err := crypto.GenerateIdentity()
	if err != nil {
		return res, err
	}
	member, err := crypto.GenerateIdentity()
	if err != nil {
		return res, err
	}
	// A is a replica holding the thread's ciphertext (a bridge without
	// keys); the backlog is written with the protocol's author helpers and
	// ingested, which is faster than the API's one durable commit per
	// group of calls and exercises the same validation.
	a, err := node.New(ctx, node.Config{Home: filepath.Join(root, "a"), Unencrypted: true, Network: netCfg()})
	if err != nil {
		return res, err
	}
	defer a.Close()
	start := time.Now()
	th, err := fillBacklog(ctx, a, writer, member.UserID(), events)
	if err != nil {
		return res, fmt.Errorf("building A's backlog: %w", err)
	}
	res.BuildElapsed = time.Since(start)
	logf("sync: A holds %d messages (built in %v)", events, res.BuildElapsed.Round(time.Millisecond))
	// Let A's compactions finish, so that B's catch-up neither competes
	// with them for the CPU nor is charged for their memory. (Small
	// backlogs, as in tests, need no wait.)
	wait := events >= settleMin
	if wait {
		h, err := settle(ctx)
		if err != nil {
			return res, err
		}
		logf("sync: A settled, heap %s", mib(int64(h)))
	}

	b, err := node.New(ctx, node.Config{Home: filepath.Join(root, "b"), Unencrypted: true, Network: netCfg()})
	if err != nil {
		return res, err
	}
	defer b.Close()
	if _, err := b.ImportIdentity(ctx, "member", member.String()); err != nil {
		return res, err
	}

	runtime.GC()
	res.HeapBeforeBytes = heapInuse()
	res.RSSBeforeBytes = procStatus("VmRSS")
	res.HWMReset = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	var maxRSS atomic.Int64
	stopSampler := make(chan struct{})
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if v := procStatus("VmRSS"); v > maxRSS.Load() {
				maxRSS.Store(v)
			}
			select {
			case <-stopSampler:
				return
			case <-t.C:
			}
		}
	}()

	start = time.Now()
	if err := b.Connect(ctx, a.Addrs()[0]); err != nil {
		close(stopSampler)
		return res, err
	}
	deadline := time.Now().Add(max(60*time.Second, time.Duration(events)*time.Millisecond))
	lastLog, lastCPU, lastHeld := time.Now(), cpuTime(), uint64(0)
	for {
		st, err := b.Store().Stats(th)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			close(stopSampler)
			return res, err
		}
		if st.Messages >= uint64(events) {
			break
		}
		if time.Now().After(deadline) {
			close(stopSampler)
			return res, fmt.Errorf("replica B holds %d of %d messages after %v", st.Messages, events, time.Since(start).Round(time.Millisecond))
		}
		if d := time.Since(lastLog); d > 2*time.Second {
			cpu := cpuTime()
			logf("sync: B holds %d of %d after %v (%.0f events/s, %.2f cores busy)", st.Messages, events, time.Since(start).Round(time.Millisecond),
				float64(st.Messages-lastHeld)/d.Seconds(), (cpu-lastCPU).Seconds()/d.Seconds())
			lastLog, lastCPU, lastHeld = time.Now(), cpu, st.Messages
		}
		select {
		case <-ctx.Done():
			close(stopSampler)
			return res, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	res.Elapsed = time.Since(start)
	close(stopSampler)
	<-samplerDone
	res.EventsPerSec = float64(events) / res.Elapsed.Seconds()
	res.RSSAfterBytes = procStatus("VmRSS")
	res.RSSMaxSampledBytes = max(maxRSS.Load(), res.RSSAfterBytes)
	res.PeakRSSBytes = procStatus("VmHWM")
	runtime.GC()
	res.HeapAfterBytes = heapInuse()
	res.HeapSettledBytes = res.HeapAfterBytes
	if wait {
		if res.HeapSettledBytes, err = settle(ctx); err != nil {
			return res, err
		}
	}
	res.RSSSettledBytes = procStatus("VmRSS")
	logf("sync: %d events in %v: %.0f events/s; RSS %s -> %s, peak %s, settled %s; heap %s -> %s, settled %s",
		events, res.Elapsed.Round(time.Millisecond), res.EventsPerSec,
		mib(res.RSSBeforeBytes), mib(res.RSSAfterBytes), mib(res.PeakRSSBytes), mib(res.RSSSettledBytes),
		mib(int64(res.HeapBeforeBytes)), mib(int64(res.HeapAfterBytes)), mib(int64(res.HeapSettledBytes)))
	return res, nil
}

// settleMin is the smallest backlog for which SyncCatchUp waits for the
// stores to settle.
const settleMin = 5000

// fillBacklog writes a thread (writer creates it with member) and events
// posts of 1 KiB by writer into n, building and signing on one goroutine
// while n ingests the previous chunk.
func fillBacklog(ctx context.Context, n *node.Node, writer *crypto.Identity, member crypto.UserID, events int) (protocol.ThreadID, error) {
	t0 := time.Now().UnixMilli() - int64(events)
	gen, _, err := protocol.NewThread(writer, []crypto.UserID{member}, nil, protocol.DefaultPolicy(), []byte("bench"), nil, t0)
	if err != nil {
		return protocol.ThreadID{}, err
	}
	ts, _, err := protocol.NewThreadState(gen)
	if err != nil {
		return protocol.ThreadID{}, err
	}
	th := ts.ID
	ring := protocol.KeyRing{}
	if _, err := protocol.UnwrapKeys(ring, gen, writer); err != nil {
		return th, err
	}
	if r, err := n.Ingest(ctx, [][]byte{gen.Encode(nil)}); err != nil || r.Accepted != 1 {
		return th, fmt.Errorf("ingesting the genesis: %+v %v", r, err)
	}
	data := make([]byte, payloadSize)
	rand.Read(data)
	const chunk = 512
	chunks := make(chan [][]byte, 2)
	buildErr := make(chan error, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(chunks)
		var cur [][]byte
		for i := range events {
			ev, err := protocol.NewPost(ts, writer, ring, []byte("pub"), nil, data, t0+int64(i+1))
			if err != nil {
				buildErr <- err
				return
			}
			// One writer: the parents are the current heads.
			parents := make([]protocol.EventMeta, 0, len(ev.Parents))
			for _, p := range ev.Parents {
				for _, h := range ts.Heads {
					if h.ID == p {
						parents = append(parents, h)
					}
				}
			}
			meta, err := ts.Validate(ev, parents)
			if err != nil {
				buildErr <- fmt.Errorf("post %d: %w", i, err)
				return
			}
			ts.Apply(ev, meta)
			cur = append(cur, ev.Encode(nil))
			if len(cur) == chunk || i == events-1 {
				select {
				case chunks <- cur:
				case <-stop:
					return
				}
				cur = nil
			}
		}
	}()
	total := 0
	for c := range chunks {
		r, err := n.Ingest(ctx, c)
		if err != nil {
			return th, err
		}
		if r.Accepted != len(c) {
			return th, fmt.Errorf("replica A accepted %d of %d events: %+v", r.Accepted, len(c), r)
		}
		total += len(c)
	}
	select {
	case err := <-buildErr:
		return th, err
	default:
	}
	if total != events {
		return th, fmt.Errorf("built %d of %d events", total, events)
	}
	return th, nil
}

// procStatus returns a "kB" field of /proc/self/status in bytes (0 if it
// cannot be read).
func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0
		}
		v, _ := strconv.ParseInt(fields[0], 10, 64)
		return v << 10
	}
	return 0
}

// settle waits (at most 60s) until the heap in use after a GC has not
// shrunk for 8s, that is until the stores' background compactions are done,
// and returns it.
func settle(ctx context.Context) (uint64, error) {
	prev := heapInuse()
	steady := 0
	for start := time.Now(); time.Since(start) < 60*time.Second && steady < 8; {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Second):
		}
		runtime.GC()
		h := heapInuse()
		if h+2<<20 >= prev {
			steady++
		} else {
			steady = 0
		}
		prev = min(prev, h)
	}
	return prev, nil
}

func heapInuse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
