package protocol

import (
	"bytes"
	"slices"

	"github.com/weftnet/weft/crypto"
)

// Snapshot is a thread's state after folding some of its control events in
// linear order: who is in it, its policy, its current key, its metadata.
type Snapshot struct {
	Users    []crypto.UserID // sorted; managers are users too
	Managers []crypto.UserID // sorted
	Policy   Policy
	Deleted  bool

	Epoch      uint32          // epoch of the current key
	MaxEpoch   uint32          // highest epoch number folded so far
	KeyRef     EventID         // event that introduced the current key
	KeyHolders []crypto.UserID // who received the current key
	Keys       []KeyIntro      // every key introduced, in linear order

	PublicMetaFrom  EventID // control event whose publicMeta is current
	PrivateMetaFrom EventID // control event whose privateMeta is current

	Version        uint64 // number of effective control events (1 after creation)
	Creator        crypto.UserID
	CreateTime     int64
	LastModifier   crypto.UserID
	LastModifyTime int64

	// Forks are the thread's equivocating writers and the sequence number
	// from which their events are void (ThreadState.RecordFork). Shared:
	// never modified in place.
	Forks map[crypto.UserID]uint64
}

// Forked reports whether an event of writer with sequence number seq is
// void because the writer equivocated at or before it.
func (s *Snapshot) Forked(writer crypto.UserID, seq uint64) bool {
	f, ok := s.Forks[writer]
	return ok && seq >= f
}

// KeyIntro names a key introduced by an event.
type KeyIntro struct {
	Epoch uint32
	Ref   EventID
}

// IsUser reports whether u is a member.
func (s *Snapshot) IsUser(u crypto.UserID) bool { return containsUser(s.Users, u) }

// IsManager reports whether u is a manager.
func (s *Snapshot) IsManager(u crypto.UserID) bool { return containsUser(s.Managers, u) }

// NeedsRotation reports whether the current key's holders are not exactly
// the members: concurrent changes can leave a removed member holding it (two
// managers each removing someone) or a new member without it (an addition
// concurrent with a rotation). A manager should start a new epoch before
// anyone posts again; NewUpdate does so by itself.
func (s *Snapshot) NeedsRotation() bool {
	for _, h := range s.KeyHolders {
		if !s.IsUser(h) {
			return true
		}
	}
	for _, u := range s.Users {
		if !containsUser(s.KeyHolders, u) {
			return true
		}
	}
	return false
}

// HasKey reports whether ref introduced a key known in this snapshot.
func (s *Snapshot) HasKey(ref EventID) (KeyIntro, bool) {
	for _, k := range s.Keys {
		if k.Ref == ref {
			return k, true
		}
	}
	return KeyIntro{}, false
}

func (s *Snapshot) clone() Snapshot {
	c := *s
	c.Users = slices.Clone(s.Users)
	c.Managers = slices.Clone(s.Managers)
	c.KeyHolders = slices.Clone(s.KeyHolders)
	c.Keys = slices.Clone(s.Keys)
	return c
}

