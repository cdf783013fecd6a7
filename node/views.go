package node

import (
	"bytes"
	"errors"
	"slices"
	"strconv"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/protocol"
	"github.com/weftnet/weft/storage"
)

// key returns the thread key user holds for the key introduced by ref.
func (n *Node) key(user crypto.UserID, t protocol.ThreadID, ref protocol.EventID) (crypto.ThreadKey, bool) {
	k, ok := n.keys[user][t][ref]
	return k, ok
}

// hasAnyKey reports whether user ever held a key of the thread: it is or
// was a member, so it may read what it can decrypt.
func (n *Node) hasAnyKey(user crypto.UserID, t protocol.ThreadID) bool {
	return len(n.keys[user][t]) > 0
}

// threadView builds the thread as user sees it.
func (n *Node) threadView(user crypto.UserID, ts *protocol.ThreadState, snap *protocol.Snapshot, stats storage.ThreadStats) Thread {
	th := Thread{
		ThreadID:             ts.ID,
		CreateDate:           snap.CreateTime,
		Creator:              snap.Creator,
		LastModificationDate: snap.LastModifyTime,
		LastModifier:         snap.LastModifier,
		Users:                slices.Clone(snap.Users),
		Managers:             slices.Clone(snap.Managers),
		Version:              snap.Version,
		Epoch:                snap.Epoch,
		LastMsgDate:          stats.LastMessageTime,
		MessagesCount:        stats.Messages,
		Policy:               snap.Policy,
	}
	for w, seq := range snap.Forks {
		th.Equivocations = append(th.Equivocations, Equivocation{Writer: w, Seq: seq})
	}
	slices.SortFunc(th.Equivocations, func(a, b Equivocation) int { return bytes.Compare(a.Writer[:], b.Writer[:]) })
	if snap.Deleted {
		th.StatusCode, th.Status = StatusDeleted, "thread deleted"
		return th
	}
	if ce, ok := ts.Control(snap.PublicMetaFrom); ok && ce.Event.Content != nil {
		th.PublicMeta = ce.Event.Content.PublicMeta
	}
	if ce, ok := ts.Control(snap.PrivateMetaFrom); ok {
		th.PrivateMeta, th.StatusCode, th.Status = n.open(user, ts.ID, ce.Event, &ce.Meta, protocol.FieldPrivateMeta)
	}
	return th
}

// open opens one sealed field of ev for user, or says why it cannot.
func (n *Node) open(user crypto.UserID, t protocol.ThreadID, ev *protocol.Event, meta *protocol.EventMeta, field string) ([]byte, int, string) {
	if ev == nil || ev.Content == nil {
		return nil, StatusDeleted, "content deleted"
	}
	key, ok := n.key(user, t, meta.KeyRef)
	if !ok {
		return nil, StatusNoKey, "no key for epoch " + strconv.FormatUint(uint64(meta.Epoch), 10) + ": not a member when it was written"
	}
	pt, err := protocol.OpenField(ev, field, key)
	if err != nil {
		return nil, StatusDecryptError, err.Error()
	}
	return pt, StatusOK, ""
}

// messageView builds the message as user sees it from its state and its
// current content event.
func (n *Node) messageView(user crypto.UserID, t protocol.ThreadID, ms *protocol.MessageState, content *protocol.Event, meta *protocol.EventMeta) Message {
	m := Message{
		ThreadID:   t,
		MessageID:  ms.ID,
		CreateDate: ms.Created,
		Author:     ms.Author,
		Updates:    make([]MessageUpdate, 0, len(ms.Updates)),
	}
	if post, err := n.store.Meta(t, ms.ID); err == nil && post.Writer != ms.Author {
		d := crypto.DeviceID(post.Writer)
		m.Device = &d
	}
	for _, u := range ms.Updates {
		m.Updates = append(m.Updates, MessageUpdate{Date: u.Time, Author: u.Author})
	}
	switch {
	case ms.Deleted:
		m.StatusCode, m.Status = StatusDeleted, "message deleted"
		return m
	case content == nil || meta == nil:
		m.StatusCode, m.Status = StatusDeleted, "content not stored"
		return m
	}
	if !content.ContentMatches() {
		m.StatusCode, m.Status = StatusUnverified, "content does not match its author's signature (corrupt store?)"
		return m
	}
	if content.Content != nil {
		m.PublicMeta = content.Content.PublicMeta
	}
	var code int
	var why string
	m.PrivateMeta, code, why = n.open(user, t, content, meta, protocol.FieldPrivateMeta)
	if code == StatusOK {
		m.Data, code, why = n.open(user, t, content, meta, protocol.FieldData)
	}
	m.StatusCode, m.Status = code, why
	if code != StatusOK {
		m.PrivateMeta, m.Data = nil, nil
	}
	return m
}

// loadMessageView reads a message's current content from the store and
// builds its view.
func (n *Node) loadMessageView(user crypto.UserID, t protocol.ThreadID, ms *protocol.MessageState) (Message, error) {
	ev, err := n.store.Event(t, ms.Content)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return Message{}, err
	}
	meta, err := n.store.Meta(t, ms.Content)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return Message{}, err
	}
	return n.messageView(user, t, ms, ev, meta), nil
}
