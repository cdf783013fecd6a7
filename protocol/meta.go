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
	ID      EventID
	Kind    Kind
	Writer  crypto.UserID
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
	// Control maps each writer of control events in this event's causal
	// past (itself included) to the highest sequence number of such an event.
	Control VersionVector
}

// Order returns the event's position in the linear order.
func (m *EventMeta) Order() Order { return Order{Lamport: m.Lamport, ID: m.ID} }

const metaVersion = 1

// AppendBinary appends m's storage encoding.
func (m *EventMeta) AppendBinary(dst []byte) []byte {
	dst = append(dst, metaVersion, byte(m.Kind))
	dst = append(dst, m.ID[:]...)
	dst = append(dst, m.Writer[:]...)
	dst = binary.AppendUvarint(dst, m.Seq)
	dst = binary.AppendUvarint(dst, m.Lamport)
	dst = binary.AppendUvarint(dst, uint64(m.Time))
	dst = binary.AppendUvarint(dst, uint64(m.Epoch))
	dst = append(dst, m.KeyRef[:]...)
	dst = append(dst, m.Target[:]...)
	return m.Control.AppendBinary(dst)
}

// DecodeEventMeta parses AppendBinary's output.
func DecodeEventMeta(b []byte) (*EventMeta, error) {
	if len(b) == 0 || b[0] != metaVersion {
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
	cv, err := r.versionVector()
	if err != nil {
		return nil, err
	}
	m.Control = cv
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