// applyControl applies one control event to s, if its writer is allowed
// there, and reports whether it took effect.
//
// author is the member the event writes as (its writer, or the user of
// the writer's device).
func (s *Snapshot) applyControl(ev *Event, id EventID, author crypto.UserID) bool {
	c := &ev.Control
	switch ev.Kind {
	case KindThreadCreate:
		*s = Snapshot{
			Users:           slices.Clone(c.AddUsers),
			Managers:        slices.Clone(c.AddManagers),
			Policy:          c.Policy,
			KeyRef:          id,
			Keys:            []KeyIntro{{Epoch: 0, Ref: id}},
			KeyHolders:      newKeyHolders(c.Keys, ev.Epoch),
			PublicMetaFrom:  id,
			PrivateMetaFrom: id,
			Version:         1,
			Creator:         author,
			CreateTime:      ev.Time,
			LastModifier:    author,
			LastModifyTime:  ev.Time,
		}
		return true
	case KindThreadDelete:
		if s.Deleted || !s.IsManager(author) {
			return false
		}
		s.Deleted = true
		s.LastModifier, s.LastModifyTime = author, ev.Time
		return true
	case KindThreadUpdate:
		if s.Deleted || !s.IsManager(author) {
			return false
		}
		s.Users = addRemove(s.Users, c.AddUsers, c.RemoveUsers)
		s.Managers = addRemove(s.Managers, c.AddManagers, c.RemoveManagers)
		// A concurrent removal may have taken away a manager's membership.
		s.Managers = slices.DeleteFunc(s.Managers, func(u crypto.UserID) bool { return !s.IsUser(u) })
		if c.SetPolicy {
			s.Policy = c.Policy
		}
		if c.SetPublicMeta {
			s.PublicMetaFrom = id
		}
		if c.SetPrivateMeta {
			s.PrivateMetaFrom = id
		}
		if c.NewEpoch {
			s.Epoch = ev.Epoch
			s.KeyRef = id
			s.Keys = append(s.Keys, KeyIntro{Epoch: ev.Epoch, Ref: id})
			s.KeyHolders = newKeyHolders(c.Keys, ev.Epoch)
		} else {
			for _, k := range c.Keys {
				if k.Source == s.KeyRef {
					s.KeyHolders = insertUser(s.KeyHolders, k.User)
				}
			}
		}
		s.MaxEpoch = max(s.MaxEpoch, ev.Epoch)
		s.Version++
		s.LastModifier, s.LastModifyTime = author, ev.Time
		return true
	}
	return false
}

func newKeyHolders(keys []WrappedKey, epoch uint32) []crypto.UserID {
	var hs []crypto.UserID
	for _, k := range keys {
		if k.Source.IsZero() && k.Epoch == epoch {
			hs = insertUser(hs, k.User)
		}
	}
	return hs
}

// allowed reports whether writer may perform an event of kind k here;
// author says whether the writer wrote the target message. It returns the
// rule broken.
func (s *Snapshot) allowed(k Kind, writer crypto.UserID, author bool) error {
	if s.Deleted {
		return ErrThreadDeleted
	}
	member, manager := s.IsUser(writer), s.IsManager(writer)
	var role Role
	switch k {
	case KindThreadUpdate, KindThreadDelete:
		if !manager {
			return ErrNotManager
		}
		return nil
	case KindMessagePost:
		role = s.Policy.Post
	case KindMessageUpdate:
		role = s.Policy.EditMessage
	case KindMessageDelete:
		role = s.Policy.DeleteMessage
	}
	if role.allows(member, manager, author) {
		return nil
	}
	switch {
	case !member:
		return ErrNotMember
	case (role == RoleAuthor || role == RoleAuthorOrManager) && !author:
		return ErrNotAuthor
	case role == RoleManager:
		return ErrNotManager
	}
	return ErrNotPermitted
}

func containsUser(l []crypto.UserID, u crypto.UserID) bool {
	_, ok := slices.BinarySearchFunc(l, u, compareUser)
	return ok
}

func compareUser(a, b crypto.UserID) int { return bytes.Compare(a[:], b[:]) }

func insertUser(l []crypto.UserID, u crypto.UserID) []crypto.UserID {
	i, ok := slices.BinarySearchFunc(l, u, compareUser)
	if ok {
		return l
	}
	return slices.Insert(l, i, u)
}

func addRemove(l, add, remove []crypto.UserID) []crypto.UserID {
	l = slices.Clone(l)
	for _, u := range add {
		l = insertUser(l, u)
	}
	return slices.DeleteFunc(l, func(u crypto.UserID) bool { return containsUser(remove, u) })
}

// SortUsers sorts and de-duplicates a user list into its canonical form.
func SortUsers(l []crypto.UserID) []crypto.UserID {
	l = slices.Clone(l)
	slices.SortFunc(l, compareUser)
	return slices.Compact(l)
}
