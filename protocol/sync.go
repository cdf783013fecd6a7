package protocol

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/weftnet/weft/crypto"
)

// Anti-entropy sync
//
// Two replicas reconcile the threads they both replicate over one stream of
// SyncProtocolID. The initiator sends a Hello: its version, the
// InterestRefs of the users whose threads it wants, and a digest of the
// version vector of every thread it has, each thread named by its ThreadRef.
// Refs are hashes, so a peer that does not already know a thread or a user
// learns nothing from them. The responder answers with Vectors (see Offer):
// its version vector of every thread that differs, or that the initiator
// lacks but is interested in. For each of those the initiator sends a
// Request with the ranges it lacks (VersionVector.Missing) and the
// responder streams the events in Batches, in causal order, the last batch
// of each answer marked Last. The receiver of batches grants Credit; a
// sender sends no more batches than it has been granted. The initiator
// sends Done when it has no more requests, and the responder Done when it
// has answered them all. Either side may abort with a SyncError. Sync is a
// pull: a replica that has events its peer lacks delivers them when the peer
// syncs with it (both ends initiate periodically).
//
// Every message is one frame: uvarint(length of the rest) || type byte ||
// body, encoded with the conventions of the event encoding (minimal
// uvarints, fixed 32-byte IDs, length-prefixed bytes, sorted distinct
// lists). Decoding is canonical: a decoded frame re-encodes to the same
// bytes.

// SyncProtocolID is the libp2p protocol of anti-entropy sync.
const SyncProtocolID = "/weft/sync/1.0.0"

// SyncVersion is the version carried in Hello; a peer with another version
// gets ErrSyncVersion. Version 2 added heads to Vectors and event IDs to
// Request, so that sync carries both versions of an equivocation (which
// sequence numbers alone cannot tell apart) and fills gaps by ID.
const SyncVersion = 2

// MaxSyncHeads bounds the heads of one thread in Vectors, and MaxSyncIDs
// the event IDs of one Request.
const (
	MaxSyncHeads = 256
	MaxSyncIDs   = 1024
)

// MaxSyncFrame bounds one frame. A Batch of events must fit (default 4 MiB
// of events, plus headroom).
const MaxSyncFrame = 16 << 20

// Errors of the sync protocol; they are wrapped with detail, so test with
// errors.Is.
var (
	ErrSyncVersion    = errors.New("sync protocol version mismatch")
	ErrSyncMalformed  = errors.New("malformed sync message")
	ErrSyncTooLarge   = errors.New("sync frame too large")
	ErrSyncUnexpected = errors.New("unexpected sync message") // for drivers: wrong message at this point
)

// ThreadRef names a thread in sync without showing its ID:
// SHA-256("weft-sync-thread-v1\x00" || t).
func ThreadRef(t ThreadID) [32]byte { return domainHash("weft-sync-thread-v1\x00", t[:]) }

// InterestRef names a user in sync without showing the user ID:
// SHA-256("weft-sync-interest-v1\x00" || u).
func InterestRef(u crypto.UserID) [32]byte { return domainHash("weft-sync-interest-v1\x00", u[:]) }

func domainHash(domain string, b []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(domain))
	h.Write(b)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// SyncMsg is one message of the sync protocol: *Hello, *Vectors, *Request,
// *Batch, *Credit, *Done or *SyncError.
type SyncMsg interface{ syncMsg() }

// Hello opens a sync: the initiator's version, the users whose threads it
// wants (its local users and the users it serves as a bridge), and a digest
// of every thread it has.
type Hello struct {
	Version uint32
	// Reciprocate asks the responder to pull from the initiator once it has
	// answered: the initiator has news (a thread just created or joined)
	// that the responder may not hear of by gossip.
	Reciprocate bool
	Interests   [][32]byte     // InterestRefs, sorted, distinct
	Threads     []ThreadDigest // sorted by Ref, distinct

	// foreign holds the body after the version of a Hello whose version is
	// not SyncVersion: it is not interpreted (another version may lay it
	// out differently) but is kept so that it re-encodes unchanged.
	foreign []byte
}

