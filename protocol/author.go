package protocol

import (
	"crypto/rand"
	"fmt"
	"slices"

	"github.com/weftnet/weft/crypto"
)

// This file is the author's side of the rules: building events that the
// rules accept. It does no I/O; the caller supplies the time and the keys.

// Signer is who writes an event: the member it writes as (UserID), the key
// that signs and whose sequence numbers it uses (WriterID: the user's own
// key, or one of its devices'), and, for a device, its certificate, which
// goes with the device's first event in each thread. *crypto.Identity is
// a Signer writing with the user's own key; Device is one writing with a
// device key.
type Signer interface {
	UserID() crypto.UserID
	WriterID() crypto.UserID
	DeviceCertBytes() []byte
	Sign(domain string, msg []byte) []byte
}

// Device is a Signer that writes as the user its certificate names, with
// the device's own key.
type Device struct {
	Key  *crypto.DeviceIdentity
	Cert *crypto.DeviceCert
}

// UserID is the certificate's user.
func (d *Device) UserID() crypto.UserID { return d.Cert.User() }

// WriterID is the device key, as a writer.
func (d *Device) WriterID() crypto.UserID { return crypto.UserID(d.Key.DeviceID()) }

// DeviceCertBytes is the certificate.
func (d *Device) DeviceCertBytes() []byte { return d.Cert.Bytes() }

// Sign signs with the device key.
func (d *Device) Sign(domain string, msg []byte) []byte { return d.Key.Sign(domain, msg) }

// KeyRing holds the thread keys a user can use, by the event that
// introduced each (the KeyRef).
type KeyRing map[EventID]crypto.ThreadKey

// NewThread builds and signs a ThreadCreate. users and managers are
// canonicalised; the creator is added to both.
func NewThread(id Signer, users, managers []crypto.UserID, policy Policy, publicMeta, privateMeta []byte, now int64) (*Event, crypto.ThreadKey, error) {
	me := id.UserID()
	managers = SortUsers(append(slices.Clone(managers), me))
	users = SortUsers(append(append(slices.Clone(users), managers...), me))
	key, err := crypto.NewThreadKey()
	if err != nil {
		return nil, key, err
	}
	ev := &Event{Kind: KindThreadCreate, Writer: id.WriterID(), Seq: 1, Lamport: 1, Time: now, Cert: id.DeviceCertBytes()}
	ev.Control.AddUsers = users
	ev.Control.AddManagers = managers
	ev.Control.Policy = policy
	if _, err := rand.Read(ev.Control.Nonce[:]); err != nil {
		return nil, key, err
	}
	if ev.Control.Keys, err = wrapFor(users, ev.Control.Nonce, 0, EventID{}, key); err != nil {
		return nil, key, err
	}
	ev.Content = &Content{PublicMeta: publicMeta}
	if ev.Content.PrivateMeta, err = crypto.Seal(key, privateMeta, ev.SealAAD(FieldPrivateMeta)); err != nil {
		return nil, key, err
	}
	return ev, key, ev.Sign(id)
}

func wrapFor(users []crypto.UserID, binding [32]byte, epoch uint32, source EventID, key crypto.ThreadKey) ([]WrappedKey, error) {
	out := make([]WrappedKey, 0, len(users))
	for _, u := range users {
		w, err := crypto.WrapThreadKey(u, binding, epoch, key)
		if err != nil {
			return nil, fmt.Errorf("wrapping the thread key for %s: %w", u, err)
		}
		out = append(out, WrappedKey{User: u, Epoch: epoch, Source: source, Wrapped: w})
	}
	return out, nil
}

// ThreadChange describes a ThreadUpdate. Nil metadata and policy mean
// "unchanged".
type ThreadChange struct {
	AddUsers, RemoveUsers       []crypto.UserID
	AddManagers, RemoveManagers []crypto.UserID
	PublicMeta, PrivateMeta     []byte
	Policy                      *Policy
	// RotateKey starts a new epoch even if nobody is removed (removal
	// always does).
	RotateKey bool
}

