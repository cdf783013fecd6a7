package protocol

import (
	"fmt"
	"slices"

	"github.com/weftnet/weft/crypto"
)

// Limits bound the content of an event. Replicas of a thread should agree
// on them: an event over a replica's limits is rejected there.
type Limits struct {
	MaxData int // plaintext message data
	MaxMeta int // plaintext public or private metadata
}

// DefaultLimits: 512 KiB of data and 16 KiB per metadata field.
func DefaultLimits() Limits { return Limits{MaxData: 512 << 10, MaxMeta: 16 << 10} }

// CheckEvent applies the rules that need no thread state: the event is well
// formed, within the limits, and signed by its writer.
func CheckEvent(ev *Event, lim Limits) error {
	if err := ev.checkShape(); err != nil {
		return err
	}
	if err := CheckLimits(ev, lim); err != nil {
		return err
	}
	return ev.VerifySignature()
}

// CheckLimits checks the sizes of an event's content against lim. The
// limits apply to plaintext: sealed fields may be SealOverhead longer.
func CheckLimits(ev *Event, lim Limits) error {
	if c := ev.Content; c != nil {
		if len(c.PublicMeta) > lim.MaxMeta {
			return fmt.Errorf("%w: publicMeta of %d bytes exceeds %d", ErrTooLarge, len(c.PublicMeta), lim.MaxMeta)
		}
		if len(c.PrivateMeta) > lim.MaxMeta+crypto.SealOverhead {
			return fmt.Errorf("%w: privateMeta of %d bytes exceeds %d", ErrTooLarge, len(c.PrivateMeta)-crypto.SealOverhead, lim.MaxMeta)
		}
		if len(c.Data) > lim.MaxData+crypto.SealOverhead {
			return fmt.Errorf("%w: data of %d bytes exceeds %d", ErrTooLarge, len(c.Data)-crypto.SealOverhead, lim.MaxData)
		}
	}
	return nil
}

// Tip is a writer's latest event in a thread.
type Tip struct {
	Seq uint64
	ID  EventID
}

// ControlEntry is a control event with what validation derived about it.
type ControlEntry struct {
	Event *Event
	Meta  EventMeta
}

// ThreadState is what a replica needs in order to judge the next event of a
// thread. It changes only through Apply and is not safe for concurrent use.
type ThreadState struct {
	ID      ThreadID
	Genesis *Event
	// Tips is the thread's version vector, with the ID of each writer's
	// latest event.
	Tips map[crypto.UserID]Tip
	// Heads are the events no other event names as a parent, sorted by ID.
	Heads []EventMeta
	// Controls are all control events, in linear order.
	Controls []ControlEntry
	// Current is the fold of all control events: the thread as shown.
	Current Snapshot

	cacheKey  string
	cacheSnap Snapshot
}

// NewThreadState checks a ThreadCreate event and starts its thread's state.
// The event must have passed CheckEvent.
func NewThreadState(ev *Event) (*ThreadState, EventMeta, error) {
	if ev.Kind != KindThreadCreate {
		return nil, EventMeta{}, fmt.Errorf("%w: %s is not a ThreadCreate", ErrUnknownThread, ev.Kind)
	}
	c := &ev.Control
	switch {
	case len(c.AddUsers) == 0:
		return nil, EventMeta{}, fmt.Errorf("%w: no members", ErrBadGenesis)
	case !containsUser(c.AddManagers, ev.Writer):
		return nil, EventMeta{}, fmt.Errorf("%w: the creator must be a manager", ErrBadGenesis)
	}
	for _, m := range c.AddManagers {
		if !containsUser(c.AddUsers, m) {
			return nil, EventMeta{}, fmt.Errorf("%w: manager %s is not a member", ErrBadGenesis, m)
		}
	}
	if err := checkNewKeys(c.Keys, c.AddUsers, 0); err != nil {
		return nil, EventMeta{}, err
	}
	if len(c.Keys) != len(c.AddUsers) {
		return nil, EventMeta{}, fmt.Errorf("%w: keys for non-members", ErrBadKeys)
	}
	id := ev.ID()
	meta := EventMeta{
		ID: id, Kind: ev.Kind, Writer: ev.Writer, Seq: 1, Lamport: 1, Time: ev.Time,
		KeyRef: id, Control: VersionVector{ev.Writer: 1},
	}
	ts := &ThreadState{ID: ThreadID(id), Genesis: ev, Tips: map[crypto.UserID]Tip{}}
	ts.Apply(ev, meta)
	return ts, meta, nil
}

