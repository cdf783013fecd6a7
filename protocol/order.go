package protocol

import (
	"encoding/binary"
	"fmt"
)

// Order is an event's position in a thread's deterministic linear order:
// by Lamport time, then by event ID. Since an event's Lamport time exceeds
// its parents', an event never comes before one it depends on.
type Order struct {
	Lamport uint64
	ID      EventID
}

// Compare returns -1, 0 or +1 as o sorts before, with or after p.
func (o Order) Compare(p Order) int {
	switch {
	case o.Lamport < p.Lamport:
		return -1
	case o.Lamport > p.Lamport:
		return 1
	}
	return o.ID.Compare(p.ID)
}

// Less reports whether o sorts before p.
func (o Order) Less(p Order) bool { return o.Compare(p) < 0 }

// OrderKeySize is the length of AppendKey's output.
const OrderKeySize = 8 + 32

// AppendKey appends a fixed-size key whose bytewise order is the linear
// order (for storage indexes).
func (o Order) AppendKey(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, o.Lamport)
	return append(dst, o.ID[:]...)
}

// ParseOrderKey is the inverse of AppendKey.
func ParseOrderKey(b []byte) (Order, error) {
	if len(b) != OrderKeySize {
		return Order{}, fmt.Errorf("%w: order key of %d bytes", ErrMalformed, len(b))
	}
	var o Order
	o.Lamport = binary.BigEndian.Uint64(b)
	copy(o.ID[:], b[8:])
	return o, nil
}