// NewUpdate builds and signs a ThreadUpdate by id on the thread's current
// state. ring must hold the current key (to seal metadata and give it to
// new members) and, if the policy shares history, the earlier keys to give
// new members. It returns the new key if the update starts an epoch.
func NewUpdate(ts *ThreadState, id Signer, ch ThreadChange, ring KeyRing, now int64) (*Event, *crypto.ThreadKey, error) {
	ev := &Event{Kind: KindThreadUpdate, Time: now}
	at := ts.NextHeader(ev, id)
	snap := &at
	c := &ev.Control
	// Adding a manager makes them a member; only real changes are written.
	c.AddUsers = SortUsers(slices.DeleteFunc(append(slices.Clone(ch.AddUsers), ch.AddManagers...), snap.IsUser))
	c.RemoveUsers = SortUsers(slices.DeleteFunc(slices.Clone(ch.RemoveUsers), func(u crypto.UserID) bool { return !snap.IsUser(u) }))
	c.AddManagers = SortUsers(slices.DeleteFunc(slices.Clone(ch.AddManagers), snap.IsManager))
	c.RemoveManagers = SortUsers(slices.DeleteFunc(slices.Clone(ch.RemoveManagers), func(u crypto.UserID) bool { return !snap.IsManager(u) }))
	for _, u := range c.RemoveUsers {
		if snap.IsManager(u) && !slices.Contains(c.RemoveManagers, u) {
			c.RemoveManagers = insertUser(c.RemoveManagers, u)
		}
	}
	c.NewEpoch = ch.RotateKey || len(c.RemoveUsers) > 0 || len(c.RemoveManagers) > 0 || snap.NeedsRotation()
	if len(c.RemoveUsers) > 0 {
		// What this author has seen of the removed: their posts it has
		// not seen (and that have not seen the removal) will be void.
		c.HasSeen, c.Seen = true, ts.SeenOf(c.RemoveUsers)
	}
	if ch.Policy != nil {
		c.SetPolicy, c.Policy = true, *ch.Policy
	}
	next := snap.clone()
	next.applyControl(ev, EventID{}, id.UserID())
	policy := next.Policy

	cur, ok := ring[snap.KeyRef]
	if !ok {
		return nil, nil, fmt.Errorf("%w: the current thread key (epoch %d) is not available", ErrUnknownEpoch, snap.Epoch)
	}
	var newKey *crypto.ThreadKey
	sealKey := cur
	if c.NewEpoch {
		k, err := crypto.NewThreadKey()
		if err != nil {
			return nil, nil, err
		}
		newKey, sealKey = &k, k
		ev.Epoch = snap.MaxEpoch + 1
		ws, err := wrapFor(next.Users, ts.ID, ev.Epoch, EventID{}, k)
		if err != nil {
			return nil, nil, err
		}
		c.Keys = append(c.Keys, ws...)
	} else {
		ws, err := wrapFor(c.AddUsers, ts.ID, snap.Epoch, snap.KeyRef, cur)
		if err != nil {
			return nil, nil, err
		}
		c.Keys = append(c.Keys, ws...)
	}
	if policy.ShareHistory && len(c.AddUsers) > 0 {
		for _, intro := range snap.Keys {
			k, ok := ring[intro.Ref]
			if !ok || (!c.NewEpoch && intro.Ref == snap.KeyRef) {
				continue
			}
			ws, err := wrapFor(c.AddUsers, ts.ID, intro.Epoch, intro.Ref, k)
			if err != nil {
				return nil, nil, err
			}
			c.Keys = append(c.Keys, ws...)
		}
	}
	slices.SortFunc(c.Keys, func(a, b WrappedKey) int { return compareKeys(&a, &b) })
	ev.Content = &Content{}
	if ch.PublicMeta != nil {
		c.SetPublicMeta = true
		ev.Content.PublicMeta = ch.PublicMeta
	}
	if ch.PrivateMeta != nil {
		c.SetPrivateMeta = true
		var err error
		if ev.Content.PrivateMeta, err = crypto.Seal(sealKey, ch.PrivateMeta, ev.SealAAD(FieldPrivateMeta)); err != nil {
			return nil, nil, err
		}
	}
	return ev, newKey, ev.Sign(id)
}

