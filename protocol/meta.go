package protocol

import (
	"encoding/binary"
	"fmt"

	"github.com/weftnet/weft/crypto"
)

// EventMeta is what the validity rules derived about an accepted event.
// It is local bookkeeping that a replica keeps beside the event; it is never
// sent, since every replica derives the same from the same events.
type EventMeta struct {
	ID     EventID
	Kind   Kind
	Writer crypto.UserID // the key that signed: the user's own, or a device's
	// Author is the member the writer writes as, when the writer is a
	// device (from its certificate, inherited along its chain); zero when
	// the writer is the user's own key. See User.
	Author  crypto.UserID
	Seq     uint64
	Lamport uint64
	Time    int64
	Epoch   uint32
	// KeyRef is the event that introduced the key this event's content is
	// sealed with (the ThreadCreate for epoch 0).
	KeyRef EventID
	// Target is the message a MessageUpdate or MessageDelete acts on; for a
	// MessagePost it is the post itself.
	Target EventID
	// Control lists the latest control events in this event's causal past,
	// the event itself not included: the maximal ones, sorted by ID. The
	// control events an event was judged against are exactly these and
	// their control ancestors (ThreadState.snapshotFor), which stays exact
	// when a writer signs two events with one sequence number.
	Control []EventID
	// LegacyControl is what metadata of version 1 kept instead of Control:
	// each writer of control events in the causal past (the event itself
	// included) and the highest sequence number of such an event. It is
	// exact for the stores it comes from, which held no equivocations.
	LegacyControl VersionVector
	// Run counts the events of the event's user in a row, this one
	// included, that have seen nothing new of other users (see
	// Policy.MaxRun); 0 in version-1 metadata (not known, counts as 0).
	Run uint64
}

// Order returns the event's position in the linear order.
func (m *EventMeta) Order() Order { return Order{Lamport: m.Lamport, ID: m.ID} }

// User returns the member the event was written as.
func (m *EventMeta) User() crypto.UserID {
	if m.Author.IsZero() {
		return m.Writer
	}
	return m.Author
}

// metaVersion 2 keeps control heads; version 1 (a version vector of
// control writers) is still read.
const metaVersion = 2

// AppendBinary appends m's storage encoding.
func (m *EventMeta) AppendBinary(dst []byte) []byte {
	v := byte(metaVersion)
	if m.LegacyControl != nil {
		v = 1 // read as version 1: written back the same way
	}
	dst = append(dst, v, byte(m.Kind))
	dst = append(dst, m.ID[:]...)
	dst = append(dst, m.Writer[:]...)
	dst = binary.AppendUvarint(dst, m.Seq)
	dst = binary.AppendUvarint(dst, m.Lamport)
	dst = binary.AppendUvarint(dst, uint64(m.Time))
	dst = binary.AppendUvarint(dst, uint64(m.Epoch))
	dst = append(dst, m.KeyRef[:]...)
	dst = append(dst, m.Target[:]...)
	if m.LegacyControl != nil {
		return m.LegacyControl.AppendBinary(dst)
	}
	dst = appendIDs(dst, m.Control)
	if m.Author.IsZero() {
		dst = append(dst, 0)
	} else {
		dst = append(dst, 1)
		dst = append(dst, m.Author[:]...)
	}
	return binary.AppendUvarint(dst, m.Run)
}

// DecodeEventMeta parses AppendBinary's output.
func DecodeEventMeta(b []byte) (*EventMeta, error) {
	if len(b) == 0 || (b[0] != metaVersion && b[0] != 1) {
		return nil, fmt.Errorf("%w: event meta version", ErrUnknownVersion)
	}
	r := reader{b: b, off: 1}
	m := &EventMeta{}
	m.Kind = Kind(r.byte())
	r.fixed(m.ID[:])
	r.fixed(m.Writer[:])
	m.Seq = r.uvarint()
	m.Lamport = r.uvarint()
	m.Time = int64(r.uvarint())
	ep := r.uvarint()
	if ep > 1<<32-1 {
		r.fail("epoch out of range")
	}
	m.Epoch = uint32(ep)
	r.fixed(m.KeyRef[:])
	r.fixed(m.Target[:])
	if b[0] == 1 {
		cv, err := r.versionVector()
		if err != nil {
			return nil, err
		}
		m.LegacyControl = cv
	} else {
		m.Control = decodeIDs(&r)
		if r.err == nil {
			if why := checkIDs(m.Control, 1<<20); why != "" {
				r.fail("control heads " + why)
			}
		}
		switch r.byte() {
		case 0:
		case 1:
			r.fixed(m.Author[:])
			if r.err == nil && m.Author.IsZero() {
				r.fail("zero author")
			}
		default:
			r.fail("bad author flag")
		}
		m.Run = r.uvarint()
	}
	if r.err == nil && r.off != len(b) {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, r.err
	}
	if !m.Kind.valid() {
		return nil, fmt.Errorf("%w: event meta kind %d", ErrMalformed, m.Kind)
	}
	return m, nil
}
