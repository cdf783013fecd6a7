package protocol

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/weftnet/weft/crypto"
)

// MessageState is the visible state of one message: the fold, in linear
// order, of its post and the updates and deletes that act on it.
type MessageState struct {
	ID      EventID // the MessagePost
	Author  crypto.UserID
	Created int64 // the post's author time
	Order   Order // the post's position
	// Void: the post was not permitted at its position (its author was
	// removed concurrently, say). A void message is never shown.
	Void    bool
	Deleted bool
	// Content is the event whose content is current: the post or its
	// latest effective update.
	Content      EventID
	ContentOrder Order
	Updates      []UpdateInfo // effective updates, in linear order
}

// UpdateInfo records one effective update of a message.
type UpdateInfo struct {
	Event  EventID
	Time   int64
	Author crypto.UserID
	Order  Order
}

// NewMessageState starts a message from its post, judged against the
// thread as it stands at the post's position.
func NewMessageState(post *EventMeta, at *Snapshot) MessageState {
	o := post.Order()
	return MessageState{
		ID: post.ID, Author: post.User(), Created: post.Time, Order: o,
		Void:    at.allowed(KindMessagePost, post.User(), true) != nil || at.Forked(post.Writer, post.Seq),
		Content: post.ID, ContentOrder: o,
	}
}

// Apply folds an update or delete of this message, judged against the
// thread as it stands at the event's position, and reports whether it took
// effect.
func (m *MessageState) Apply(ev *EventMeta, at *Snapshot) bool {
	if m.Void || m.Deleted || ev.Target != m.ID {
		return false
	}
	if at.allowed(ev.Kind, ev.User(), ev.User() == m.Author) != nil || at.Forked(ev.Writer, ev.Seq) {
		return false
	}
	o := ev.Order()
	switch ev.Kind {
	case KindMessageUpdate:
		i, found := slices.BinarySearchFunc(m.Updates, o, func(u UpdateInfo, o Order) int { return u.Order.Compare(o) })
		if found {
			return false
		}
		m.Updates = slices.Insert(m.Updates, i, UpdateInfo{Event: ev.ID, Time: ev.Time, Author: ev.User(), Order: o})
		if m.ContentOrder.Less(o) {
			m.Content, m.ContentOrder = ev.ID, o
		}
		return true
	case KindMessageDelete:
		m.Deleted = true
		return true
	}
	return false
}

// Visible reports whether the message is shown.
func (m *MessageState) Visible() bool { return !m.Void && !m.Deleted }

const messageStateVersion = 1

// AppendBinary appends m's storage encoding.
func (m *MessageState) AppendBinary(dst []byte) []byte {
	var flags byte
	if m.Void {
		flags |= 1
	}
	if m.Deleted {
		flags |= 2
	}
	dst = append(dst, messageStateVersion, flags)
	dst = append(dst, m.ID[:]...)
	dst = append(dst, m.Author[:]...)
	dst = binary.AppendUvarint(dst, uint64(m.Created))
	dst = m.Order.AppendKey(dst)
	dst = append(dst, m.Content[:]...)
	dst = m.ContentOrder.AppendKey(dst)
	dst = binary.AppendUvarint(dst, uint64(len(m.Updates)))
	for _, u := range m.Updates {
		dst = append(dst, u.Event[:]...)
		dst = binary.AppendUvarint(dst, uint64(u.Time))
		dst = append(dst, u.Author[:]...)
		dst = u.Order.AppendKey(dst)
	}
	return dst
}

// DecodeMessageState parses AppendBinary's output.
func DecodeMessageState(b []byte) (*MessageState, error) {
	if len(b) < 2 || b[0] != messageStateVersion {
		return nil, fmt.Errorf("%w: message state version", ErrUnknownVersion)
	}
	r := reader{b: b, off: 2}
	m := &MessageState{Void: b[1]&1 != 0, Deleted: b[1]&2 != 0}
	if b[1]&^3 != 0 {
		r.fail("unknown message flags")
	}
	r.fixed(m.ID[:])
	r.fixed(m.Author[:])
	m.Created = int64(r.uvarint())
	m.Order = r.order()
	r.fixed(m.Content[:])
	m.ContentOrder = r.order()
	n := r.count(32+1+32+OrderKeySize, 0)
	for i := 0; i < n; i++ {
		var u UpdateInfo
		r.fixed(u.Event[:])
		u.Time = int64(r.uvarint())
		r.fixed(u.Author[:])
		u.Order = r.order()
		m.Updates = append(m.Updates, u)
	}
	if r.err == nil && r.off != len(b) {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, r.err
	}
	return m, nil
}

func (r *reader) order() Order {
	var k [OrderKeySize]byte
	r.fixed(k[:])
	o, _ := ParseOrderKey(k[:])
	return o
}
