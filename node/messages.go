package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/weftnet/weft/protocol"
	"github.com/weftnet/weft/storage"
)

func (n *Node) checkData(data []byte) error {
	if len(data) > n.cfg.Limits.MaxData {
		return fmt.Errorf("%w: data of %d bytes exceeds the limit of %d", protocol.ErrTooLarge, len(data), n.cfg.Limits.MaxData)
	}
	return nil
}

// SendMessage posts a message to a thread and returns its ID. The message
// is on disk when SendMessage returns.
func (u *User) SendMessage(ctx context.Context, t protocol.ThreadID, publicMeta, privateMeta, data []byte) (protocol.EventID, error) {
	id, err := u.n.writer(u.id)
	if err != nil {
		return protocol.EventID{}, err
	}
	if err := u.n.checkMeta(publicMeta, privateMeta); err != nil {
		return protocol.EventID{}, err
	}
	if err := u.n.checkData(data); err != nil {
		return protocol.EventID{}, err
	}
	var mid protocol.EventID
	err = u.n.do(ctx, true, func(w *work) error {
		ts, err := u.writable(t)
		if err != nil {
			return err
		}
		ev, err := protocol.NewPost(ts, id, u.n.keys[u.id][t], publicMeta, privateMeta, data, u.n.now())
		if err != nil {
			return err
		}
		if _, err := w.accept(ts, ev); err != nil {
			return err
		}
		mid = ev.ID()
		return nil
	})
	return mid, err
}

// writable returns a thread the user may write to now.
func (u *User) writable(t protocol.ThreadID) (*protocol.ThreadState, error) {
	ts, err := u.n.thread(t)
	if err != nil {
		return nil, err
	}
	if ts.Current.Deleted {
		return nil, fmt.Errorf("%w: %s", protocol.ErrThreadDeleted, t)
	}
	if !ts.Current.IsUser(u.id) {
		return nil, fmt.Errorf("%w: %s is not a member of thread %s", protocol.ErrNotMember, u.id, t)
	}
	return ts, nil
}

// message finds a message and its thread; on the loop only.
func (n *Node) message(mid protocol.EventID) (*protocol.ThreadState, *protocol.MessageState, error) {
	t, err := n.store.Locate(mid)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, fmt.Errorf("%w: message %s", ErrNotFound, mid)
	}
	if err != nil {
		return nil, nil, err
	}
	ts, err := n.thread(t)
	if err != nil {
		return nil, nil, err
	}
	ms, err := n.store.Message(t, mid)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, fmt.Errorf("%w: message %s", ErrNotFound, mid)
	}
	return ts, ms, err
}

// GetMessage returns a message as the user sees it. A message the user
// cannot decrypt comes back with a non-zero StatusCode and the reason.
func (u *User) GetMessage(ctx context.Context, mid protocol.EventID) (Message, error) {
	if _, err := u.n.identity(u.id); err != nil {
		return Message{}, err
	}
	var m Message
	err := u.n.do(ctx, false, func(w *work) error {
		ts, ms, err := u.n.message(mid)
		if err != nil {
			return err
		}
		if _, err := u.readable(ts.ID); err != nil {
			return err
		}
		if !ms.Visible() {
			return fmt.Errorf("%w: message %s (deleted)", ErrNotFound, mid)
		}
		m, err = u.n.loadMessageView(u.id, ts.ID, ms)
		return err
	})
	return m, err
}

// ListMessages lists a thread's messages in the thread's order (oldest
// first unless p.Desc).
func (u *User) ListMessages(ctx context.Context, t protocol.ThreadID, p Page) (List[Message], error) {
	if _, err := u.n.identity(u.id); err != nil {
		return List[Message]{}, err
	}
	if p.Skip < 0 || p.Limit < 0 {
		return List[Message]{}, fmt.Errorf("%w: skip and limit must not be negative", ErrBadInput)
	}
	var out List[Message]
	err := u.n.do(ctx, false, func(w *work) error {
		ts, err := u.readable(t)
		if err != nil {
			return err
		}
		if ts.Current.Deleted {
			return fmt.Errorf("%w: %w: thread %s", ErrNotFound, protocol.ErrThreadDeleted, t)
		}
		states, total, err := u.n.store.Messages(t, storage.Page{Skip: p.Skip, Limit: p.Limit, Desc: p.Desc, LastID: p.LastID})
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		}
		if err != nil {
			return err
		}
		out.TotalAvailable = int(total)
		out.Items = make([]Message, 0, len(states))
		for _, ms := range states {
			m, err := u.n.loadMessageView(u.id, t, ms)
			if err != nil {
				return err
			}
			out.Items = append(out.Items, m)
		}
		return nil
	})
	return out, err
}

// UpdateMessage replaces a message's content. Its author (or, by default
// policy, a manager) may do so; the message's updates list grows.
func (u *User) UpdateMessage(ctx context.Context, mid protocol.EventID, publicMeta, privateMeta, data []byte) error {
	id, err := u.n.writer(u.id)
	if err != nil {
		return err
	}
	if err := u.n.checkMeta(publicMeta, privateMeta); err != nil {
		return err
	}
	if err := u.n.checkData(data); err != nil {
		return err
	}
	return u.n.do(ctx, true, func(w *work) error {
		ts, ms, target, err := u.editable(w, mid)
		if err != nil {
			return err
		}
		_ = ms
		ev, err := protocol.NewMessageUpdate(ts, id, u.n.keys[u.id][ts.ID], *target, publicMeta, privateMeta, data, u.n.now())
		if err != nil {
			return err
		}
		_, err = w.accept(ts, ev)
		return err
	})
}

// DeleteMessage deletes a message and removes its content from the store.
func (u *User) DeleteMessage(ctx context.Context, mid protocol.EventID) error {
	id, err := u.n.writer(u.id)
	if err != nil {
		return err
	}
	return u.n.do(ctx, true, func(w *work) error {
		ts, _, target, err := u.editable(w, mid)
		if err != nil {
			return err
		}
		ev, err := protocol.NewMessageDelete(ts, id, *target, u.n.now())
		if err != nil {
			return err
		}
		_, err = w.accept(ts, ev)
		return err
	})
}

// editable finds a visible message the user might change; the rules decide
// whether it may.
func (u *User) editable(w *work, mid protocol.EventID) (*protocol.ThreadState, *protocol.MessageState, *protocol.EventMeta, error) {
	ts, ms, err := u.n.message(mid)
	if err != nil {
		return nil, nil, nil, err
	}
	if _, err := u.writable(ts.ID); err != nil {
		return nil, nil, nil, err
	}
	if !ms.Visible() {
		return nil, nil, nil, fmt.Errorf("%w: message %s (deleted)", ErrNotFound, mid)
	}
	target, err := w.tx.Meta(ts.ID, mid)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", errStorage, err)
	}
	return ts, ms, target, nil
}
