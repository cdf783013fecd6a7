package node

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/protocol"
)

// checkMeta checks metadata sizes against the node's limits.
func (n *Node) checkMeta(publicMeta, privateMeta []byte) error {
	lim := n.cfg.Limits
	if len(publicMeta) > lim.MaxMeta {
		return fmt.Errorf("%w: publicMeta of %d bytes exceeds the limit of %d", protocol.ErrTooLarge, len(publicMeta), lim.MaxMeta)
	}
	if len(privateMeta) > lim.MaxMeta {
		return fmt.Errorf("%w: privateMeta of %d bytes exceeds the limit of %d", protocol.ErrTooLarge, len(privateMeta), lim.MaxMeta)
	}
	return nil
}

// CreateThread creates a thread with the given members and managers (the
// creator is added to both) and returns its ID. A nil policy means
// protocol.DefaultPolicy.
func (u *User) CreateThread(ctx context.Context, users, managers []crypto.UserID, publicMeta, privateMeta []byte, policy *protocol.Policy) (protocol.ThreadID, error) {
	id, err := u.n.writer(u.id)
	if err != nil {
		return protocol.ThreadID{}, err
	}
	if err := u.n.checkMeta(publicMeta, privateMeta); err != nil {
		return protocol.ThreadID{}, err
	}
	if err := checkUsers(users, managers); err != nil {
		return protocol.ThreadID{}, err
	}
	p := protocol.DefaultPolicy()
	if policy != nil {
		p = mergePolicy(p, *policy)
		if err := checkPolicy(p); err != nil {
			return protocol.ThreadID{}, err
		}
	}
	ev, _, err := protocol.NewThread(id, users, managers, p, publicMeta, privateMeta, u.n.now())
	if err != nil {
		return protocol.ThreadID{}, err
	}
	if err := protocol.CheckEvent(ev, u.n.cfg.Limits); err != nil {
		return protocol.ThreadID{}, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	err = u.n.do(ctx, true, func(w *work) error {
		ts, meta, err := protocol.NewThreadState(ev)
		if err != nil {
			return err
		}
		if err := w.storeApplied(ts, ev, &meta, nil); err != nil {
			return err
		}
		u.n.threads[ts.ID] = ts
		return nil
	})
	if err != nil {
		return protocol.ThreadID{}, err
	}
	return protocol.ThreadID(ev.ID()), nil
}

// thread returns a thread's state; on the loop only.
func (n *Node) thread(t protocol.ThreadID) (*protocol.ThreadState, error) {
	ts, ok := n.threads[t]
	if !ok {
		return nil, fmt.Errorf("%w: thread %s", ErrNotFound, t)
	}
	return ts, nil
}

// readable returns a thread the user may read: one it is or was a member
// of (it holds at least one of its keys).
func (u *User) readable(t protocol.ThreadID) (*protocol.ThreadState, error) {
	ts, err := u.n.thread(t)
	if err != nil {
		return nil, err
	}
	if !u.n.hasAnyKey(u.id, t) && !ts.Current.IsUser(u.id) {
		return nil, fmt.Errorf("%w: %s is not a member of thread %s", protocol.ErrNotMember, u.id, t)
	}
	return ts, nil
}

// UpdateThread changes a thread's members, managers, metadata or policy.
// Removing a member or manager, or RotateKey, starts a new key epoch.
func (u *User) UpdateThread(ctx context.Context, t protocol.ThreadID, ch ThreadUpdate) error {
	id, err := u.n.writer(u.id)
	if err != nil {
		return err
	}
	if err := u.n.checkMeta(ch.PublicMeta, ch.PrivateMeta); err != nil {
		return err
	}
	if err := checkUsers(ch.AddUsers, ch.RemoveUsers, ch.AddManagers, ch.RemoveManagers); err != nil {
		return err
	}
	if len(ch.AddUsers)+len(ch.RemoveUsers)+len(ch.AddManagers)+len(ch.RemoveManagers) == 0 &&
		ch.PublicMeta == nil && ch.PrivateMeta == nil && ch.Policy == nil && !ch.RotateKey {
		return fmt.Errorf("%w: the update changes nothing", ErrBadInput)
	}
	return u.n.do(ctx, true, func(w *work) error {
		ts, err := u.readable(t)
		if err != nil {
			return err
		}
		if ts.Current.Deleted {
			return fmt.Errorf("%w: %s", protocol.ErrThreadDeleted, t)
		}
		if !ts.Current.IsManager(u.id) {
			return fmt.Errorf("%w: %s may not update thread %s", protocol.ErrNotManager, u.id, t)
		}
		if ch.Version != 0 && !ch.Force && ch.Version != ts.Current.Version {
			return fmt.Errorf("%w: expected version %d, thread is at %d", ErrVersionMismatch, ch.Version, ts.Current.Version)
		}
		if ch.Policy != nil {
			p := mergePolicy(ts.Current.Policy, *ch.Policy)
			if err := checkPolicy(p); err != nil {
				return err
			}
			ch.Policy = &p
		}
		ev, _, err := protocol.NewUpdate(ts, id, protocol.ThreadChange{
			AddUsers: ch.AddUsers, RemoveUsers: ch.RemoveUsers,
			AddManagers: ch.AddManagers, RemoveManagers: ch.RemoveManagers,
			PublicMeta: ch.PublicMeta, PrivateMeta: ch.PrivateMeta,
			Policy: ch.Policy, RotateKey: ch.RotateKey,
		}, u.n.keys[u.id][t], u.n.now())
		if err != nil {
			return err
		}
		if err := protocol.CheckLimits(ev, u.n.cfg.Limits); err != nil {
			return err
		}
		_, err = w.accept(ts, ev)
		return err
	})
}

// mergePolicy fills the roles p leaves unset from base.
func mergePolicy(base, p protocol.Policy) protocol.Policy {
	if p.Post != 0 {
		base.Post = p.Post
	}
	if p.EditMessage != 0 {
		base.EditMessage = p.EditMessage
	}
	if p.DeleteMessage != 0 {
		base.DeleteMessage = p.DeleteMessage
	}
	base.ShareHistory = p.ShareHistory
	if p.MaxRun != 0 {
		base.MaxRun = p.MaxRun
	}
	return base
}

// checkUsers refuses empty (zero) user IDs.
func checkUsers(lists ...[]crypto.UserID) error {
	for _, l := range lists {
		for _, u := range l {
			if u.IsZero() {
				return fmt.Errorf("%w: empty user ID", ErrBadInput)
			}
		}
	}
	return nil
}

func checkPolicy(p protocol.Policy) error {
	if err := p.Check(); err != nil {
		return fmt.Errorf("%w: policy: %w", ErrBadInput, err)
	}
	return nil
}

// DeleteThread deletes a thread and removes its content from the store.
func (u *User) DeleteThread(ctx context.Context, t protocol.ThreadID) error {
	id, err := u.n.writer(u.id)
	if err != nil {
		return err
	}
	return u.n.do(ctx, true, func(w *work) error {
		ts, err := u.readable(t)
		if err != nil {
			return err
		}
		if ts.Current.Deleted {
			return fmt.Errorf("%w: %s", protocol.ErrThreadDeleted, t)
		}
		ev, err := protocol.NewDelete(ts, id, u.n.now())
		if err != nil {
			return err
		}
		_, err = w.accept(ts, ev)
		return err
	})
}

// GetThread returns a thread as the user sees it.
func (u *User) GetThread(ctx context.Context, t protocol.ThreadID) (Thread, error) {
	if _, err := u.n.identity(u.id); err != nil {
		return Thread{}, err
	}
	var th Thread
	err := u.n.do(ctx, false, func(w *work) error {
		ts, err := u.readable(t)
		if err != nil {
			return err
		}
		if ts.Current.Deleted {
			return fmt.Errorf("%w: %w: thread %s", ErrNotFound, protocol.ErrThreadDeleted, t)
		}
		stats, err := u.n.store.Stats(t)
		if err != nil {
			return err
		}
		th = u.n.threadView(u.id, ts, &ts.Current, stats)
		return nil
	})
	return th, err
}

// ListThreads lists the threads the user is a member of, oldest first
// (by creation time, then ID) unless p.Desc.
func (u *User) ListThreads(ctx context.Context, p Page) (List[Thread], error) {
	if _, err := u.n.identity(u.id); err != nil {
		return List[Thread]{}, err
	}
	var out List[Thread]
	err := u.n.do(ctx, false, func(w *work) error {
		var mine []*protocol.ThreadState
		for _, ts := range u.n.threads {
			if ts.Current.IsUser(u.id) && !ts.Current.Deleted {
				mine = append(mine, ts)
			}
		}
		slices.SortFunc(mine, func(a, b *protocol.ThreadState) int {
			if c := cmp.Compare(a.Current.CreateTime, b.Current.CreateTime); c != 0 {
				return c
			}
			return protocol.EventID(a.ID).Compare(protocol.EventID(b.ID))
		})
		if p.Desc {
			slices.Reverse(mine)
		}
		out.TotalAvailable = len(mine)
		start := 0
		if !p.LastID.IsZero() {
			i := slices.IndexFunc(mine, func(ts *protocol.ThreadState) bool { return protocol.EventID(ts.ID) == p.LastID })
			if i < 0 {
				return fmt.Errorf("%w: lastId: thread %s", ErrNotFound, p.LastID)
			}
			start = i + 1
		}
		start = min(start+max(p.Skip, 0), len(mine))
		end := len(mine)
		if p.Limit > 0 {
			end = min(start+p.Limit, end)
		}
		out.Items = make([]Thread, 0, end-start)
		for _, ts := range mine[start:end] {
			stats, err := u.n.store.Stats(ts.ID)
			if err != nil {
				return err
			}
			out.Items = append(out.Items, u.n.threadView(u.id, ts, &ts.Current, stats))
		}
		return nil
	})
	return out, err
}