// ThreadDigest is one thread of a Hello.
type ThreadDigest struct {
	Ref    [32]byte // ThreadRef
	Digest [32]byte // ThreadDigestOf the thread's version vector and heads
}

// Vectors answers Hello: for each thread the responder has and the
// initiator either has with a different digest or does not have but is
// interested in, the responder's version vector.
type Vectors struct {
	Threads []ThreadVector // sorted by Thread, distinct
}

// ThreadVector is one thread of Vectors: the responder's version vector
// and heads. The heads tell apart two replicas whose vectors are equal but
// whose events are not (a writer that signed two events with one sequence
// number): a head the initiator lacks is asked for by ID.
type ThreadVector struct {
	Thread ThreadID
	VV     VersionVector
	Heads  []EventID // sorted, distinct, at most MaxSyncHeads
}

// Request asks for events of one thread: the ranges the requester lacks,
// and events it lacks by ID (heads it was shown, parents of events it
// holds). The responder answers an ID with the event and those of its
// ancestors the requester's ranges and version vector do not cover.
type Request struct {
	Thread ThreadID
	Ranges []SeqRange // sorted by writer, one per writer, 1 <= From <= To
	IDs    []EventID  // sorted, distinct, at most MaxSyncIDs
}

// Batch carries encoded events of one thread in causal order. Last marks
// the end of the answer to one Request.
type Batch struct {
	Thread ThreadID
	Events [][]byte // each non-empty
	Last   bool
}

// Credit lets the sender send N more batches (flow control).
type Credit struct{ N uint32 }

// Done is sent by the initiator when it has no more requests, and by the
// responder when it has answered all requests.
type Done struct{}

// SyncError aborts a sync with a reason. Message is the peer's text: quote
// it when showing it.
type SyncError struct {
	Code    uint16
	Message string
}

// SyncError codes.
const (
	SyncErrVersion   = 1
	SyncErrMalformed = 2
	SyncErrInternal  = 3
	SyncErrBusy      = 4
)

func (e *SyncError) Error() string {
	var name string
	switch e.Code {
	case SyncErrVersion:
		name = "version mismatch"
	case SyncErrMalformed:
		name = "malformed message"
	case SyncErrInternal:
		name = "internal error"
	case SyncErrBusy:
		name = "busy"
	default:
		name = fmt.Sprintf("code %d", e.Code)
	}
	if e.Message == "" {
		return "peer aborted sync: " + name
	}
	return fmt.Sprintf("peer aborted sync: %s: %q", name, e.Message)
}

func (*Hello) syncMsg()     {}
func (*Vectors) syncMsg()   {}
func (*Request) syncMsg()   {}
func (*Batch) syncMsg()     {}
func (*Credit) syncMsg()    {}
func (*Done) syncMsg()      {}
func (*SyncError) syncMsg() {}

// Frame types. Their numbers are part of the wire format.
const (
	syncHello   = 1
	syncVectors = 2
	syncRequest = 3
	syncBatch   = 4
	syncCredit  = 5
	syncDone    = 6
	syncError   = 7
)

// CheckVersion returns an error wrapping ErrSyncVersion if h's version is
// not SyncVersion.
func (h *Hello) CheckVersion() error {
	if h.Version != SyncVersion {
		return fmt.Errorf("%w: peer speaks version %d, this node %d", ErrSyncVersion, h.Version, SyncVersion)
	}
	return nil
}

// ThreadDigestOf is the digest of a replica of a thread: a hash of its
// version vector and its heads. Two replicas with the same events have
// the same digest, and the heads make it cover event identity, not only
// sequence numbers.
func ThreadDigestOf(vv VersionVector, heads []EventID) [32]byte {
	b := vv.AppendBinary([]byte("weft-thread-digest-v2\x00"))
	b = binary.AppendUvarint(b, uint64(len(heads)))
	for _, h := range heads {
		b = append(b, h[:]...)
	}
	return sha256.Sum256(b)
}