// checkNewKeys checks that a fresh key for epoch is wrapped to every one of
// users and to nobody else.
func checkNewKeys(keys []WrappedKey, users []crypto.UserID, epoch uint32) error {
	got := 0
	for _, k := range keys {
		if !k.Source.IsZero() {
			continue
		}
		if k.Epoch != epoch {
			return fmt.Errorf("%w: new key for epoch %d in an event of epoch %d", ErrBadKeys, k.Epoch, epoch)
		}
		if !containsUser(users, k.User) {
			return fmt.Errorf("%w: new key wrapped to non-member %s", ErrBadKeys, k.User)
		}
		got++
	}
	if got != len(users) {
		return fmt.Errorf("%w: new key wrapped to %d of %d members", ErrBadKeys, got, len(users))
	}
	return nil
}

// Validate judges an event of this thread against the rules, given the
// metadata of its parents (in the order of ev.Parents). The event must have
// passed CheckEvent and must not be stored already (a stored event is a
// duplicate, not an equivocation). It returns what the event's metadata
// will be, and changes nothing.
func (ts *ThreadState) Validate(ev *Event, parents []EventMeta) (EventMeta, error) {
	if ev.Kind == KindThreadCreate {
		return EventMeta{}, fmt.Errorf("%w: a second ThreadCreate", ErrWrongThread)
	}
	if ev.Thread != ts.ID {
		return EventMeta{}, fmt.Errorf("%w: event of thread %s offered to %s", ErrWrongThread, ev.Thread, ts.ID)
	}
	tip := ts.Tips[ev.Writer]
	switch {
	case ev.Seq <= tip.Seq:
		return EventMeta{}, fmt.Errorf("%w: %s already wrote sequence number %d", ErrEquivocation, ev.Writer, ev.Seq)
	case ev.Seq > tip.Seq+1:
		return EventMeta{}, fmt.Errorf("%w: %s's sequence number %d follows %d", ErrSeqGap, ev.Writer, ev.Seq, tip.Seq)
	}
	if len(ev.Parents) == 0 {
		return EventMeta{}, fmt.Errorf("%w: no parents", ErrBadParents)
	}
	if len(parents) != len(ev.Parents) {
		return EventMeta{}, fmt.Errorf("%w: %d of %d", ErrMissingParents, len(parents), len(ev.Parents))
	}
	var lamport uint64
	cv := VersionVector{}
	ownPrev := tip.Seq == 0
	for i := range parents {
		p := &parents[i]
		if p.ID != ev.Parents[i] {
			return EventMeta{}, fmt.Errorf("%w: parent %d is %s, metadata for %s", ErrMissingParents, i, ev.Parents[i], p.ID)
		}
		lamport = max(lamport, p.Lamport)
		cv.Merge(p.Control)
		if p.ID == tip.ID {
			ownPrev = true
		}
	}
	if !ownPrev {
		return EventMeta{}, fmt.Errorf("%w: does not follow the writer's previous event %s", ErrBadParents, tip.ID)
	}
	if ev.Lamport != lamport+1 {
		return EventMeta{}, fmt.Errorf("%w: %d, parents imply %d", ErrBadLamport, ev.Lamport, lamport+1)
	}
	snap := ts.snapshotFor(cv)

	id := ev.ID()
	meta := EventMeta{
		ID: id, Kind: ev.Kind, Writer: ev.Writer, Seq: ev.Seq, Lamport: ev.Lamport, Time: ev.Time,
		Epoch: ev.Epoch, KeyRef: snap.KeyRef, Control: cv,
	}
	author := false
	switch ev.Kind {
	case KindMessagePost:
		meta.Target = id
	case KindMessageUpdate, KindMessageDelete:
		i := slices.Index(ev.Parents, ev.Control.Target)
		if i < 0 {
			return EventMeta{}, fmt.Errorf("%w: the target must be one of the parents", ErrBadTarget)
		}
		if parents[i].Kind != KindMessagePost {
			return EventMeta{}, fmt.Errorf("%w: %s is a %s, not a message", ErrBadTarget, parents[i].ID, parents[i].Kind)
		}
		meta.Target = parents[i].ID
		author = parents[i].Writer == ev.Writer
	}
	if err := snap.allowed(ev.Kind, ev.Writer, author); err != nil {
		return EventMeta{}, fmt.Errorf("%w: %s may not %s here", err, ev.Writer, kindVerb(ev.Kind))
	}
	if ev.Kind == KindThreadUpdate {
		if err := checkUpdate(&snap, ev); err != nil {
			return EventMeta{}, err
		}
		if ev.Control.NewEpoch {
			meta.KeyRef = id
		}
	} else if ev.Epoch != snap.Epoch {
		return EventMeta{}, fmt.Errorf("%w: epoch %d, the thread is at epoch %d here", ErrUnknownEpoch, ev.Epoch, snap.Epoch)
	}
	if ev.Kind.IsControl() {
		meta.Control = cv.Clone()
		meta.Control[ev.Writer] = ev.Seq
	}
	return meta, nil
}

