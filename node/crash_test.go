package node_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/protocol"
)

// TestCrashRecovery kills a node that is writing with SIGKILL, over and
// over, on the same home, and checks after every kill that no acknowledged
// write was lost and that the store's indexes agree with its events.
//
// The writer is this test binary run again as a child process
// (TestCrashChild): several goroutines call SendMessage concurrently, so
// the node's group commit puts several messages in one transaction, and
// each acknowledged message is printed on stdout with the payload it was
// made from.

const (
	crashEnvHome  = "WEFT_CRASH_CHILD_HOME"
	crashEnvRound = "WEFT_CRASH_CHILD_ROUND"
	crashThreadFn = "crash-thread-id"

	crashRounds   = 20 // 15 killed after the first ack, 5 soon after the start
	crashWriters  = 4
	crashDataSize = 256
	// The child stops on its own after this long or this many messages
	// per writer, if nobody kills it.
	crashChildMaxTime = 20 * time.Second
	crashChildMaxMsgs = 50_000
)

// crashData derives a message's data from its payload name.
func crashData(p string) []byte {
	out := make([]byte, 0, crashDataSize)
	for i := 0; len(out) < crashDataSize; i++ {
		h := sha256.Sum256(binary.BigEndian.AppendUint32([]byte(p), uint32(i)))
		out = append(out, h[:]...)
	}
	return out[:crashDataSize]
}

func crashPrivate(p string) []byte { return []byte("private " + p) }

func crashOpen(home string) (*node.Node, error) {
	return node.New(context.Background(), node.Config{Home: home, Unencrypted: true})
}

// TestCrashChild is the writer of TestCrashRecovery; it does nothing unless
// run by it.
func TestCrashChild(t *testing.T) {
	home := os.Getenv(crashEnvHome)
	if home == "" {
		t.Skip("helper process of TestCrashRecovery")
	}
	if err := crashChild(home, os.Getenv(crashEnvRound)); err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(3)
	}
	fmt.Println("done")
}

