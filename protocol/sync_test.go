package protocol_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/protocol"
)

func syncID(b byte) (id [32]byte) {
	for i := range id {
		id[i] = b
	}
	return id
}

// syncSamples returns canonical messages covering every type and the
// corner cases of each encoding (empty lists, large numbers).
func syncSamples(tb testing.TB) []protocol.SyncMsg {
	tb.Helper()
	alice, bob, carol := uid(tb, "alice"), uid(tb, "bob"), uid(tb, "carol")
	vv := protocol.VersionVector{alice: 3, bob: 1 << 40, carol: 127}
	hello := protocol.NewHello([]crypto.UserID{carol, alice, bob, alice}, digestsOf(map[protocol.ThreadID]protocol.VersionVector{
		{1}: vv, {2}: {alice: 1}, {3}: {bob: 300},
	}))
	var events [][]byte
	_, evs := everyKind(tb)
	for _, ne := range evs {
		events = append(events, ne.ev.Encode(nil))
	}
	ranges := protocol.VersionVector{}.Missing(vv)
	return []protocol.SyncMsg{
		hello,
		&protocol.Hello{Version: protocol.SyncVersion},
		&protocol.Hello{Version: 7, Interests: [][32]byte{syncID(1)}},
		&protocol.Vectors{Threads: []protocol.ThreadVector{
			{Thread: protocol.ThreadID{1}, VV: vv},
			{Thread: protocol.ThreadID{2}, VV: protocol.VersionVector{bob: 1}},
			{Thread: protocol.ThreadID{0xff}, VV: protocol.VersionVector{}},
		}},
		&protocol.Vectors{},
		&protocol.Request{Thread: protocol.ThreadID{9}, Ranges: ranges},
		&protocol.Request{Thread: protocol.ThreadID{9}, Ranges: []protocol.SeqRange{{Writer: alice, From: 5, To: 5}}},
		&protocol.Request{Thread: protocol.ThreadID{9}},
		&protocol.Batch{Thread: protocol.ThreadID{4}, Events: events},
		&protocol.Batch{Thread: protocol.ThreadID{4}, Events: events[:1], Last: true},
		&protocol.Batch{Thread: protocol.ThreadID{4}, Last: true},
		&protocol.Credit{N: 0},
		&protocol.Credit{N: 1<<32 - 1},
		&protocol.Done{},
		&protocol.SyncError{Code: protocol.SyncErrBusy, Message: "try again later"},
		&protocol.SyncError{Code: 0xffff},
	}
}

func encodeSync(tb testing.TB, m protocol.SyncMsg) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := protocol.WriteSyncMsg(&buf, m); err != nil {
		tb.Fatalf("WriteSyncMsg(%T): %v", m, err)
	}
	return buf.Bytes()
}

func readSync(b []byte, max int) (protocol.SyncMsg, error) {
	return protocol.ReadSyncMsg(bufio.NewReader(bytes.NewReader(b)), max)
}

