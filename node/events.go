package node

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/protocol"
	"github.com/weftnet/weft/storage"
)

// Event types, named as PrivMX names them.
const (
	EventThreadCreated        = "threadCreated"
	EventThreadUpdated        = "threadUpdated"
	EventThreadDeleted        = "threadDeleted"
	EventThreadStats          = "threadStats"
	EventThreadNewMessage     = "threadNewMessage"
	EventThreadUpdatedMessage = "threadUpdatedMessage"
	EventThreadMessageDeleted = "threadMessageDeleted"
)

// Event is a change a local user is told about. Thread is set for thread
// events, Message for message events (decrypted for the subscriber), Stats
// for threadStats.
type Event struct {
	Type      string            `json:"type"`
	ThreadID  protocol.ThreadID `json:"threadId"`
	MessageID *protocol.EventID `json:"messageId,omitempty"`
	Thread    *Thread           `json:"thread,omitempty"`
	Message   *Message          `json:"message,omitempty"`
	Stats     *ThreadStats      `json:"stats,omitempty"`
}

// ThreadStats is the payload of a threadStats event.
type ThreadStats struct {
	MessagesCount uint64 `json:"messagesCount"`
	LastMsgDate   int64  `json:"lastMsgDate"`
}

// ErrSlowSubscriber closes a subscription whose reader fell too far behind.
var ErrSlowSubscriber = errors.New("subscriber too slow: events were not read")

// MaxQueuedEvents is how many undelivered events a subscription may hold
// before it is closed with ErrSlowSubscriber (rather than drop events
// silently or stall the node).
const MaxQueuedEvents = 1 << 16

// Subscription delivers events in the order the changes happened.
type Subscription struct {
	// C delivers the events; it is closed when the subscription ends.
	C <-chan Event

	c      chan Event
	user   crypto.UserID
	thread *protocol.ThreadID
	mu     sync.Mutex
	queue  []Event
	wake   chan struct{}
	err    error
	closed bool
	cancel context.CancelFunc
}

// Err tells why the subscription ended (nil while it runs or after Close).
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the subscription.
func (s *Subscription) Close() { s.cancel() }

// Subscribe streams the events of every thread the user is in, or only of
// thread if it is not nil, until ctx ends or Close is called.
func (u *User) Subscribe(ctx context.Context, thread *protocol.ThreadID) (*Subscription, error) {
	if _, err := u.n.identity(u.id); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Subscription{c: make(chan Event), user: u.id, thread: thread, wake: make(chan struct{}, 1), cancel: cancel}
	s.C = s.c
	err := u.n.do(ctx, false, func(w *work) error {
		u.n.subs[s] = struct{}{}
		return nil
	})
	if err != nil {
		cancel()
		return nil, err
	}
	go s.pump(ctx, u.n)
	return s, nil
}