// NewHello builds a canonical Hello of this version: the InterestRefs of
// interests and the digest of every thread, sorted and de-duplicated.
func NewHello(interests []crypto.UserID, threads map[ThreadID][32]byte) *Hello {
	h := &Hello{Version: SyncVersion}
	for _, u := range interests {
		h.Interests = append(h.Interests, InterestRef(u))
	}
	slices.SortFunc(h.Interests, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	h.Interests = slices.Compact(h.Interests)
	for t, d := range threads {
		h.Threads = append(h.Threads, ThreadDigest{Ref: ThreadRef(t), Digest: d})
	}
	slices.SortFunc(h.Threads, func(a, b ThreadDigest) int { return bytes.Compare(a.Ref[:], b.Ref[:]) })
	return h
}

// LocalThread is what a responder knows of one of its threads.
type LocalThread struct {
	ID      ThreadID
	VV      VersionVector
	Heads   []EventID // sorted, distinct
	Members []crypto.UserID
}

// Digest is ThreadDigestOf the thread's vector and heads.
func (lt *LocalThread) Digest() [32]byte { return ThreadDigestOf(lt.VV, lt.Heads) }

// Offer returns, sorted by thread ID, the threads to answer a Hello with:
// those the initiator has with a different digest, and those it lacks but
// is interested in (any member's InterestRef in h.Interests). Threads the
// initiator has with the same digest, and threads it neither has nor is
// interested in, are left out (nodes only sync threads both replicate).
// The version vectors are copies of local's.
func Offer(h *Hello, local []LocalThread) []ThreadVector {
	theirs := make(map[[32]byte][32]byte, len(h.Threads))
	for _, d := range h.Threads {
		theirs[d.Ref] = d.Digest
	}
	interested := make(map[[32]byte]bool, len(h.Interests))
	for _, r := range h.Interests {
		interested[r] = true
	}
	var out []ThreadVector
	for i := range local {
		lt := &local[i]
		offer := false
		if d, ok := theirs[ThreadRef(lt.ID)]; ok {
			offer = d != lt.Digest()
		} else {
			offer = slices.ContainsFunc(lt.Members, func(u crypto.UserID) bool { return interested[InterestRef(u)] })
		}
		if offer {
			heads := slices.Clone(lt.Heads)
			if len(heads) > MaxSyncHeads {
				heads = heads[:MaxSyncHeads] // the rest come with their descendants
			}
			out = append(out, ThreadVector{Thread: lt.ID, VV: lt.VV.Clone(), Heads: heads})
		}
	}
	slices.SortStableFunc(out, func(a, b ThreadVector) int { return bytes.Compare(a.Thread[:], b.Thread[:]) })
	return slices.CompactFunc(out, func(a, b ThreadVector) bool { return a.Thread == b.Thread })
}

// WriteSyncMsg writes m as one frame, in a single Write call. It refuses
// (with ErrSyncMalformed) a message that a peer would reject as not
// canonical, and (with ErrSyncTooLarge) one whose frame exceeds
// MaxSyncFrame.
func WriteSyncMsg(w io.Writer, m SyncMsg) error {
	frame, err := appendSyncMsg(nil, m)
	if err != nil {
		return err
	}
	_, err = w.Write(frame)
	return err
}

// appendSyncMsg appends m's frame to dst; see WriteSyncMsg.
func appendSyncMsg(dst []byte, m SyncMsg) ([]byte, error) {
	if err := checkSyncMsg(m); err != nil {
		return dst, err
	}
	// Reserve room for the longest length prefix, encode the type and body
	// after it, then put the prefix right before them.
	start := len(dst)
	dst = append(dst, make([]byte, binary.MaxVarintLen64)...)
	bodyStart := len(dst)
	dst = appendSyncBody(dst, m)
	n := len(dst) - bodyStart
	if n > MaxSyncFrame {
		return dst[:start], fmt.Errorf("%w: %s frame of %d bytes exceeds %d", ErrSyncTooLarge, syncMsgName(m), n, MaxSyncFrame)
	}
	var pre [binary.MaxVarintLen64]byte
	l := binary.PutUvarint(pre[:], uint64(n))
	copy(dst[bodyStart-l:], pre[:l])
	return append(dst[:start], dst[bodyStart-l:]...), nil
}

func syncMsgName(m SyncMsg) string {
	switch m.(type) {
	case *Hello:
		return "Hello"
	case *Vectors:
		return "Vectors"
	case *Request:
		return "Request"
	case *Batch:
		return "Batch"
	case *Credit:
		return "Credit"
	case *Done:
		return "Done"
	case *SyncError:
		return "SyncError"
	}
	return fmt.Sprintf("%T", m)
}

func appendSyncBody(dst []byte, m SyncMsg) []byte {
	switch m := m.(type) {
	case *Hello:
		dst = append(dst, syncHello)
		dst = binary.AppendUvarint(dst, uint64(m.Version))
		if m.Version != SyncVersion && m.foreign != nil {
			return append(dst, m.foreign...)
		}
		if m.Reciprocate {
			dst = append(dst, 1)
		} else {
			dst = append(dst, 0)
		}
		dst = binary.AppendUvarint(dst, uint64(len(m.Interests)))
		for _, r := range m.Interests {
			dst = append(dst, r[:]...)
		}
		dst = binary.AppendUvarint(dst, uint64(len(m.Threads)))
		for _, d := range m.Threads {
			dst = append(dst, d.Ref[:]...)
			dst = append(dst, d.Digest[:]...)
		}
	case *Vectors:
		dst = append(dst, syncVectors)
		dst = binary.AppendUvarint(dst, uint64(len(m.Threads)))
		for _, tv := range m.Threads {
			dst = append(dst, tv.Thread[:]...)
			dst = tv.VV.AppendBinary(dst)
			dst = appendIDs(dst, tv.Heads)
		}
	case *Request:
		dst = append(dst, syncRequest)
		dst = append(dst, m.Thread[:]...)
		dst = binary.AppendUvarint(dst, uint64(len(m.Ranges)))
		for _, r := range m.Ranges {
			dst = append(dst, r.Writer[:]...)
			dst = binary.AppendUvarint(dst, r.From)
			dst = binary.AppendUvarint(dst, r.To)
		}
		dst = appendIDs(dst, m.IDs)
	case *Batch:
		dst = append(dst, syncBatch)
		dst = append(dst, m.Thread[:]...)
		last := byte(0)
		if m.Last {
			last = 1
		}
		dst = append(dst, last)
		dst = binary.AppendUvarint(dst, uint64(len(m.Events)))
		for _, ev := range m.Events {
			dst = appendBytes(dst, ev)
		}
	case *Credit:
		dst = append(dst, syncCredit)
		dst = binary.AppendUvarint(dst, uint64(m.N))
	case *Done:
		dst = append(dst, syncDone)
	case *SyncError:
		dst = append(dst, syncError)
		dst = binary.AppendUvarint(dst, uint64(m.Code))
		dst = appendBytes(dst, []byte(m.Message))
	}
	return dst
}

// checkSyncMsg checks the rules that make an encoding canonical, which the
// decoder enforces too: lists sorted and distinct, ranges well formed.
func checkSyncMsg(m SyncMsg) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrSyncMalformed, syncMsgName(m), fmt.Sprintf(format, args...))
	}
	switch m := m.(type) {
	case *Hello:
		if m == nil {
			return bad("nil")
		}
		if m.Version != SyncVersion && m.foreign != nil {
			return nil
		}
		for i := 1; i < len(m.Interests); i++ {
			if bytes.Compare(m.Interests[i-1][:], m.Interests[i][:]) >= 0 {
				return bad("interests not sorted and distinct")
			}
		}
		for i := 1; i < len(m.Threads); i++ {
			if bytes.Compare(m.Threads[i-1].Ref[:], m.Threads[i].Ref[:]) >= 0 {
				return bad("threads not sorted and distinct")
			}
		}
	case *Vectors:
		if m == nil {
			return bad("nil")
		}
		for i, tv := range m.Threads {
			if i > 0 && bytes.Compare(m.Threads[i-1].Thread[:], tv.Thread[:]) >= 0 {
				return bad("threads not sorted and distinct")
			}
			for w, s := range tv.VV {
				if s == 0 {
					return bad("thread %s: version vector entry of 0 for %s", tv.Thread, w)
				}
			}
			if err := checkIDs(tv.Heads, MaxSyncHeads); err != "" {
				return bad("thread %s: heads %s", tv.Thread, err)
			}
		}
	case *Request:
		if m == nil {
			return bad("nil")
		}
		for i, r := range m.Ranges {
			if i > 0 && bytes.Compare(m.Ranges[i-1].Writer[:], r.Writer[:]) >= 0 {
				return bad("ranges not sorted by writer and distinct")
			}
			if r.From == 0 || r.From > r.To {
				return bad("range %d..%d of %s", r.From, r.To, r.Writer)
			}
		}
		if err := checkIDs(m.IDs, MaxSyncIDs); err != "" {
			return bad("IDs %s", err)
		}
	case *Batch:
		if m == nil {
			return bad("nil")
		}
		for i, ev := range m.Events {
			if len(ev) == 0 {
				return bad("event %d is empty", i)
			}
		}
	case *Credit:
		if m == nil {
			return bad("nil")
		}
	case *Done:
		if m == nil {
			return bad("nil")
		}
	case *SyncError:
		if m == nil {
			return bad("nil")
		}
	default:
		return fmt.Errorf("%w: unknown message %T", ErrSyncMalformed, m)
	}
	return nil
}

