// Package bench measures weft against baselines measured in the same run.
//
// Gossip compares end-to-end message replication through weft with raw
// GossipSub on the same machine, in the same process, with the same N,
// topology (N nodes on 127.0.0.1 TCP, every pair connected), 1 KiB
// payloads, message counts and pacing:
//
//   - raw: N libp2p hosts with libp2p's default transports, security and
//     muxer (as weft's host has them), one topic, StrictNoSign, a
//     content-hash message ID, no validator, weft's queue sizes
//     (1024 outbound / 1024 validation / 4096 subscriber buffer);
//     a message is received when the topic subscription yields it.
//   - weft: N nodes with one local identity each and one thread with all N
//     users as members; a message is sent with SendMessage (sealed, signed,
//     durable before it returns, then gossiped) and received when the
//     receiving user's Subscribe yields its threadNewMessage event
//     (validated, stored and decrypted on the way).
//
// Each mode runs two phases after a warm-up (rounds of one message per
// node until a round reaches everyone, so all nodes are in the topic) and a
// settle pause (so the mesh forms):
//
//  1. Throughput: every node keeps a window of messages in flight (sent
//     and not yet delivered to all N-1 others) until Msgs messages are
//     delivered. MsgsPerSec counts messages that reached all N-1 others per
//     second, as DESIGN §10 does.
//  2. Latency: Rate messages per second in all (default 200, DESIGN §10's
//     pacing), the nodes taking turns; P50 and P99 are receive time minus
//     send time, the send time travelling in the payload (raw) or in
//     publicMeta (weft) as unix nanoseconds (one process, one clock).
//
// Every message must reach the N-1 other nodes: Delivered counts (message,
// receiver) pairs and Lost = Sent*(N-1) - Delivered after a bounded drain.
//
// SyncCatchUp measures anti-entropy: a fresh replica connects to one that
// holds a backlog and catches up through /weft/sync/1.0.0.
//
// Main is `weft bench`. Benchmarks wrapping both are in the package's tests:
//
//	go test -run='^$' -bench=. ./internal/bench
package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Goals (the replication issue's acceptance figures).
const (
	GoalThroughputRatio = 0.5    // weft msgs/s >= 0.5 x raw
	GoalP99Ratio        = 2.0    // weft p99 <= 2 x raw
	GoalSyncEventsPerS  = 10_000 // catch-up events/s
)

// Main runs `weft bench` with args (the arguments after "bench"), prints
// the figures, the ratios and a PASS or MISS per goal, and returns an error
// only when a measurement could not be run.
func Main(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("weft bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ns := fs.String("n", "2,5,10", "node counts for the gossip comparison, comma-separated")
	msgs := fs.Int("msgs", 0, "throughput-phase messages per gossip run (0: 10000 for N=2, 3000 for N=5, 1500 for N=10)")
	rate := fs.Float64("rate", 200, "offered rate of the paced latency phase, messages/s over all nodes")
	window := fs.Int("window", 32, "messages in flight per node in the throughput phase")
	syncs := fs.String("sync", "10000,100000", "backlog sizes for the sync catch-up, comma-separated")
	only := fs.String("only", "", "run only gossip or sync")
	runs := fs.Int("runs", 1, "gossip runs per N (raw then weft each time); the goals are judged on the medians")
	verbose := fs.Bool("v", false, "log progress to stderr")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: weft bench [-n 2,5,10] [-msgs N] [-runs 1] [-rate 200] [-window 32] [-sync 10000,100000] [-only gossip|sync] [-v]\n\n"+
			"Compares weft's replication with raw GossipSub measured in the same run, and\n"+
			"measures sync catch-up. Goals: weft msgs/s >= %.1f x raw, p99 <= %.0f x raw,\n"+
			"no loss; catch-up >= %d events/s.\n\n", GoalThroughputRatio, GoalP99Ratio, GoalSyncEventsPerS)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if *only != "" && *only != "gossip" && *only != "sync" {
		return fmt.Errorf("-only must be gossip or sync, not %q", *only)
	}
	nList, err := intList(*ns)
	if err != nil {
		return fmt.Errorf("-n: %w", err)
	}
	syncList, err := intList(*syncs)
	if err != nil {
		return fmt.Errorf("-sync: %w", err)
	}
	logf := func(string, ...any) {}
	if *verbose {
		logf = func(f string, a ...any) {
			fmt.Fprintf(stderr, "%s "+f+"\n", append([]any{time.Now().Format("15:04:05.000")}, a...)...)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	if *only != "sync" {
		fmt.Fprintf(stdout, "GOSSIP: 1 KiB payloads, N nodes in one process, full mesh on 127.0.0.1 TCP;\n"+
			"throughput with %d messages in flight per node, latency paced at %.0f msgs/s\n\n", *window, *rate)
		if *runs < 1 {
			return fmt.Errorf("-runs must be positive")
		}
		var rows []GossipResult
		for _, n := range nList {
			var raws, wefts []GossipResult
			for run := range *runs {
				raw, weft, err := GossipWith(ctx, GossipOptions{N: n, Msgs: *msgs, Rate: *rate, Window: *window, Logf: logf})
				if err != nil {
					return fmt.Errorf("gossip N=%d: %w", n, err)
				}
				raws, wefts = append(raws, raw), append(wefts, weft)
				if *runs > 1 {
					fmt.Fprintf(stdout, "N=%d run %d\n", n, run+1)
					printGossipTable(stdout, []GossipResult{raw, weft})
				}
			}
			raw, weft := median(raws), median(wefts)
			rows = append(rows, raw, weft)
			if *runs > 1 {
				fmt.Fprintf(stdout, "N=%d median of %d runs (sent, delivered and lost are totals)\n", n, *runs)
			} else {
				fmt.Fprintf(stdout, "N=%d\n", n)
			}
			printGossip(stdout, raw, weft)
			fmt.Fprintln(stdout)
		}
		fmt.Fprintln(stdout, "msgs/s: messages delivered to all N-1 others per second, throughput phase; CPU/deliv: process CPU per\n"+
			"(message, receiver) in that phase; p50/p99: paced phase, receive - send; send: the send call alone (weft:\n"+
			"SendMessage, durable on return); load: latency in the throughput phase (window full)")
		fmt.Fprintln(stdout)
		if len(nList) > 1 {
			fmt.Fprintln(stdout, "GOSSIP SUMMARY")
			printGossipTable(stdout, rows)
			fmt.Fprintln(stdout)
		}
	}
	if *only != "gossip" {
		fmt.Fprintln(stdout, "SYNC CATCH-UP: fresh replica B connects to A, which holds a thread of 1 KiB messages")
		var res []SyncResult
		for _, e := range syncList {
			r, err := SyncCatchUp(ctx, e, logf)
			if err != nil {
				return fmt.Errorf("sync %d: %w", e, err)
			}
			res = append(res, r)
		}
		printSync(stdout, res)
	}
	return nil
}

// median combines runs of one mode: the median of each rate and latency,
// the totals of the counts, the notes of the last run.
func median(rs []GossipResult) GossipResult {
	if len(rs) == 1 {
		return rs[0]
	}
	out := rs[len(rs)-1]
	out.Sent, out.Delivered, out.Lost, out.Duplicates, out.SendErrors, out.BadStatus = 0, 0, 0, 0, 0, 0
	for _, r := range rs {
		out.Sent += r.Sent
		out.Delivered += r.Delivered
		out.Lost += r.Lost
		out.Duplicates += r.Duplicates
		out.SendErrors += r.SendErrors
		out.BadStatus += r.BadStatus
	}
	mid := func(get func(GossipResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = get(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	dur := func(get func(GossipResult) time.Duration) time.Duration {
		return time.Duration(mid(func(r GossipResult) float64 { return float64(get(r)) }))
	}
	out.MsgsPerSec = mid(func(r GossipResult) float64 { return r.MsgsPerSec })
	out.Elapsed = dur(func(r GossipResult) time.Duration { return r.Elapsed })
	out.CPUPerDelivery = dur(func(r GossipResult) time.Duration { return r.CPUPerDelivery })
	out.P50 = dur(func(r GossipResult) time.Duration { return r.P50 })
	out.P99 = dur(func(r GossipResult) time.Duration { return r.P99 })
	out.SendP50 = dur(func(r GossipResult) time.Duration { return r.SendP50 })
	out.SendP99 = dur(func(r GossipResult) time.Duration { return r.SendP99 })
	out.LoadP50 = dur(func(r GossipResult) time.Duration { return r.LoadP50 })
	out.LoadP99 = dur(func(r GossipResult) time.Duration { return r.LoadP99 })
	return out
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.Atoi(strings.ReplaceAll(f, "_", ""))
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}

func passMiss(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

func printGossipTable(w io.Writer, rows []GossipResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "N\tmode\tsent\tdelivered\tlost\tmsgs/s\tCPU/deliv\tp50\tp99\tsend p50\tsend p99\tload p50\tload p99\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%.0f\t%dµs\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.N, r.Mode, r.Sent, r.Delivered, r.Lost, r.MsgsPerSec,
			r.CPUPerDelivery.Microseconds(), ms(r.P50), ms(r.P99), ms(r.SendP50), ms(r.SendP99), ms(r.LoadP50), ms(r.LoadP99))
	}
	tw.Flush()
}

func printGossip(w io.Writer, raw, weft GossipResult) {
	printGossipTable(w, []GossipResult{raw, weft})
	tput := weft.MsgsPerSec / raw.MsgsPerSec
	p99 := float64(weft.P99) / float64(raw.P99)
	fmt.Fprintf(w, "  weft/raw msgs/s %.2f  (goal >= %.1f)  %s\n", tput, GoalThroughputRatio, passMiss(tput >= GoalThroughputRatio))
	fmt.Fprintf(w, "  weft/raw p99    %.2f  (goal <= %.0f)    %s\n", p99, GoalP99Ratio, passMiss(p99 <= GoalP99Ratio))
	fmt.Fprintf(w, "  weft loss       %d  (goal 0)         %s\n", weft.Lost, passMiss(weft.Lost == 0 && weft.BadStatus == 0))
	if raw.Lost != 0 {
		fmt.Fprintf(w, "  note: raw GossipSub lost %d\n", raw.Lost)
	}
	for _, r := range []GossipResult{raw, weft} {
		if r.Duplicates > 0 || r.SendErrors > 0 || r.BadStatus > 0 {
			fmt.Fprintf(w, "  note: %s: %d duplicate deliveries, %d send errors, %d undecryptable\n", r.Mode, r.Duplicates, r.SendErrors, r.BadStatus)
		}
	}
	if weft.Notes != "" {
		fmt.Fprintf(w, "  weft %s\n", weft.Notes)
	}
}

func printSync(w io.Writer, res []SyncResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "events\telapsed\tevents/s\tRSS before\tRSS after\tpeak RSS\tRSS settled\theap before\theap after\theap settled\tgoal\t")
	hwmNote := false
	for _, r := range res {
		peak := mib(r.PeakRSSBytes)
		if !r.HWMReset {
			peak += "*"
			hwmNote = true
		}
		fmt.Fprintf(tw, "%d\t%v\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Events, r.Elapsed.Round(time.Millisecond), r.EventsPerSec,
			mib(r.RSSBeforeBytes), mib(r.RSSAfterBytes), peak, mib(r.RSSSettledBytes),
			mib(int64(r.HeapBeforeBytes)), mib(int64(r.HeapAfterBytes)), mib(int64(r.HeapSettledBytes)),
			passMiss(r.EventsPerSec >= GoalSyncEventsPerS))
	}
	tw.Flush()
	fmt.Fprintf(w, "  goal: >= %d events/s. RSS and heap are the whole process (A serving and B catching up): before B\n"+
		"  connects (A settled), when B holds everything, peak during the catch-up, and once the stores settled\n", GoalSyncEventsPerS)
	if hwmNote {
		fmt.Fprintln(w, "  * the high-water mark could not be reset: it includes building the backlog")
	}
}