func (s *Subscription) push(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if len(s.queue) >= MaxQueuedEvents {
		s.err = ErrSlowSubscriber
		s.closed = true
		s.cancel()
		return
	}
	s.queue = append(s.queue, e)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Subscription) pump(ctx context.Context, n *Node) {
	defer func() {
		// Unregister on the loop; if the node is closing, it is gone anyway.
		_ = n.do(context.Background(), false, func(w *work) error {
			delete(n.subs, s)
			return nil
		})
		close(s.c)
	}()
	for {
		s.mu.Lock()
		q := s.queue
		s.queue = nil
		s.mu.Unlock()
		for _, e := range q {
			select {
			case s.c <- e:
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return
		}
	}
}

func (n *Node) closeSubscriptions() {
	for s := range n.subs {
		s.mu.Lock()
		s.closed = true
		if s.err == nil {
			s.err = ErrClosed
		}
		s.mu.Unlock()
		s.cancel()
	}
}

// emission is a change recorded during a transaction, delivered to the
// subscribers once the transaction commits.
type emission struct {
	typ      string
	thread   protocol.ThreadID
	audience []crypto.UserID
	// For thread events: the thread as it stood after the change.
	snap  *protocol.Snapshot
	ts    *protocol.ThreadState
	stats storage.ThreadStats
	// For message events: the message state and its content event.
	msg     *protocol.MessageState
	content *protocol.Event
	meta    *protocol.EventMeta
}

// noteEffect records the events an accepted event causes.
func (w *work) noteEffect(ts *protocol.ThreadState, ev *protocol.Event, meta *protocol.EventMeta, eff storage.Effect, prevUsers []crypto.UserID) {
	if len(w.n.subs) == 0 || (!eff.Visible && len(eff.Rematerialized) == 0) {
		return
	}
	t := ts.ID
	stats, _ := w.tx.Stats(t)
	snap := copySnapshot(&ts.Current)
	threadEv := func(typ string, audience []crypto.UserID) {
		w.emits = append(w.emits, emission{typ: typ, thread: t, audience: audience, snap: snap, ts: ts, stats: stats})
	}
	msgEv := func(typ string, id protocol.EventID) {
		ms, err := w.tx.Message(t, id)
		if err != nil {
			return
		}
		e := emission{typ: typ, thread: t, audience: snap.Users, msg: ms, snap: snap, ts: ts, stats: stats}
		if ms.Content == meta.ID {
			e.content, e.meta = ev, meta // the event just stored: no need to read it back
		} else if e.content, err = w.tx.Event(t, ms.Content); err == nil {
			e.meta, _ = w.tx.Meta(t, ms.Content)
		}
		w.emits = append(w.emits, e)
	}
	switch {
	case !eff.Visible:
	case ev.Kind == protocol.KindThreadCreate:
		threadEv(EventThreadCreated, snap.Users)
	case ev.Kind == protocol.KindThreadUpdate:
		threadEv(EventThreadUpdated, members(prevUsers, snap.Users))
	case ev.Kind == protocol.KindThreadDelete:
		threadEv(EventThreadDeleted, members(prevUsers, snap.Users))
	case ev.Kind == protocol.KindMessagePost:
		msgEv(EventThreadNewMessage, meta.Target)
		threadEv(EventThreadStats, snap.Users)
	case ev.Kind == protocol.KindMessageUpdate:
		msgEv(EventThreadUpdatedMessage, meta.Target)
	case ev.Kind == protocol.KindMessageDelete:
		msgEv(EventThreadMessageDeleted, meta.Target)
		threadEv(EventThreadStats, snap.Users)
	}
	if len(eff.Rematerialized) > 0 {
		threadEv(EventThreadStats, snap.Users)
	}
}

func copySnapshot(s *protocol.Snapshot) *protocol.Snapshot {
	c := *s
	c.Users = slices.Clone(s.Users)
	c.Managers = slices.Clone(s.Managers)
	c.KeyHolders = slices.Clone(s.KeyHolders)
	c.Keys = slices.Clone(s.Keys)
	return &c
}

// deliver hands a committed change to the subscriptions it concerns.
func (n *Node) deliver(e emission) {
	for s := range n.subs {
		if s.thread != nil && *s.thread != e.thread {
			continue
		}
		if !slices.Contains(e.audience, s.user) {
			continue
		}
		out := Event{Type: e.typ, ThreadID: e.thread}
		switch {
		case e.msg != nil:
			m := n.messageView(s.user, e.thread, e.msg, e.content, e.meta)
			out.MessageID = &m.MessageID
			out.Message = &m
		case e.typ == EventThreadStats:
			out.Stats = &ThreadStats{MessagesCount: e.stats.Messages, LastMsgDate: e.stats.LastMessageTime}
		default:
			t := n.threadView(s.user, e.ts, e.snap, e.stats)
			out.Thread = &t
		}
		s.push(out)
	}
}

// noteThreadChanged tells members that a thread's visible state changed
// without an event of its own (an equivocation was found): the thread, as
// it now stands, and its counters.
func (w *work) noteThreadChanged(ts *protocol.ThreadState, rematerialized []protocol.EventID, prevUsers []crypto.UserID) {
	if len(w.n.subs) == 0 {
		return
	}
	stats, _ := w.tx.Stats(ts.ID)
	snap := copySnapshot(&ts.Current)
	w.emits = append(w.emits, emission{typ: EventThreadUpdated, thread: ts.ID, audience: members(prevUsers, snap.Users), snap: snap, ts: ts, stats: stats})
	if len(rematerialized) > 0 {
		w.emits = append(w.emits, emission{typ: EventThreadStats, thread: ts.ID, audience: snap.Users, snap: snap, ts: ts, stats: stats})
	}
}
