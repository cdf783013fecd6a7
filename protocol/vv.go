package protocol

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/weftnet/weft/crypto"
)

// VersionVector maps each writer of a thread to the highest sequence number
// held with no gap below it. Writers with no events are absent (never 0).
type VersionVector map[crypto.UserID]uint64

// Relation is how two version vectors compare.
type Relation int

// Relations returned by Compare.
const (
	Equal      Relation = iota
	Before              // the receiver lacks events the other has, and has nothing the other lacks
	After               // the reverse of Before
	Concurrent          // each has events the other lacks
)

func (r Relation) String() string {
	return [...]string{"equal", "before", "after", "concurrent"}[r]
}

// Clone returns a copy of v.
func (v VersionVector) Clone() VersionVector {
	if v == nil {
		return nil
	}
	c := make(VersionVector, len(v))
	for w, s := range v {
		c[w] = s
	}
	return c
}

// Merge raises every entry of v to at least o's.
func (v VersionVector) Merge(o VersionVector) {
	for w, s := range o {
		if s > v[w] {
			v[w] = s
		}
	}
}

// Compare tells how v relates to o.
func (v VersionVector) Compare(o VersionVector) Relation {
	less, more := false, false
	for w, s := range v {
		if s > o[w] {
			more = true
		}
	}
	for w, s := range o {
		if s > v[w] {
			less = true
		}
	}
	switch {
	case less && more:
		return Concurrent
	case less:
		return Before
	case more:
		return After
	}
	return Equal
}

// SeqRange is the events From..To (inclusive) of one writer.
type SeqRange struct {
	Writer   crypto.UserID
	From, To uint64
}

// Missing returns, sorted by writer, the ranges of events o holds and v
// lacks: what a replica at v must fetch from one at o.
func (v VersionVector) Missing(o VersionVector) []SeqRange {
	var out []SeqRange
	for w, s := range o {
		if have := v[w]; s > have {
			out = append(out, SeqRange{Writer: w, From: have + 1, To: s})
		}
	}
	slices.SortFunc(out, func(a, b SeqRange) int { return bytes.Compare(a.Writer[:], b.Writer[:]) })
	return out
}

// Writers returns v's writers in ascending order.
func (v VersionVector) Writers() []crypto.UserID {
	ws := make([]crypto.UserID, 0, len(v))
	for w := range v {
		ws = append(ws, w)
	}
	slices.SortFunc(ws, func(a, b crypto.UserID) int { return bytes.Compare(a[:], b[:]) })
	return ws
}

// AppendBinary appends v's canonical encoding: a count, then (writer,
// sequence) pairs in ascending writer order.
func (v VersionVector) AppendBinary(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	for _, w := range v.Writers() {
		dst = append(dst, w[:]...)
		dst = binary.AppendUvarint(dst, v[w])
	}
	return dst
}

// Digest is a hash of v's canonical encoding; two replicas with the same
// events in a thread have the same digest.
func (v VersionVector) Digest() [32]byte { return sha256.Sum256(v.AppendBinary(nil)) }

// DecodeVersionVector parses AppendBinary's output, which must be canonical.
func DecodeVersionVector(b []byte) (VersionVector, error) {
	r := reader{b: b}
	v, err := r.versionVector()
	if err != nil {
		return nil, err
	}
	if r.off != len(b) {
		return nil, fmt.Errorf("%w: version vector: %d trailing bytes", ErrMalformed, len(b)-r.off)
	}
	return v, nil
}

func (r *reader) versionVector() (VersionVector, error) {
	n := r.count(33, 0)
	v := make(VersionVector, n)
	var prev crypto.UserID
	for i := 0; i < n; i++ {
		var w crypto.UserID
		r.fixed(w[:])
		s := r.uvarint()
		if r.err != nil {
			break
		}
		if s == 0 {
			r.fail("version vector entry of 0")
		}
		if i > 0 && bytes.Compare(prev[:], w[:]) >= 0 {
			r.fail("version vector not sorted")
		}
		prev = w
		v[w] = s
	}
	if r.err != nil {
		return nil, r.err
	}
	return v, nil
}