// ReadSyncMsg reads one frame (use a *bufio.Reader). max bounds the frame
// (0 means MaxSyncFrame): a longer one gives ErrSyncTooLarge after reading
// only its length prefix. An unknown type, a body that is not canonical, or
// trailing bytes give ErrSyncMalformed. A clean end of stream before a frame
// gives io.EOF, one inside a frame io.ErrUnexpectedEOF. A Hello of another
// version decodes (its body after the version uninterpreted): compare with
// Hello.CheckVersion.
//
// The returned message does not alias any buffer of r; a Batch's events
// share one allocation, the frame's.
func ReadSyncMsg(r interface {
	io.Reader
	io.ByteReader
}, max int) (SyncMsg, error) {
	if max <= 0 {
		max = MaxSyncFrame
	}
	n, err := readFrameLen(r, max)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: empty frame", ErrSyncMalformed)
	}
	frame, err := readFull(r, n)
	if err != nil {
		return nil, err
	}
	return decodeSyncFrame(frame)
}

// readFrameLen reads a minimal uvarint length prefix, stopping as soon as it
// exceeds max.
func readFrameLen(r io.ByteReader, max int) (int, error) {
	var x uint64
	for i := 0; ; i++ {
		c, err := r.ReadByte()
		if err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if i == binary.MaxVarintLen64-1 && c > 1 {
			return 0, fmt.Errorf("%w: frame length overflows", ErrSyncTooLarge)
		}
		x |= uint64(c&0x7f) << (7 * i)
		if x > uint64(max) {
			return 0, fmt.Errorf("%w: frame of at least %d bytes, limit %d", ErrSyncTooLarge, x, max)
		}
		if c < 0x80 {
			if i > 0 && c == 0 {
				return 0, fmt.Errorf("%w: non-minimal frame length", ErrSyncMalformed)
			}
			return int(x), nil
		}
	}
}