func crashChild(home, round string) error {
	ctx := context.Background()
	n, err := crashOpen(home)
	if err != nil {
		return err
	}
	defer n.Close()
	var me crypto.UserID
	if ids := n.Identities(); len(ids) > 0 {
		me = ids[0].UserID
	} else if me, err = n.CreateIdentity(ctx, "writer"); err != nil {
		return err
	}
	u := n.As(me)
	tid, err := crashReadThread(home)
	if errors.Is(err, os.ErrNotExist) {
		if tid, err = u.CreateThread(ctx, nil, nil, []byte("crash"), nil, nil); err != nil {
			return err
		}
		err = crashWriteThread(home, tid)
	}
	if err != nil {
		return err
	}

	var outMu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, crashWriters+1)
	deadline := time.Now().Add(crashChildMaxTime)
	// Beside the writers, a deleter: it creates side threads, posts in
	// them and deletes them, printing each acknowledged deletion.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := 0; k < crashChildMaxMsgs && time.Now().Before(deadline); k++ {
			side, err := u.CreateThread(ctx, nil, nil, []byte("side"), nil, nil)
			if err != nil {
				errs <- fmt.Errorf("CreateThread (side): %w", err)
				return
			}
			for i := range 2 {
				p := fmt.Sprintf("SIDE-r%s-k%d-i%d", round, k, i)
				if _, err := u.SendMessage(ctx, side, []byte(p), nil, []byte(p)); err != nil {
					errs <- fmt.Errorf("SendMessage %s: %w", p, err)
					return
				}
			}
			if err := u.DeleteThread(ctx, side); err != nil {
				errs <- fmt.Errorf("DeleteThread: %w", err)
				return
			}
			outMu.Lock()
			_, err = os.Stdout.WriteString("deleted " + side.String() + "\n")
			outMu.Unlock()
			if err != nil {
				errs <- err
				return
			}
		}
	}()
	for g := 0; g < crashWriters; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := 0; c < crashChildMaxMsgs && time.Now().Before(deadline); c++ {
				p := fmt.Sprintf("r%s-g%d-c%d", round, g, c)
				mid, err := u.SendMessage(ctx, tid, []byte(p), crashPrivate(p), crashData(p))
				if err != nil {
					errs <- fmt.Errorf("SendMessage %s: %w", p, err)
					return
				}
				// One write per line: the parent sees it at once.
				outMu.Lock()
				_, err = os.Stdout.WriteString("ack " + mid.String() + " " + p + "\n")
				outMu.Unlock()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func crashReadThread(home string) (protocol.ThreadID, error) {
	b, err := os.ReadFile(filepath.Join(home, crashThreadFn))
	if err != nil {
		return protocol.ThreadID{}, err
	}
	return protocol.ParseThreadID(strings.TrimSpace(string(b)))
}

// crashWriteThread records the thread ID durably: temp file, fsync,
// rename, fsync of the directory.
func crashWriteThread(home string, tid protocol.ThreadID) error {
	tmp := filepath.Join(home, crashThreadFn+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(tid.String() + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(home, crashThreadFn)); err != nil {
		return err
	}
	d, err := os.Open(home)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// crashAck is one acknowledged message.
type crashAck struct {
	id      protocol.EventID
	payload string
	round   int
}

func TestCrashRecovery(t *testing.T) {
	if os.Getenv(crashEnvHome) != "" {
		t.Skip("running as the child")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	home := t.TempDir()
	start := time.Now()

	var acked []crashAck
	var deleted []protocol.ThreadID
	seen := map[protocol.EventID]bool{}
	for round := 0; round < crashRounds; round++ {
		delay := time.Duration(50+rng.IntN(351)) * time.Millisecond
		early := round%4 == 3
		if early {
			// Every fourth round the kill comes soon after the child
			// starts, whether or not it has written yet: while Badger
			// replays its log, or during the first commits.
			delay = time.Duration(rng.IntN(60)) * time.Millisecond
		}
		got, gone, how := crashRunChild(t, home, round, delay, early)
		deleted = append(deleted, gone...)
		for _, a := range got {
			if seen[a.id] {
				t.Fatalf("round %d: message %s acknowledged twice", round, a.id)
			}
			seen[a.id] = true
		}
		acked = append(acked, got...)
		vstart := time.Now()
		crashVerify(t, home, round, acked, deleted)
		after := "the first ack"
		if early {
			after = "the start"
		}
		t.Logf("round %2d: %s %v after %s; %d acks (%d in all), verified in %v",
			round, how, delay, after, len(got), len(acked), time.Since(vstart).Round(time.Millisecond))
		if t.Failed() {
			return
		}
	}
	t.Logf("%d rounds, %d acknowledged messages and %d acknowledged thread deletions, %v", crashRounds, len(acked), len(deleted), time.Since(start).Round(time.Millisecond))
}

// crashRunChild runs one writer, kills it delay after its first ack (or,
// if early, after it started), and returns what it acknowledged.
func crashRunChild(t *testing.T, home string, round int, delay time.Duration, early bool) ([]crashAck, []protocol.ThreadID, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), crashEnvHome+"="+home, fmt.Sprintf("%s=%d", crashEnvRound, round))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		io.Copy(io.Discard, stdout)
	}()

	var acks []crashAck
	var deleted []protocol.ThreadID
	var other []string
	parse := func(line string) {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "deleted" {
			tid, err := protocol.ParseThreadID(f[1])
			if err != nil {
				t.Errorf("round %d: bad deletion line %q: %v", round, line, err)
			}
			deleted = append(deleted, tid)
			return
		}
		if len(f) != 3 || f[0] != "ack" {
			other = append(other, line)
			return
		}
		id, err := protocol.ParseEventID(f[1])
		if err != nil {
			t.Errorf("round %d: bad ack line %q: %v", round, line, err)
			return
		}
		acks = append(acks, crashAck{id: id, payload: f[2], round: round})
	}

	killed := false
	kill := func() {
		if !killed {
			killed = true
			cmd.Process.Kill() // SIGKILL on Unix
		}
	}
	// Wait for the first ack (bounded), then let it write for delay.
	first := time.NewTimer(30 * time.Second)
	defer first.Stop()
	var timer <-chan time.Time
	if early {
		timer = time.After(delay)
	}
	open := true
	for open && !killed {
		select {
		case line, ok := <-lines:
			if !ok {
				open = false
				break
			}
			parse(line)
			if len(acks) == 1 && timer == nil {
				timer = time.After(delay)
			}
		case <-timer:
			kill()
		case <-first.C:
			if timer == nil {
				kill()
				t.Errorf("round %d: no ack within 30s", round)
			}
		}
	}
	// Whatever the child printed before it died was acknowledged.
	for line := range lines {
		parse(line)
	}
	werr := cmd.Wait()
	how := "killed"
	switch code := cmd.ProcessState.ExitCode(); {
	case killed && code == -1:
	case code == 0:
		how = "exited by itself"
	default:
		t.Errorf("round %d: child failed (%v; killed by us: %v): %s %v", round, werr, killed, stderr.String(), other)
	}
	return acks, deleted, how
}

// crashVerify opens the node in-process and checks it against what was
// acknowledged, then closes it.
func crashVerify(t *testing.T, home string, round int, acked []crashAck, deleted []protocol.ThreadID) {
	t.Helper()
	ctx := context.Background()
	n, err := crashOpen(home)
	if err != nil {
		t.Fatalf("round %d: reopening after the kill: %v", round, err)
	}
	defer func() {
		if err := n.Close(); err != nil {
			t.Errorf("round %d: Close: %v", round, err)
		}
	}()
	ids := n.Identities()
	if len(ids) != 1 {
		t.Fatalf("round %d: %d identities, want 1", round, len(ids))
	}
	me := ids[0].UserID
	u := n.As(me)
	tid, err := crashReadThread(home)
	if err != nil {
		t.Fatalf("round %d: thread ID: %v", round, err)
	}

	// Every acknowledged message is there, verified, with its data.
	checkMsg := func(m node.Message, p string) error {
		switch {
		case m.StatusCode != node.StatusOK:
			return fmt.Errorf("status %d (%s)", m.StatusCode, m.Status)
		case m.ThreadID != tid || m.Author != me:
			return fmt.Errorf("thread %s author %s", m.ThreadID, m.Author)
		case string(m.PublicMeta) != p:
			return fmt.Errorf("publicMeta %q, want %q", m.PublicMeta, p)
		case !bytes.Equal(m.PrivateMeta, crashPrivate(p)):
			return fmt.Errorf("privateMeta %q", m.PrivateMeta)
		case !bytes.Equal(m.Data, crashData(p)):
			return fmt.Errorf("data differs from the payload's")
		}
		return nil
	}
	// GetMessage is checked for the acks of this round and the one before,
	// and for all of them in the last round (to keep the test fast under
	// -race); ListMessages below checks every ack, every round.
	for _, a := range acked {
		if a.round < round-1 && round < crashRounds-1 {
			continue
		}
		m, err := u.GetMessage(ctx, a.id)
		if err != nil {
			t.Fatalf("round %d: acknowledged message %s (%s, round %d) lost: %v", round, a.id, a.payload, a.round, err)
		}
		if err := checkMsg(m, a.payload); err != nil {
			t.Fatalf("round %d: acknowledged message %s (%s): %v", round, a.id, a.payload, err)
		}
	}

	// The list agrees: everything stored is intact and listed once.
	list, err := u.ListMessages(ctx, tid, node.Page{})
	if err != nil {
		t.Fatalf("round %d: ListMessages: %v", round, err)
	}
	if list.TotalAvailable != len(list.Items) {
		t.Errorf("round %d: ListMessages: TotalAvailable %d, %d items", round, list.TotalAvailable, len(list.Items))
	}
	if list.TotalAvailable < len(acked) {
		t.Errorf("round %d: ListMessages: TotalAvailable %d < %d acknowledged", round, list.TotalAvailable, len(acked))
	}
	listed := map[protocol.EventID]bool{}
	var listedIDs []protocol.EventID
	for _, m := range list.Items {
		if listed[m.MessageID] {
			t.Errorf("round %d: message %s listed twice", round, m.MessageID)
		}
		listed[m.MessageID] = true
		listedIDs = append(listedIDs, m.MessageID)
		if err := checkMsg(m, string(m.PublicMeta)); err != nil {
			t.Errorf("round %d: listed message %s: %v", round, m.MessageID, err)
		}
	}
	for _, a := range acked {
		if !listed[a.id] {
			t.Errorf("round %d: acknowledged message %s (%s) not listed", round, a.id, a.payload)
		}
	}
	stats, err := n.Store().Stats(tid)
	if err != nil || stats.Messages != uint64(list.TotalAvailable) {
		t.Errorf("round %d: Stats = %+v, %v; want %d messages", round, stats, err, list.TotalAvailable)
	}
	if held, err := n.Store().AllHeld(); err != nil || len(held) != 0 {
		t.Errorf("round %d: %d threads with held events (%v), want none", round, len(held), err)
	}

	crashCheckDeletions(t, round, n, u, deleted)

	// The indexes agree with the events.
	visible, order := crashCheckIndexes(t, round, n.Store().DB(), tid)
	if visible != list.TotalAvailable {
		t.Errorf("round %d: the message list index has %d entries, TotalAvailable is %d", round, visible, list.TotalAvailable)
	}
	if !slices.Equal(order, listedIDs) {
		t.Errorf("round %d: ListMessages order differs from the list index order", round)
	}
}

// crashCheckIndexes scans a thread's raw keys (layout in storage/keys.go)
// and checks that every event has its metadata, order, sequence and
// locator entries and no index entry lacks its event; that each writer's
// sequence numbers run 1..n with no gap and its tip is n; and that the
// message list holds exactly the visible messages. It returns the size of
// the message list and its IDs in order.
func crashCheckIndexes(t *testing.T, round int, db *badger.DB, tid protocol.ThreadID) (int, []protocol.EventID) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("round %d: index: "+format, append([]any{round}, args...)...)
	}
	prefix := func(p byte) []byte { return append([]byte{p}, tid[:]...) }
	events := map[protocol.EventID]*protocol.Event{}
	metas := map[protocol.EventID]*protocol.EventMeta{}
	orders := map[protocol.EventID]protocol.Order{}
	orderKind := map[protocol.EventID]protocol.Kind{}
	seqs := map[crypto.UserID]map[uint64]protocol.EventID{}
	tips := map[crypto.UserID]protocol.Tip{}
	controls := map[protocol.EventID]bool{}
	states := map[protocol.EventID]*protocol.MessageState{}
	var list []protocol.Order
	err := db.View(func(txn *badger.Txn) error {
		scan := func(p byte, fn func(k, v []byte) error) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix(p), PrefetchValues: true})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				v, err := it.Item().ValueCopy(nil)
				if err != nil {
					return err
				}
				if err := fn(it.Item().KeyCopy(nil)[33:], v); err != nil {
					return fmt.Errorf("%c key: %w", p, err)
				}
			}
			return nil
		}
		toID := func(b []byte) (protocol.EventID, error) {
			var id protocol.EventID
			if len(b) != len(id) {
				return id, fmt.Errorf("%d-byte ID", len(b))
			}
			copy(id[:], b)
			return id, nil
		}
		return errors.Join(
			scan('e', func(k, v []byte) error {
				id, err := toID(k)
				if err != nil {
					return err
				}
				ev, err := protocol.Decode(v)
				if err != nil {
					return err
				}
				if ev.ID() != id {
					return fmt.Errorf("event under %s has ID %s", id, ev.ID())
				}
				events[id] = ev
				return nil
			}),
			scan('m', func(k, v []byte) error {
				id, err := toID(k)
				if err != nil {
					return err
				}
				m, err := protocol.DecodeEventMeta(v)
				if err != nil {
					return err
				}
				if m.ID != id {
					return fmt.Errorf("meta under %s is for %s", id, m.ID)
				}
				metas[id] = m
				return nil
			}),
			scan('o', func(k, v []byte) error {
				o, err := protocol.ParseOrderKey(k)
				if err != nil {
					return err
				}
				if len(v) != 1 {
					return fmt.Errorf("order value of %d bytes", len(v))
				}
				orders[o.ID] = o
				orderKind[o.ID] = protocol.Kind(v[0])
				return nil
			}),
			scan('s', func(k, v []byte) error {
				if len(k) != 32+8 {
					return fmt.Errorf("sequence key of %d bytes", len(k))
				}
				w := crypto.UserID(k[:32])
				seq := binary.BigEndian.Uint64(k[32:])
				id, err := toID(v)
				if err != nil {
					return err
				}
				if seqs[w] == nil {
					seqs[w] = map[uint64]protocol.EventID{}
				}
				seqs[w][seq] = id
				return nil
			}),
			scan('v', func(k, v []byte) error {
				if len(k) != 32 || len(v) != 8+32 {
					return fmt.Errorf("tip of %d/%d bytes", len(k), len(v))
				}
				id, _ := toID(v[8:])
				tips[crypto.UserID(k)] = protocol.Tip{Seq: binary.BigEndian.Uint64(v), ID: id}
				return nil
			}),
			scan('c', func(k, v []byte) error {
				id, err := toID(k)
				controls[id] = true
				return err
			}),
			scan('M', func(k, v []byte) error {
				id, err := toID(k)
				if err != nil {
					return err
				}
				ms, err := protocol.DecodeMessageState(v)
				if err != nil {
					return err
				}
				states[id] = ms
				return nil
			}),
			scan('g', func(k, v []byte) error {
				o, err := protocol.ParseOrderKey(k)
				list = append(list, o)
				return err
			}),
			func() error {
				// Every event is locatable.
				for id := range events {
					item, err := txn.Get(append([]byte{'i'}, id[:]...))
					if err != nil {
						return fmt.Errorf("locator of %s: %w", id, err)
					}
					v, err := item.ValueCopy(nil)
					if err != nil {
						return err
					}
					if !bytes.Equal(v, tid[:]) {
						return fmt.Errorf("locator of %s names thread %x", id, v)
					}
				}
				return nil
			}(),
		)
	})
	if err != nil {
		t.Fatalf("round %d: scanning the store: %v", round, err)
	}

	// e <-> m <-> o <-> s, one to one.
	seqOf := map[protocol.EventID]bool{}
	for w, bySeq := range seqs {
		for seq, id := range bySeq {
			if seqOf[id] {
				fail("event %s has two sequence entries", id)
			}
			seqOf[id] = true
			m := metas[id]
			if m == nil {
				fail("sequence entry %s/%d names %s, which has no metadata", w, seq, id)
				continue
			}
			if m.Writer != w || m.Seq != seq {
				fail("sequence entry %s/%d names %s, written by %s as %d", w, seq, id, m.Writer, m.Seq)
			}
		}
	}
	for id, ev := range events {
		m := metas[id]
		if m == nil {
			fail("event %s (%s) has no metadata", id, ev.Kind)
			continue
		}
		o, ok := orders[id]
		if !ok {
			fail("event %s (%s) has no order entry", id, ev.Kind)
		} else if o.Lamport != m.Lamport || orderKind[id] != m.Kind {
			fail("order entry of %s: Lamport %d kind %s, meta says %d %s", id, o.Lamport, orderKind[id], m.Lamport, m.Kind)
		}
		if !seqOf[id] {
			fail("event %s (%s) has no sequence entry", id, ev.Kind)
		}
		if m.Kind != ev.Kind || m.Writer != ev.Writer || m.Seq != ev.Seq || m.Lamport != ev.Lamport {
			fail("meta of %s disagrees with the event", id)
		}
		if ev.Kind.IsControl() != controls[id] {
			fail("event %s (%s): control index entry %v", id, ev.Kind, controls[id])
		}
		if ev.Kind == protocol.KindMessagePost && states[id] == nil {
			fail("message %s has no state", id)
		}
	}
	for id := range metas {
		if events[id] == nil {
			fail("metadata of %s without its event", id)
		}
	}
	for id := range orders {
		if events[id] == nil {
			fail("order entry of %s without its event", id)
		}
	}
	for id := range seqOf {
		if events[id] == nil {
			fail("sequence entry of %s without its event", id)
		}
	}
	for id := range controls {
		if events[id] == nil {
			fail("control entry of %s without its event", id)
		}
	}
	for id := range states {
		if events[id] == nil {
			fail("message state of %s without its event", id)
		}
	}

	// Per-writer sequences: 1..n, no gap, tip n.
	if len(tips) != len(seqs) {
		fail("%d tips for %d writers", len(tips), len(seqs))
	}
	for w, bySeq := range seqs {
		n := uint64(len(bySeq))
		for s := uint64(1); s <= n; s++ {
			if _, ok := bySeq[s]; !ok {
				fail("writer %s: %d events but no sequence number %d", w, n, s)
				break
			}
		}
		if tip := tips[w]; tip.Seq != n || tip.ID != bySeq[n] {
			fail("writer %s: tip %d %s, but sequence ends at %d %s", w, tip.Seq, tip.ID, n, bySeq[n])
		}
	}

	// The message list is the visible messages, in linear order.
	inList := map[protocol.EventID]bool{}
	for _, o := range list {
		inList[o.ID] = true
	}
	visible := 0
	for id, ms := range states {
		if ms.Visible() {
			visible++
			if !inList[id] {
				fail("visible message %s is not in the list index", id)
			}
		}
	}
	ids := make([]protocol.EventID, 0, len(list))
	for i, o := range list {
		ms := states[o.ID]
		if ms == nil || !ms.Visible() || ms.Order != o {
			fail("list entry %s does not name a visible message at its position", o.ID)
		}
		if i > 0 && !list[i-1].Less(o) {
			fail("list index out of order at %d", i)
		}
		ids = append(ids, o.ID)
	}
	if visible != len(list) {
		fail("%d visible messages, %d list entries", visible, len(list))
	}
	return len(list), ids
}