// sameMsg compares a decoded message with the one encoded, ignoring what
// the encoding does not keep: the difference between nil and empty
// version vectors, and the uninterpreted body of a foreign Hello.
func sameMsg(tb testing.TB, got, want protocol.SyncMsg) {
	tb.Helper()
	if h, ok := want.(*protocol.Hello); ok && h.Version != protocol.SyncVersion {
		g, ok := got.(*protocol.Hello)
		if !ok || g.Version != h.Version {
			tb.Fatalf("decoded %#v, want Hello version %d", got, h.Version)
		}
		return
	}
	if v, ok := want.(*protocol.Vectors); ok {
		g, ok := got.(*protocol.Vectors)
		if !ok || len(g.Threads) != len(v.Threads) {
			tb.Fatalf("decoded %#v, want %#v", got, want)
		}
		for i := range v.Threads {
			if g.Threads[i].Thread != v.Threads[i].Thread || g.Threads[i].VV.Compare(v.Threads[i].VV) != protocol.Equal {
				tb.Fatalf("decoded thread %d: %v, want %v", i, g.Threads[i], v.Threads[i])
			}
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		tb.Fatalf("decoded %#v\nwant %#v", got, want)
	}
}

func TestSyncRoundTripBuffer(t *testing.T) {
	msgs := syncSamples(t)
	var stream bytes.Buffer
	for _, m := range msgs {
		b := encodeSync(t, m)
		stream.Write(b)
		got, err := readSync(b, 0)
		if err != nil {
			t.Fatalf("ReadSyncMsg(%T): %v", m, err)
		}
		sameMsg(t, got, m)
		// Encode(Decode(x)) == x.
		if re := encodeSync(t, got); !bytes.Equal(re, b) {
			t.Fatalf("%T: re-encoding differs\n got %x\nwant %x", m, re, b)
		}
		// The length prefix is minimal and counts the rest of the frame.
		n, l := binary.Uvarint(b)
		if l <= 0 || int(n) != len(b)-l {
			t.Fatalf("%T: length prefix %d (%d bytes) for a frame of %d", m, n, l, len(b))
		}
	}
	// The same messages back to back on one stream, then a clean EOF.
	br := bufio.NewReader(&stream)
	for _, m := range msgs {
		got, err := protocol.ReadSyncMsg(br, 0)
		if err != nil {
			t.Fatalf("stream: ReadSyncMsg(%T): %v", m, err)
		}
		sameMsg(t, got, m)
	}
	if m, err := protocol.ReadSyncMsg(br, 0); err != io.EOF {
		t.Fatalf("after the last frame: %v, %v; want io.EOF", m, err)
	}
}

// oneWriteConn records the size of every Write.
type oneWriteConn struct{ writes []int }

func (c *oneWriteConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, len(p))
	return len(p), nil
}

func TestSyncSingleWritePerFrame(t *testing.T) {
	for _, m := range syncSamples(t) {
		var c oneWriteConn
		if err := protocol.WriteSyncMsg(&c, m); err != nil {
			t.Fatal(err)
		}
		if want := len(encodeSync(t, m)); len(c.writes) != 1 || c.writes[0] != want {
			t.Errorf("%T: writes %v, want one of %d bytes", m, c.writes, want)
		}
	}
}