// readFull reads n bytes, growing the buffer as data arrives, so a peer
// that announces a large frame and sends little costs little memory.
func readFull(r io.Reader, n int) ([]byte, error) {
	const chunk = 64 << 10
	buf := make([]byte, 0, min(n, chunk))
	for len(buf) < n {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), min(n, 2*cap(buf)))
			copy(nb, buf)
			buf = nb
		}
		m, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}

// decodeSyncFrame parses one frame's type byte and body. Events of a Batch
// alias b.
func decodeSyncFrame(b []byte) (SyncMsg, error) {
	r := reader{b: b, off: 1}
	var m SyncMsg
	switch b[0] {
	case syncHello:
		m = decodeHello(&r)
	case syncVectors:
		m = decodeVectors(&r)
	case syncRequest:
		m = decodeRequest(&r)
	case syncBatch:
		m = decodeBatch(&r)
	case syncCredit:
		n := r.uvarint()
		if n > 1<<32-1 {
			r.fail("credit out of range")
		}
		m = &Credit{N: uint32(n)}
	case syncDone:
		m = &Done{}
	case syncError:
		code := r.uvarint()
		if code > 1<<16-1 {
			r.fail("code out of range")
		}
		m = &SyncError{Code: uint16(code), Message: string(r.lenBytes())}
	default:
		return nil, fmt.Errorf("%w: unknown type %d", ErrSyncMalformed, b[0])
	}
	name := syncMsgName(m)
	if r.err != nil {
		return nil, fmt.Errorf("%w: %s: %s", ErrSyncMalformed, name, strings.TrimPrefix(r.err.Error(), ErrMalformed.Error()+": "))
	}
	if r.off != len(b) {
		return nil, fmt.Errorf("%w: %s: %d trailing bytes", ErrSyncMalformed, name, len(b)-r.off)
	}
	if err := checkSyncMsg(m); err != nil {
		return nil, err
	}
	return m, nil
}