// crashCheckDeletions checks that every acknowledged deletion stands, and
// that every deleted thread (acknowledged or cut short by the kill) is a
// complete tombstone: no message state, list or acts keys, and every
// event without content.
func crashCheckDeletions(t *testing.T, round int, n *node.Node, u *node.User, acked []protocol.ThreadID) {
	t.Helper()
	for _, tid := range acked {
		if _, err := u.GetThread(context.Background(), tid); !errors.Is(err, node.ErrNotFound) {
			t.Errorf("round %d: acknowledged deletion of %s: GetThread = %v", round, tid, err)
		}
	}
	threads, err := n.Store().LoadThreads()
	if err != nil {
		t.Fatalf("round %d: LoadThreads: %v", round, err)
	}
	var gone []protocol.ThreadID
	for tid, ts := range threads {
		if !ts.Current.Deleted {
			continue
		}
		gone = append(gone, tid)
		ids, err := n.Store().OrderedIDs(tid)
		if err != nil {
			t.Fatalf("round %d: OrderedIDs(%s): %v", round, tid, err)
		}
		for _, id := range ids {
			ev, err := n.Store().Event(tid, id)
			if err != nil || ev.Content != nil {
				t.Errorf("round %d: deleted thread %s: event %s keeps content (%v)", round, tid, id, err)
			}
		}
	}
	if len(gone) < len(acked) {
		t.Errorf("round %d: %d deleted threads stored, %d deletions acknowledged", round, len(gone), len(acked))
	}
	err = n.Store().DB().View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if p := k[0]; (p == 'M' || p == 'g' || p == 'r') && len(k) >= 33 && slices.Contains(gone, protocol.ThreadID(k[1:33])) {
				return fmt.Errorf("%q key left in deleted thread %x", k[:1], k[1:33])
			}
			if v, err := it.Item().ValueCopy(nil); err == nil && bytes.Contains(v, []byte("SIDE-")) {
				for _, tid := range gone {
					if bytes.Contains(k, tid[:]) {
						return fmt.Errorf("a deleted thread's public metadata is left under %q", k[:1])
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("round %d: %v", round, err)
	}
}