func kindVerb(k Kind) string {
	return [...]string{"", "create a thread", "update the thread", "delete the thread", "post", "update this message", "delete this message"}[k]
}

// checkUpdate applies the rules of a ThreadUpdate at its causal position.
func checkUpdate(snap *Snapshot, ev *Event) error {
	c := &ev.Control
	next := snap.clone()
	next.applyControl(ev, ev.ID())
	switch {
	case len(next.Managers) == 0:
		return fmt.Errorf("%w: a thread must keep a manager", ErrBadUpdate)
	case len(c.AddManagers) > 0 && slices.ContainsFunc(c.AddManagers, func(u crypto.UserID) bool { return !next.IsUser(u) }):
		return fmt.Errorf("%w: a manager must be a member", ErrBadUpdate)
	case (len(c.RemoveUsers) > 0 || len(c.RemoveManagers) > 0) && !c.NewEpoch:
		return fmt.Errorf("%w: removing a member or manager must start a new key epoch", ErrBadKeys)
	}
	if c.NewEpoch {
		if ev.Epoch != snap.MaxEpoch+1 {
			return fmt.Errorf("%w: new epoch %d, want %d", ErrUnknownEpoch, ev.Epoch, snap.MaxEpoch+1)
		}
		if err := checkNewKeys(c.Keys, next.Users, ev.Epoch); err != nil {
			return err
		}
	} else if ev.Epoch != snap.Epoch {
		return fmt.Errorf("%w: epoch %d, the thread is at epoch %d here", ErrUnknownEpoch, ev.Epoch, snap.Epoch)
	}
	current := snap.KeyRef
	if c.NewEpoch {
		current = EventID{}
	}
	for _, k := range c.Keys {
		if k.Source.IsZero() {
			// A key introduced by this event: only a new epoch has one,
			// and checkNewKeys checked who received it.
			if !c.NewEpoch {
				return fmt.Errorf("%w: a new key in an update that starts no epoch", ErrBadKeys)
			}
			continue
		}
		intro, ok := snap.HasKey(k.Source)
		if !ok || intro.Epoch != k.Epoch {
			return fmt.Errorf("%w: key %s of epoch %d is not known here", ErrBadKeys, k.Source, k.Epoch)
		}
		if !next.IsUser(k.User) {
			return fmt.Errorf("%w: key wrapped to non-member %s", ErrBadKeys, k.User)
		}
	}
	// Every added member must receive the key the thread will use next.
	for _, u := range c.AddUsers {
		if snap.IsUser(u) {
			continue
		}
		if !slices.ContainsFunc(c.Keys, func(k WrappedKey) bool { return k.User == u && k.Source == current }) {
			return fmt.Errorf("%w: new member %s does not receive the current key", ErrBadKeys, u)
		}
	}
	return nil
}

// Apply records an accepted event: its writer's tip, the heads and, for a
// control event, the thread's state. meta must come from Validate (or
// NewThreadState) for this event.
func (ts *ThreadState) Apply(ev *Event, meta EventMeta) {
	ts.Tips[meta.Writer] = Tip{Seq: meta.Seq, ID: meta.ID}
	ts.Heads = slices.DeleteFunc(ts.Heads, func(h EventMeta) bool { return slices.Contains(ev.Parents, h.ID) })
	if i, found := slices.BinarySearchFunc(ts.Heads, meta.ID, func(h EventMeta, id EventID) int { return h.ID.Compare(id) }); !found {
		ts.Heads = slices.Insert(ts.Heads, i, meta)
	}
	if meta.Kind.IsControl() {
		ts.addControl(ControlEntry{Event: ev, Meta: meta})
	}
}

func (ts *ThreadState) addControl(ce ControlEntry) {
	o := ce.Meta.Order()
	i, _ := slices.BinarySearchFunc(ts.Controls, o, func(c ControlEntry, o Order) int { return c.Meta.Order().Compare(o) })
	ts.Controls = slices.Insert(ts.Controls, i, ce)
	ts.Current = ts.fold(func(*ControlEntry) bool { return true })
	ts.cacheKey = ""
}

// fold applies, in linear order, the control events that include selects.
func (ts *ThreadState) fold(include func(*ControlEntry) bool) Snapshot {
	var s Snapshot
	for i := range ts.Controls {
		c := &ts.Controls[i]
		if include(c) {
			s.applyControl(c.Event, c.Meta.ID)
		}
	}
	return s
}