// NewDelete builds and signs a ThreadDelete.
func NewDelete(ts *ThreadState, id Signer, now int64) (*Event, error) {
	ev := &Event{Kind: KindThreadDelete, Time: now, Content: &Content{}}
	ts.NextHeader(ev, id)
	return ev, ev.Sign(id)
}

// NewPost builds and signs a MessagePost sealed with the thread's current
// key, which ring must hold.
func NewPost(ts *ThreadState, id Signer, ring KeyRing, publicMeta, privateMeta, data []byte, now int64) (*Event, error) {
	ev := &Event{Kind: KindMessagePost, Time: now}
	at := ts.NextHeader(ev, id)
	return ev, sealAndSign(ev, &at, id, ring, publicMeta, privateMeta, data)
}

// NewMessageUpdate builds and signs a MessageUpdate that replaces the
// content of the message target.
func NewMessageUpdate(ts *ThreadState, id Signer, ring KeyRing, target EventMeta, publicMeta, privateMeta, data []byte, now int64) (*Event, error) {
	ev := &Event{Kind: KindMessageUpdate, Time: now}
	ev.Control.Target = target.ID
	at := ts.NextHeader(ev, id, target)
	return ev, sealAndSign(ev, &at, id, ring, publicMeta, privateMeta, data)
}

// NewMessageDelete builds and signs a MessageDelete of target.
func NewMessageDelete(ts *ThreadState, id Signer, target EventMeta, now int64) (*Event, error) {
	ev := &Event{Kind: KindMessageDelete, Time: now, Content: &Content{}}
	ev.Control.Target = target.ID
	ts.NextHeader(ev, id, target)
	return ev, ev.Sign(id)
}

func sealAndSign(ev *Event, at *Snapshot, id Signer, ring KeyRing, publicMeta, privateMeta, data []byte) error {
	key, ok := ring[at.KeyRef]
	if !ok {
		return fmt.Errorf("%w: the current thread key (epoch %d) is not available", ErrUnknownEpoch, at.Epoch)
	}
	ev.Content = &Content{PublicMeta: publicMeta}
	var err error
	if ev.Content.PrivateMeta, err = crypto.Seal(key, privateMeta, ev.SealAAD(FieldPrivateMeta)); err != nil {
		return err
	}
	if ev.Content.Data, err = crypto.Seal(key, data, ev.SealAAD(FieldData)); err != nil {
		return err
	}
	return ev.Sign(id)
}

// OpenField opens one sealed field of ev (FieldPrivateMeta or FieldData).
func OpenField(ev *Event, field string, key crypto.ThreadKey) ([]byte, error) {
	if ev.Content == nil {
		return nil, fmt.Errorf("%w: content was deleted", crypto.ErrOpen)
	}
	sealed := ev.Content.PrivateMeta
	if field == FieldData {
		sealed = ev.Content.Data
	}
	return crypto.Open(key, sealed, ev.SealAAD(field))
}

// UnwrapKeys adds to ring every key in ev that is wrapped to id. It returns
// how many it added and the last unwrap error (a wrap that does not open is
// skipped: it may be a forgery, or meant for another key of the same user).
func UnwrapKeys(ring KeyRing, ev *Event, id *crypto.Identity) (int, error) {
	me := id.UserID()
	n := 0
	var lastErr error
	for _, k := range ev.Control.Keys {
		if k.User != me {
			continue
		}
		ref := k.Source
		if ref.IsZero() {
			ref = ev.ID()
		}
		if _, ok := ring[ref]; ok {
			continue
		}
		key, err := id.UnwrapThreadKey(ev.KeyBinding(), k.Epoch, k.Wrapped)
		if err != nil {
			lastErr = err
			continue
		}
		ring[ref] = key
		n++
	}
	return n, lastErr
}