func decodeHello(r *reader) *Hello {
	h := &Hello{}
	v := r.uvarint()
	if v > 1<<32-1 {
		r.fail("version out of range")
	}
	h.Version = uint32(v)
	if r.err == nil && h.Version != SyncVersion {
		h.foreign = bytes.Clone(r.b[r.off:])
		if h.foreign == nil {
			h.foreign = []byte{}
		}
		r.off = len(r.b)
		return h
	}
	switch r.byte() {
	case 0:
	case 1:
		h.Reciprocate = true
	default:
		r.fail("bad reciprocate flag")
	}
	if n := r.count(32, 0); n > 0 {
		h.Interests = make([][32]byte, n)
		for i := range h.Interests {
			r.fixed(h.Interests[i][:])
		}
	}
	if n := r.count(64, 0); n > 0 {
		h.Threads = make([]ThreadDigest, n)
		for i := range h.Threads {
			r.fixed(h.Threads[i].Ref[:])
			r.fixed(h.Threads[i].Digest[:])
		}
	}
	return h
}

func decodeVectors(r *reader) *Vectors {
	v := &Vectors{}
	if n := r.count(32+1, 0); n > 0 {
		v.Threads = make([]ThreadVector, n)
		for i := range v.Threads {
			r.fixed(v.Threads[i].Thread[:])
			v.Threads[i].VV, _ = r.versionVector()
			v.Threads[i].Heads = decodeIDs(r)
			if r.err != nil {
				break
			}
		}
	}
	return v
}

func decodeRequest(r *reader) *Request {
	q := &Request{}
	r.fixed(q.Thread[:])
	if n := r.count(32+2, 0); n > 0 {
		q.Ranges = make([]SeqRange, n)
		for i := range q.Ranges {
			r.fixed(q.Ranges[i].Writer[:])
			q.Ranges[i].From = r.uvarint()
			q.Ranges[i].To = r.uvarint()
		}
	}
	q.IDs = decodeIDs(r)
	return q
}

func decodeBatch(r *reader) *Batch {
	bt := &Batch{}
	r.fixed(bt.Thread[:])
	switch r.byte() {
	case 0:
	case 1:
		bt.Last = true
	default:
		r.fail("bad last flag")
	}
	if n := r.count(1, 0); n > 0 {
		bt.Events = make([][]byte, n)
		for i := range bt.Events {
			l := r.count(1, 0)
			if r.err != nil {
				break
			}
			// The frame was allocated for this message alone: alias it
			// rather than copy up to MaxSyncFrame bytes again.
			bt.Events[i] = r.b[r.off : r.off+l : r.off+l]
			r.off += l
		}
	}
	return bt
}

func appendIDs(dst []byte, ids []EventID) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	for _, id := range ids {
		dst = append(dst, id[:]...)
	}
	return dst
}

func decodeIDs(r *reader) []EventID {
	n := r.count(32, 0)
	if n == 0 || r.err != nil {
		return nil
	}
	ids := make([]EventID, n)
	for i := range ids {
		r.fixed(ids[i][:])
	}
	return ids
}

// checkIDs reports why a list of IDs is not canonical ("" if it is).
func checkIDs(ids []EventID, max int) string {
	if len(ids) > max {
		return fmt.Sprintf("%d of at most %d", len(ids), max)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i-1].Compare(ids[i]) >= 0 {
			return "not sorted and distinct"
		}
	}
	return ""
}