// snapshotFor returns the fold of the control events in the causal past
// described by the control vector cv.
func (ts *ThreadState) snapshotFor(cv VersionVector) Snapshot {
	key := string(cv.AppendBinary(nil))
	if ts.cacheKey == key {
		return ts.cacheSnap
	}
	s := ts.fold(func(c *ControlEntry) bool { return cv[c.Meta.Writer] >= c.Meta.Seq })
	ts.cacheKey, ts.cacheSnap = key, s
	return s
}

// SnapshotAt returns the thread as it stands just before position o in the
// linear order: the fold of the control events that sort before o. Message
// events are judged against it when the visible state is computed.
func (ts *ThreadState) SnapshotAt(o Order) Snapshot {
	n := len(ts.Controls)
	if n == 0 || ts.Controls[n-1].Meta.Order().Less(o) {
		return ts.Current
	}
	return ts.fold(func(c *ControlEntry) bool { return c.Meta.Order().Less(o) })
}

// LastControlOrder is the linear position of the latest control event.
func (ts *ThreadState) LastControlOrder() Order {
	return ts.Controls[len(ts.Controls)-1].Meta.Order()
}

// Control returns the control event with the given ID.
func (ts *ThreadState) Control(id EventID) (*ControlEntry, bool) {
	for i := range ts.Controls {
		if ts.Controls[i].Meta.ID == id {
			return &ts.Controls[i], true
		}
	}
	return nil, false
}

// VersionVector returns the thread's version vector.
func (ts *ThreadState) VersionVector() VersionVector {
	v := make(VersionVector, len(ts.Tips))
	for w, t := range ts.Tips {
		v[w] = t.Seq
	}
	return v
}

// NextHeader fills in what a new event by writer needs from the thread's
// state: thread, sequence number, parents (the heads, plus extra such as a
// message edit's target), Lamport time and the current epoch. The caller
// sets the kind, time, control and content, then signs.
func (ts *ThreadState) NextHeader(ev *Event, writer crypto.UserID, extra ...EventMeta) {
	ev.Thread = ts.ID
	ev.Writer = writer
	ev.Seq = ts.Tips[writer].Seq + 1
	parents := slices.Clone(ts.Heads)
	if room := MaxParents - 1 - len(extra); len(parents) > room {
		// Many concurrent writers: name the latest heads. The others stay
		// heads and the next event names them; any known event may be a
		// parent, so this only delays, never breaks, the merge.
		slices.SortFunc(parents, func(a, b EventMeta) int { return b.Order().Compare(a.Order()) })
		parents = parents[:room]
	}
	for _, x := range extra {
		if !slices.ContainsFunc(parents, func(h EventMeta) bool { return h.ID == x.ID }) {
			parents = append(parents, x)
		}
	}
	if t, ok := ts.Tips[writer]; ok && !slices.ContainsFunc(parents, func(h EventMeta) bool { return h.ID == t.ID }) {
		// The writer's previous event chains its events; it may no longer
		// be a head if others have replied to it. It is an ancestor of a
		// head, so its Lamport time does not matter here.
		parents = append(parents, EventMeta{ID: t.ID})
	}
	slices.SortFunc(parents, func(a, b EventMeta) int { return a.ID.Compare(b.ID) })
	ev.Parents = ev.Parents[:0]
	var lamport uint64
	for _, p := range parents {
		ev.Parents = append(ev.Parents, p.ID)
		lamport = max(lamport, p.Lamport)
	}
	ev.Lamport = lamport + 1
	ev.Epoch = ts.Current.Epoch
	ev.hasID = false
}

// RestoreThreadState rebuilds a thread's state from its control events (in
// any order), its writers' tips and its heads, as kept in storage.
func RestoreThreadState(controls []ControlEntry, tips map[crypto.UserID]Tip, heads []EventMeta) (*ThreadState, error) {
	var genesis *Event
	for _, c := range controls {
		if c.Meta.Kind == KindThreadCreate {
			genesis = c.Event
		}
	}
	if genesis == nil {
		return nil, fmt.Errorf("%w: no ThreadCreate among %d control events", ErrUnknownThread, len(controls))
	}
	ts := &ThreadState{ID: ThreadID(genesis.ID()), Genesis: genesis, Tips: tips, Heads: slices.Clone(heads)}
	slices.SortFunc(ts.Heads, func(a, b EventMeta) int { return a.ID.Compare(b.ID) })
	ts.Controls = slices.Clone(controls)
	slices.SortFunc(ts.Controls, func(a, b ControlEntry) int { return a.Meta.Order().Compare(b.Meta.Order()) })
	ts.Current = ts.fold(func(*ControlEntry) bool { return true })
	return ts, nil
}