func TestSyncRoundTripPipe(t *testing.T) {
	msgs := syncSamples(t)
	a, b := net.Pipe()
	defer b.Close()
	errc := make(chan error, 1)
	go func() {
		defer a.Close()
		for _, m := range msgs {
			if err := protocol.WriteSyncMsg(a, m); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	b.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(b)
	for _, m := range msgs {
		got, err := protocol.ReadSyncMsg(br, 0)
		if err != nil {
			t.Fatalf("ReadSyncMsg(%T): %v", m, err)
		}
		sameMsg(t, got, m)
	}
	if m, err := protocol.ReadSyncMsg(br, 0); err != io.EOF {
		t.Fatalf("after the writer closed: %v, %v; want io.EOF", m, err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("writer: %v", err)
	}
}

// TestSyncDialog runs one sync between two replicas over net.Pipe, as a
// driver would: Hello, Vectors, Request and Credit, Batches, Done. The
// initiator holds only the genesis of a thread the responder has more of.
func TestSyncDialog(t *testing.T) {
	f, evs := everyKind(t)
	full := f.ts.VersionVector()
	initVV := protocol.VersionVector{f.create.Writer: 1}
	ini, resp := net.Pipe()
	defer ini.Close()
	deadline := time.Now().Add(10 * time.Second)
	ini.SetDeadline(deadline)
	resp.SetDeadline(deadline)

	// The responder.
	errc := make(chan error, 1)
	go func() {
		defer resp.Close()
		errc <- func() error {
			r := bufio.NewReader(resp)
			m, err := protocol.ReadSyncMsg(r, 0)
			if err != nil {
				return err
			}
			h, ok := m.(*protocol.Hello)
			if !ok {
				return fmt.Errorf("%w: %T first", protocol.ErrSyncUnexpected, m)
			}
			if err := h.CheckVersion(); err != nil {
				return err
			}
			offer := protocol.Offer(h, []protocol.LocalThread{
				{ID: f.ts.ID, VV: full, Members: uids(t, "alice", "bob")},
				{ID: protocol.ThreadID{42}, VV: protocol.VersionVector{uid(t, "erin"): 1}, Members: uids(t, "erin")},
			})
			if err := protocol.WriteSyncMsg(resp, &protocol.Vectors{Threads: offer}); err != nil {
				return err
			}
			credit := uint32(0)
			for {
				m, err := protocol.ReadSyncMsg(r, 0)
				if err != nil {
					return err
				}
				switch m := m.(type) {
				case *protocol.Credit:
					credit += m.N
				case *protocol.Request:
					// Serve one event per batch, in linear order (the
					// fixture's own events are in causal order).
					var sel [][]byte
					for _, ne := range evs {
						for _, rg := range m.Ranges {
							if ne.ev.Writer == rg.Writer && ne.ev.Seq >= rg.From && ne.ev.Seq <= rg.To {
								sel = append(sel, ne.ev.Encode(nil))
							}
						}
					}
					for i, e := range sel {
						if credit == 0 {
							return fmt.Errorf("out of credit")
						}
						credit--
						if err := protocol.WriteSyncMsg(resp, &protocol.Batch{Thread: m.Thread, Events: [][]byte{e}, Last: i == len(sel)-1}); err != nil {
							return err
						}
					}
				case *protocol.Done:
					return protocol.WriteSyncMsg(resp, &protocol.Done{})
				default:
					return fmt.Errorf("%w: %T", protocol.ErrSyncUnexpected, m)
				}
			}
		}()
	}()

	// The initiator: interested in bob (a member), has the genesis only.
	w := bufio.NewReader(ini)
	if err := protocol.WriteSyncMsg(ini, protocol.NewHello(uids(t, "bob"), digestsOf(map[protocol.ThreadID]protocol.VersionVector{f.ts.ID: initVV}))); err != nil {
		t.Fatal(err)
	}
	m, err := protocol.ReadSyncMsg(w, 0)
	if err != nil {
		t.Fatal(err)
	}
	vecs, ok := m.(*protocol.Vectors)
	if !ok || len(vecs.Threads) != 1 || vecs.Threads[0].Thread != f.ts.ID {
		t.Fatalf("Vectors = %#v, want the one shared thread", m)
	}
	missing := initVV.Missing(vecs.Threads[0].VV)
	if err := protocol.WriteSyncMsg(ini, &protocol.Credit{N: 100}); err != nil {
		t.Fatal(err)
	}
	if err := protocol.WriteSyncMsg(ini, &protocol.Request{Thread: f.ts.ID, Ranges: missing}); err != nil {
		t.Fatal(err)
	}
	var got []protocol.EventID
	for {
		m, err := protocol.ReadSyncMsg(w, 0)
		if err != nil {
			t.Fatal(err)
		}
		b, ok := m.(*protocol.Batch)
		if !ok {
			t.Fatalf("got %T, want Batch", m)
		}
		for _, e := range b.Events {
			got = append(got, mustDecode(t, e).ID())
		}
		if b.Last {
			break
		}
	}
	if err := protocol.WriteSyncMsg(ini, &protocol.Done{}); err != nil {
		t.Fatal(err)
	}
	if m, err := protocol.ReadSyncMsg(w, 0); err != nil || !reflect.DeepEqual(m, &protocol.Done{}) {
		t.Fatalf("last message %#v, %v; want Done", m, err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("responder: %v", err)
	}
	var want []protocol.EventID
	for _, ne := range evs[1:] {
		want = append(want, ne.ev.ID())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("received %d events, want %d", len(got), len(want))
	}
}

// countingReader is a bufio-less ByteReader that counts what was consumed.
type countingReader struct {
	r *bytes.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

func TestSyncFrameTooLarge(t *testing.T) {
	// A real frame read with a smaller limit: only its prefix is consumed.
	big := encodeSync(t, &protocol.Batch{Thread: protocol.ThreadID{1}, Events: [][]byte{bytes.Repeat([]byte{7}, 5000)}})
	_, prefix := binary.Uvarint(big)
	cr := &countingReader{r: bytes.NewReader(big)}
	if m, err := protocol.ReadSyncMsg(cr, 4096); !errors.Is(err, protocol.ErrSyncTooLarge) {
		t.Fatalf("ReadSyncMsg with limit 4096 of a %d-byte frame: %v, %v; want ErrSyncTooLarge", len(big), m, err)
	}
	if cr.n != prefix {
		t.Fatalf("consumed %d bytes, want only the %d-byte length prefix", cr.n, prefix)
	}
	// The same frame fits the default limit.
	if _, err := readSync(big, 0); err != nil {
		t.Fatalf("default limit: %v", err)
	}

	// Announced lengths over the default limit, in prefixes of every size,
	// are refused without reading the body, and without allocating it.
	for _, n := range []uint64{protocol.MaxSyncFrame + 1, 1 << 30, 1<<63 + 5, 1<<64 - 1} {
		hdr := binary.AppendUvarint(nil, n)
		cr := &countingReader{r: bytes.NewReader(append(hdr, make([]byte, 1024)...))}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		m, err := protocol.ReadSyncMsg(cr, 0)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, protocol.ErrSyncTooLarge) {
			t.Fatalf("length %d: %v, %v; want ErrSyncTooLarge", n, m, err)
		}
		if cr.n > len(hdr) {
			t.Fatalf("length %d: consumed %d bytes, prefix is %d", n, cr.n, len(hdr))
		}
		if d := after.TotalAlloc - before.TotalAlloc; d > 64<<10 {
			t.Fatalf("length %d: allocated %d bytes", n, d)
		}
	}
	// A varint that never ends is refused too.
	if _, err := readSync(bytes.Repeat([]byte{0x80}, 20), 0); err == nil {
		t.Fatal("endless length prefix accepted")
	}

	// A frame that announces 15 MiB but sends a little costs a little.
	hdr := binary.AppendUvarint(nil, 15<<20)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := readSync(append(hdr, syncHelloType, 1, 0, 0), 0)
	runtime.ReadMemStats(&after)
	if err != io.ErrUnexpectedEOF {
		t.Fatalf("short frame: %v, want io.ErrUnexpectedEOF", err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Fatalf("a frame announcing 15 MiB with 4 bytes sent allocated %d bytes", d)
	}

	// Writing a frame over MaxSyncFrame fails, and writes nothing.
	var c oneWriteConn
	err = protocol.WriteSyncMsg(&c, &protocol.Batch{Thread: protocol.ThreadID{1}, Events: [][]byte{make([]byte, protocol.MaxSyncFrame)}})
	if !errors.Is(err, protocol.ErrSyncTooLarge) || len(c.writes) != 0 {
		t.Fatalf("writing an oversized Batch: %v, %d writes; want ErrSyncTooLarge and none", err, len(c.writes))
	}
}

const (
	syncHelloType   = 1
	syncVectorsType = 2
	syncRequestType = 3
	syncBatchType   = 4
	syncCreditType  = 5
)

// frame builds a frame from its type and body parts.
func frame(typ byte, parts ...[]byte) []byte {
	body := []byte{typ}
	for _, p := range parts {
		body = append(body, p...)
	}
	return append(binary.AppendUvarint(nil, uint64(len(body))), body...)
}

func uv(v uint64) []byte { return binary.AppendUvarint(nil, v) }

func TestSyncTruncated(t *testing.T) {
	for _, m := range syncSamples(t) {
		b := encodeSync(t, m)
		// Cut anywhere: the stream ends inside the frame.
		for i := 0; i < len(b); i++ {
			_, err := readSync(b[:i], 0)
			want := io.ErrUnexpectedEOF
			if i == 0 {
				want = io.EOF
			}
			if err != want {
				t.Fatalf("%T cut at %d of %d: %v, want %v", m, i, len(b), err, want)
			}
		}
		// Shorten the body and fix the length: the body is truncated.
		_, l := binary.Uvarint(b)
		body := b[l:]
		if h, ok := m.(*protocol.Hello); ok && h.Version != protocol.SyncVersion {
			continue // the rest of a foreign Hello is not interpreted
		}
		for i := 1; i < len(body); i++ {
			if got, err := readSync(frame(body[0], body[1:i]), 0); !errors.Is(err, protocol.ErrSyncMalformed) {
				t.Fatalf("%T body cut at %d of %d: %#v, %v; want ErrSyncMalformed", m, i, len(body), got, err)
			}
		}
		// Trailing bytes are malformed.
		if got, err := readSync(frame(body[0], body[1:], []byte{0}), 0); !errors.Is(err, protocol.ErrSyncMalformed) {
			t.Fatalf("%T with a trailing byte: %#v, %v; want ErrSyncMalformed", m, got, err)
		}
	}

	// A writer that dies inside a frame on a pipe: an error, not a hang.
	a, b := net.Pipe()
	defer b.Close()
	whole := encodeSync(t, syncSamples(t)[0])
	go func() {
		a.Write(whole[:len(whole)-3])
		a.Close()
	}()
	b.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := protocol.ReadSyncMsg(bufio.NewReader(b), 0); err != io.ErrUnexpectedEOF {
		t.Fatalf("pipe closed inside a frame: %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestSyncMalformed(t *testing.T) {
	alice, bob := uid(t, "alice"), uid(t, "bob")
	lo, hi := alice, bob
	if bytes.Compare(lo[:], hi[:]) > 0 {
		lo, hi = hi, lo
	}
	id1, id2 := syncID(1), syncID(2)
	cases := []struct {
		name  string
		frame []byte
	}{
		{"empty frame", []byte{0}},
		{"unknown type 0", frame(0)},
		{"unknown type 8", frame(8)},
		{"unknown type 255", frame(255, []byte{1, 2, 3})},
		{"non-minimal length", []byte{0x81, 0x00, syncCreditType}},
		{"non-minimal credit", frame(syncCreditType, []byte{0x80, 0x00})},
		{"credit over 32 bits", frame(syncCreditType, uv(1<<32))},
		{"done with a body", frame(6, []byte{0})},
		{"error code over 16 bits", frame(7, uv(1<<16), uv(0))},
		{"hello version over 32 bits", frame(syncHelloType, uv(1<<32), uv(0), uv(0))},
		{"hello interests unsorted", frame(syncHelloType, uv(2), []byte{0}, uv(2), id2[:], id1[:], uv(0))},
		{"hello interests duplicate", frame(syncHelloType, uv(2), []byte{0}, uv(2), id1[:], id1[:], uv(0))},
		{"hello threads unsorted", frame(syncHelloType, uv(2), []byte{0}, uv(0), uv(2), id2[:], id1[:], id1[:], id1[:])},
		{"hello threads duplicate", frame(syncHelloType, uv(2), []byte{0}, uv(0), uv(2), id1[:], id1[:], id1[:], id2[:])},
		{"hello count over the input", frame(syncHelloType, uv(2), []byte{0}, uv(1<<40), id1[:], uv(0))},
		{"vectors unsorted", frame(syncVectorsType, uv(2), id2[:], uv(0), uv(0), id1[:], uv(0), uv(0))},
		{"vectors duplicate", frame(syncVectorsType, uv(2), id1[:], uv(0), uv(0), id1[:], uv(0), uv(0))},
		{"vector entry of 0", frame(syncVectorsType, uv(1), id1[:], uv(1), alice[:], uv(0), uv(0))},
		{"vector unsorted", frame(syncVectorsType, uv(1), id1[:], uv(2), hi[:], uv(1), lo[:], uv(1), uv(0))},
		{"vector heads unsorted", frame(syncVectorsType, uv(1), id1[:], uv(0), uv(2), id2[:], id1[:])},
		{"vector heads duplicate", frame(syncVectorsType, uv(1), id1[:], uv(0), uv(2), id1[:], id1[:])},
		{"request from 0", frame(syncRequestType, id1[:], uv(1), alice[:], uv(0), uv(3), uv(0))},
		{"request from > to", frame(syncRequestType, id1[:], uv(1), alice[:], uv(4), uv(3), uv(0))},
		{"request unsorted", frame(syncRequestType, id1[:], uv(2), hi[:], uv(1), uv(1), lo[:], uv(1), uv(1), uv(0))},
		{"request same writer twice", frame(syncRequestType, id1[:], uv(2), lo[:], uv(1), uv(1), lo[:], uv(3), uv(4), uv(0))},
		{"request IDs unsorted", frame(syncRequestType, id1[:], uv(0), uv(2), id2[:], id1[:])},
		{"request IDs over the limit", frame(syncRequestType, id1[:], uv(0), uv(protocol.MaxSyncIDs+1), bytes.Repeat(id1[:], protocol.MaxSyncIDs+1))},
		{"batch last flag 2", frame(syncBatchType, id1[:], []byte{2}, uv(0))},
		{"batch empty event", frame(syncBatchType, id1[:], []byte{0}, uv(1), uv(0))},
		{"batch event over the input", frame(syncBatchType, id1[:], []byte{0}, uv(1), uv(10), []byte{1, 2})},
	}
	for _, c := range cases {
		m, err := readSync(c.frame, 0)
		if !errors.Is(err, protocol.ErrSyncMalformed) {
			t.Errorf("%s: %#v, %v; want ErrSyncMalformed", c.name, m, err)
		}
	}
	// The writer refuses what a reader would reject.
	refused := []protocol.SyncMsg{
		&protocol.Hello{Version: 1, Interests: [][32]byte{id2, id1}},
		&protocol.Hello{Version: 1, Threads: []protocol.ThreadDigest{{Ref: id1}, {Ref: id1}}},
		&protocol.Vectors{Threads: []protocol.ThreadVector{{Thread: protocol.ThreadID{2}}, {Thread: protocol.ThreadID{1}}}},
		&protocol.Vectors{Threads: []protocol.ThreadVector{{Thread: protocol.ThreadID{1}, VV: protocol.VersionVector{alice: 0}}}},
		&protocol.Request{Ranges: []protocol.SeqRange{{Writer: alice, From: 0, To: 1}}},
		&protocol.Request{Ranges: []protocol.SeqRange{{Writer: alice, From: 2, To: 1}}},
		&protocol.Request{Ranges: []protocol.SeqRange{{Writer: hi, From: 1, To: 1}, {Writer: lo, From: 1, To: 1}}},
		&protocol.Batch{Events: [][]byte{{}}},
		(*protocol.Done)(nil),
		nil,
	}
	for _, m := range refused {
		var c oneWriteConn
		if err := protocol.WriteSyncMsg(&c, m); !errors.Is(err, protocol.ErrSyncMalformed) || len(c.writes) != 0 {
			t.Errorf("WriteSyncMsg(%#v): %v, %d writes; want ErrSyncMalformed and none", m, err, len(c.writes))
		}
	}
}

func TestSyncHelloVersion(t *testing.T) {
	if err := protocol.NewHello(nil, nil).CheckVersion(); err != nil {
		t.Fatalf("NewHello().CheckVersion() = %v", err)
	}
	// A Hello of version 1 (before heads and IDs) or 3 decodes;
	// CheckVersion names both versions.
	for _, v := range []uint32{1, 3} {
		m, err := readSync(encodeSync(t, &protocol.Hello{Version: v, Interests: [][32]byte{syncID(3)}}), 0)
		if err != nil {
			t.Fatalf("reading a version %d Hello: %v", v, err)
		}
		h := m.(*protocol.Hello)
		err = h.CheckVersion()
		if !errors.Is(err, protocol.ErrSyncVersion) || !strings.Contains(err.Error(), fmt.Sprint(v)) || !strings.Contains(err.Error(), "2") {
			t.Fatalf("CheckVersion of version %d: %v; want ErrSyncVersion naming %d and 2", v, err, v)
		}
	}
	// Whatever another version puts after its number decodes and
	// re-encodes unchanged.
	odd := frame(syncHelloType, uv(3), []byte("a body laid out differently"))
	m, err := readSync(odd, 0)
	if err != nil {
		t.Fatalf("reading a version 2 Hello with another layout: %v", err)
	}
	if err := m.(*protocol.Hello).CheckVersion(); !errors.Is(err, protocol.ErrSyncVersion) {
		t.Fatalf("CheckVersion: %v", err)
	}
	if re := encodeSync(t, m); !bytes.Equal(re, odd) {
		t.Fatalf("foreign Hello re-encoded as %x, want %x", re, odd)
	}
}

func TestSyncErrorMessage(t *testing.T) {
	var err error = &protocol.SyncError{Code: protocol.SyncErrVersion, Message: "speak 1"}
	var se *protocol.SyncError
	if !errors.As(err, &se) || se.Code != protocol.SyncErrVersion {
		t.Fatalf("errors.As: %v", err)
	}
	if s := err.Error(); !strings.Contains(s, "version") || !strings.Contains(s, "speak 1") {
		t.Fatalf("Error() = %q", s)
	}
	if s := (&protocol.SyncError{Code: 99}).Error(); !strings.Contains(s, "99") {
		t.Fatalf("Error() of an unknown code = %q", s)
	}
}

func TestSyncRefs(t *testing.T) {
	alice := uid(t, "alice")
	tid := protocol.ThreadID(alice)
	want := sha256.Sum256(append([]byte("weft-sync-thread-v1\x00"), tid[:]...))
	if got := protocol.ThreadRef(tid); got != want {
		t.Errorf("ThreadRef = %x, want %x", got, want)
	}
	want = sha256.Sum256(append([]byte("weft-sync-interest-v1\x00"), alice[:]...))
	if got := protocol.InterestRef(alice); got != want {
		t.Errorf("InterestRef = %x, want %x", got, want)
	}
	if protocol.ThreadRef(tid) == protocol.InterestRef(alice) {
		t.Error("thread and interest refs of the same bytes collide")
	}
}

func TestNewHello(t *testing.T) {
	alice, bob := uid(t, "alice"), uid(t, "bob")
	threads := map[protocol.ThreadID]protocol.VersionVector{}
	for i := byte(0); i < 20; i++ {
		threads[protocol.ThreadID{i, 1}] = protocol.VersionVector{alice: uint64(i) + 1}
	}
	h := protocol.NewHello([]crypto.UserID{bob, alice, bob, alice}, digestsOf(threads))
	if h.Version != protocol.SyncVersion {
		t.Fatalf("version %d", h.Version)
	}
	if len(h.Interests) != 2 || !slices.Contains(h.Interests, protocol.InterestRef(alice)) || !slices.Contains(h.Interests, protocol.InterestRef(bob)) {
		t.Fatalf("interests %x", h.Interests)
	}
	if len(h.Threads) != len(threads) {
		t.Fatalf("%d threads, want %d", len(h.Threads), len(threads))
	}
	digests := map[[32]byte][32]byte{}
	for id, vv := range threads {
		digests[protocol.ThreadRef(id)] = protocol.ThreadDigestOf(vv, nil)
	}
	for _, d := range h.Threads {
		if digests[d.Ref] != d.Digest {
			t.Fatalf("thread %x: wrong digest", d.Ref)
		}
	}
	// Canonical: it survives the round trip unchanged (the writer and
	// reader both check sorting).
	m, err := readSync(encodeSync(t, h), 0)
	if err != nil {
		t.Fatal(err)
	}
	sameMsg(t, m, h)
}

func TestOffer(t *testing.T) {
	alice, bob, carol, dave := uid(t, "alice"), uid(t, "bob"), uid(t, "carol"), uid(t, "dave")
	vv := func(s uint64) protocol.VersionVector { return protocol.VersionVector{alice: s} }
	same := protocol.ThreadID{5}        // both have it, same digest
	differ := protocol.ThreadID{4}      // both have it, digests differ
	differLess := protocol.ThreadID{1}  // the initiator is ahead: still offered
	wanted := protocol.ThreadID{3}      // initiator lacks it, interested in carol
	unwanted := protocol.ThreadID{2}    // initiator lacks it, no interest
	wantedToo := protocol.ThreadID{0xf} // interested in a member other than the first
	local := []protocol.LocalThread{
		{ID: same, VV: vv(3), Members: []crypto.UserID{alice}},
		{ID: wantedToo, VV: vv(1), Members: []crypto.UserID{dave, bob}},
		{ID: differ, VV: vv(5), Members: []crypto.UserID{alice}},
		{ID: unwanted, VV: vv(2), Members: []crypto.UserID{dave}},
		{ID: wanted, VV: vv(2), Members: []crypto.UserID{alice, carol}},
		{ID: differLess, VV: vv(1), Members: []crypto.UserID{dave}},
	}
	h := protocol.NewHello([]crypto.UserID{carol, bob}, digestsOf(map[protocol.ThreadID]protocol.VersionVector{
		same: vv(3), differ: vv(4), differLess: vv(9), protocol.ThreadID{0xee}: vv(1),
	}))
	got := protocol.Offer(h, local)
	var ids []protocol.ThreadID
	for _, tv := range got {
		ids = append(ids, tv.Thread)
	}
	want := []protocol.ThreadID{differLess, wanted, differ, wantedToo}
	if !slices.Equal(ids, want) {
		t.Fatalf("Offer = %v, want %v", ids, want)
	}
	for _, tv := range got {
		for _, lt := range local {
			if lt.ID == tv.Thread && tv.VV.Compare(lt.VV) != protocol.Equal {
				t.Errorf("thread %s offered with %v, want %v", tv.Thread, tv.VV, lt.VV)
			}
		}
	}
	// The answer is a valid Vectors message.
	if _, err := readSync(encodeSync(t, &protocol.Vectors{Threads: got}), 0); err != nil {
		t.Fatal(err)
	}
	// The offered vectors are copies.
	got[0].VV[alice] = 100
	if local[5].VV[alice] != 1 {
		t.Error("Offer returned the caller's version vector, not a copy")
	}
	// Nothing to offer to a peer that has everything or wants nothing.
	if o := protocol.Offer(protocol.NewHello(nil, nil), local); len(o) != 0 {
		t.Errorf("Offer to an uninterested peer with no threads = %v", o)
	}
	if o := protocol.Offer(h, nil); len(o) != 0 {
		t.Errorf("Offer of no threads = %v", o)
	}
}

// digestsOf is the Hello digests of threads whose replicas have no heads
// to tell apart (tests of the message layer).
func digestsOf(threads map[protocol.ThreadID]protocol.VersionVector) map[protocol.ThreadID][32]byte {
	out := make(map[protocol.ThreadID][32]byte, len(threads))
	for t, vv := range threads {
		out[t] = protocol.ThreadDigestOf(vv, nil)
	}
	return out
}
