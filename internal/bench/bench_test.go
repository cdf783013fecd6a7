package bench_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/bench"
)

// The figures of the replication issue come from the benchmarks:
//
//	go test -run='^$' -bench=. -timeout=20m ./internal/bench
//
// (or `weft bench`). The tests below only check, quickly, that the
// harness runs and that nothing is lost.

// TestWeftBench runs `weft bench` with the arguments in $WEFT_BENCH, until
// the command is wired in cmd/weft:
//
//	WEFT_BENCH='-n 2,5,10 -v' go test -run=TestWeftBench -timeout=30m ./internal/bench
func TestWeftBench(t *testing.T) {
	args, ok := os.LookupEnv("WEFT_BENCH")
	if !ok {
		t.Skip("set WEFT_BENCH to the arguments of weft bench")
	}
	if err := bench.Main(strings.Fields(args), os.Stdout, os.Stderr); err != nil {
		t.Fatal(err)
	}
}

func TestGossipSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raw, weft, err := bench.GossipWith(ctx, bench.GossipOptions{N: 2, Msgs: 50, LatencyMsgs: 20, Rate: 400, Settle: -1, Drain: 5 * time.Second, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []bench.GossipResult{raw, weft} {
		if r.Sent != 70 || r.Lost != 0 || r.Delivered != 70 || r.BadStatus != 0 {
			t.Errorf("%s: %+v", r.Mode, r)
		}
		if r.MsgsPerSec <= 0 || r.P50 <= 0 || r.P99 < r.P50 {
			t.Errorf("%s: implausible figures %+v", r.Mode, r)
		}
	}
}

func TestSyncSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := bench.SyncCatchUp(ctx, 500, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if r.Events != 500 || r.EventsPerSec <= 0 || r.RSSAfterBytes <= 0 {
		t.Errorf("%+v", r)
	}
}

func TestMainFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if err := bench.Main([]string{"-only", "nope"}, &out, &errb); err == nil {
		t.Error("bad -only accepted")
	}
	if err := bench.Main([]string{"-n", "2,x"}, &out, &errb); err == nil {
		t.Error("bad -n accepted")
	}
	if err := bench.Main([]string{"-only", "sync", "-sync", "200"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "events/s") {
		t.Errorf("output:\n%s", out.String())
	}
}

func benchGossip(b *testing.B, raw bool) {
	for _, n := range []int{2, 5} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			var r bench.GossipResult
			for b.Loop() {
				rr, wr, err := bench.GossipWith(context.Background(), bench.GossipOptions{N: n, Raw: raw, Weft: !raw})
				if err != nil {
					b.Fatal(err)
				}
				r = wr
				if raw {
					r = rr
				}
			}
			b.ReportMetric(r.MsgsPerSec, "msgs/s")
			b.ReportMetric(float64(r.P50)/1e6, "p50-ms")
			b.ReportMetric(float64(r.P99)/1e6, "p99-ms")
			b.ReportMetric(float64(r.Lost), "lost")
		})
	}
}

// BenchmarkGossipRaw is raw GossipSub (see the package doc).
func BenchmarkGossipRaw(b *testing.B) { benchGossip(b, true) }

// BenchmarkGossipWeft is weft's replication of the same workload.
func BenchmarkGossipWeft(b *testing.B) { benchGossip(b, false) }

// BenchmarkSyncCatchUp is a fresh replica catching up 10k (and, without
// -short, 100k) 1 KiB messages.
func BenchmarkSyncCatchUp(b *testing.B) {
	sizes := []int{10_000, 100_000}
	if testing.Short() {
		sizes = sizes[:1]
	}
	for _, events := range sizes {
		b.Run(fmt.Sprintf("events=%d", events), func(b *testing.B) {
			var r bench.SyncResult
			for b.Loop() {
				var err error
				r, err = bench.SyncCatchUp(context.Background(), events, nil)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(r.EventsPerSec, "events/s")
			b.ReportMetric(float64(r.PeakRSSBytes)/(1<<20), "peakRSS-MiB")
			b.ReportMetric(float64(r.RSSAfterBytes-r.RSSBeforeBytes)/(1<<20), "RSSgrowth-MiB")
			b.ReportMetric(float64(r.HeapAfterBytes)/(1<<20), "heapAfter-MiB")
		})
	}
}
