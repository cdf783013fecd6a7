package protocol

import (
	"bytes"
	"fmt"
	"maps"
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
	if _, err := ev.DeviceCert(); err != nil {
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
	// Forks maps each writer caught signing two events with one sequence
	// number to the lowest such number: its events from there on are void
	// (see RecordFork).
	Forks map[crypto.UserID]uint64
	// Authors maps each device writer of the thread to its user (writers
	// absent are users writing with their own key).
	Authors map[crypto.UserID]crypto.UserID

	removals  []removal                // effective removals with seen marks, in linear order
	byID      map[EventID]ControlEntry // Controls by ID
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
	var author crypto.UserID
	if cert, err := ev.DeviceCert(); err != nil {
		return nil, EventMeta{}, err
	} else if cert != nil {
		author = cert.User()
	}
	creator := ev.Writer
	if !author.IsZero() {
		creator = author
	}
	switch {
	case len(c.AddUsers) == 0:
		return nil, EventMeta{}, fmt.Errorf("%w: no members", ErrBadGenesis)
	case !containsUser(c.AddManagers, creator):
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
		ID: id, Kind: ev.Kind, Writer: ev.Writer, Author: author, Seq: 1, Lamport: 1, Time: ev.Time,
		KeyRef: id,
	}
	ts := &ThreadState{ID: ThreadID(id), Genesis: ev, Tips: map[crypto.UserID]Tip{}, byID: map[EventID]ControlEntry{}}
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
	if len(ev.Parents) == 0 {
		return EventMeta{}, fmt.Errorf("%w: no parents", ErrBadParents)
	}
	if len(parents) != len(ev.Parents) {
		return EventMeta{}, fmt.Errorf("%w: %d of %d", ErrMissingParents, len(parents), len(ev.Parents))
	}
	// A writer's events form a chain: sequence number k names the writer's
	// event k-1 among its parents, and none of its later ones. This is a
	// rule on the event and its parents alone, so every replica judges it
	// alike; a second event with a number already used is valid by it (an
	// equivocation: see RecordFork), not a rejection that would split the
	// replicas that saw the versions in different orders.
	var lamport uint64
	var heads []EventID
	ownPrev := ev.Seq == 1
	// The member the event writes as: a device's certificate names it in
	// the device's first event, and each later event inherits it from its
	// predecessor in the chain, which is among its parents.
	var author crypto.UserID
	if cert, err := ev.DeviceCert(); err != nil {
		return EventMeta{}, err
	} else if cert != nil {
		author = cert.User()
	}
	var prev *EventMeta // the writer's previous event
	for i := range parents {
		p := &parents[i]
		if p.ID != ev.Parents[i] {
			return EventMeta{}, fmt.Errorf("%w: parent %d is %s, metadata for %s", ErrMissingParents, i, ev.Parents[i], p.ID)
		}
		lamport = max(lamport, p.Lamport)
		heads = append(heads, ts.controlContribution(p)...)
		if p.Writer == ev.Writer {
			switch {
			case p.Seq >= ev.Seq:
				return EventMeta{}, fmt.Errorf("%w: sequence number %d names the writer's event %d as a parent", ErrBadParents, ev.Seq, p.Seq)
			case p.Seq == ev.Seq-1:
				if ownPrev && p.Author != author {
					return EventMeta{}, fmt.Errorf("%w: the writer's events %d name different users", ErrBadParents, p.Seq)
				}
				ownPrev, author = true, p.Author
				prev = p
			}
		}
	}
	if !ownPrev {
		return EventMeta{}, fmt.Errorf("%w: sequence number %d does not name the writer's event %d", ErrBadParents, ev.Seq, ev.Seq-1)
	}
	if ev.Lamport != lamport+1 {
		return EventMeta{}, fmt.Errorf("%w: %d, parents imply %d", ErrBadLamport, ev.Lamport, lamport+1)
	}
	heads = ts.reduceHeads(heads)
	snap := ts.snapshotFor(heads)

	id := ev.ID()
	meta := EventMeta{
		ID: id, Kind: ev.Kind, Writer: ev.Writer, Author: author, Seq: ev.Seq, Lamport: ev.Lamport, Time: ev.Time,
		Epoch: ev.Epoch, KeyRef: snap.KeyRef, Control: heads, Run: 1,
	}
	user := meta.User()
	if prev != nil {
		// The run goes on unless a parent by another user is newer than
		// the writer's previous event (it has seen something new).
		meta.Run = prev.Run + 1
		for i := range parents {
			if p := &parents[i]; p.User() != user && p.Lamport > prev.Lamport {
				meta.Run = 1
				break
			}
		}
	}
	ownsTarget := false
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
		ownsTarget = parents[i].User() == user
	}
	if err := snap.allowed(ev.Kind, user, ownsTarget); err != nil {
		return EventMeta{}, fmt.Errorf("%w: %s may not %s here", err, user, kindVerb(ev.Kind))
	}
	if max := snap.Policy.RunBound(); meta.Run > max {
		return EventMeta{}, fmt.Errorf("%w: %s wrote %d events in a row without seeing anything new of others (the thread allows %d)", ErrRunTooLong, user, meta.Run, max)
	}
	if ev.Kind == KindThreadUpdate {
		if err := checkUpdate(&snap, ev, user); err != nil {
			return EventMeta{}, err
		}
		if ev.Control.NewEpoch {
			meta.KeyRef = id
		}
	} else if ev.Epoch != snap.Epoch {
		return EventMeta{}, fmt.Errorf("%w: epoch %d, the thread is at epoch %d here", ErrUnknownEpoch, ev.Epoch, snap.Epoch)
	}
	return meta, nil
}

func kindVerb(k Kind) string {
	return [...]string{"", "create a thread", "update the thread", "delete the thread", "post", "update this message", "delete this message"}[k]
}

// checkUpdate applies the rules of a ThreadUpdate at its causal position.
func checkUpdate(snap *Snapshot, ev *Event, user crypto.UserID) error {
	c := &ev.Control
	next := snap.clone()
	next.applyControl(ev, ev.ID(), user)
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
	if !meta.Author.IsZero() {
		if ts.Authors == nil {
			ts.Authors = map[crypto.UserID]crypto.UserID{}
		}
		ts.Authors[meta.Writer] = meta.Author
	}
	if tip, ok := ts.Tips[meta.Writer]; !ok || meta.Seq > tip.Seq {
		// A second version of a sequence number (RecordFork) does not
		// move the tip back.
		ts.Tips[meta.Writer] = Tip{Seq: meta.Seq, ID: meta.ID}
	}
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
	if ts.byID == nil {
		ts.byID = map[EventID]ControlEntry{}
	}
	ts.byID[ce.Meta.ID] = ce
	ts.refold()
}

// refold recomputes the visible state after the control events or the
// forks changed.
func (ts *ThreadState) refold() {
	// One pass: the visible fold (foldVisible of every control event),
	// noting on the way the removals that take effect in it.
	ts.cacheKey = ""
	ts.removals = ts.removals[:0]
	var s Snapshot
	defer func() { s.Forks = ts.Forks; ts.Current = s }()
	for i := range ts.Controls {
		c := &ts.Controls[i]
		if c.Meta.Kind != KindThreadCreate && ts.forked(c.Meta.Writer, c.Meta.Seq) {
			continue
		}
		before := s.Users
		if !s.applyControl(c.Event, c.Meta.ID, c.Meta.User()) || !c.Event.Control.HasSeen {
			continue
		}
		r := removal{id: c.Meta.ID, seen: map[crypto.UserID]uint64{}}
		for _, u := range c.Event.Control.RemoveUsers {
			if containsUser(before, u) {
				r.users = append(r.users, u)
			}
		}
		for _, m := range c.Event.Control.Seen {
			r.seen[m.Writer] = m.Seq
		}
		if len(r.users) > 0 {
			ts.removals = append(ts.removals, r)
		}
	}
}

// removal is an effective removal of users whose author said what it had
// seen of their writers (Control.Seen).
type removal struct {
	id    EventID
	users []crypto.UserID
	seen  map[crypto.UserID]uint64
}

// VoidByRemoval reports whether a message event is void because a
// removal of its user took effect that had not seen it and that it has not
// seen: a removal wins over every post of the removed member it did not
// see, wherever the post sorts. (By the linear order alone, a removed
// member that ignores its removal could place posts before it: one with
// the removal's Lamport time and a lower ID, or a chain built on old
// events.) Removals written before seen marks existed are judged by the
// linear order only.
func (ts *ThreadState) VoidByRemoval(m *EventMeta) bool {
	user := m.User()
	for i := range ts.removals {
		r := &ts.removals[i]
		if !containsUser(r.users, user) || m.Seq <= r.seen[m.Writer] {
			continue
		}
		heads := m.Control
		if m.LegacyControl != nil {
			heads = ts.legacyHeads(m.LegacyControl, crypto.UserID{}, 0)
		}
		if ts.closure(heads)[r.id] {
			continue // it saw the removal (and was let in again)
		}
		return true
	}
	return false
}

// RemovalUnseen returns, for an effective removal with seen marks, the
// sequence number after which each writer of the removed users has events
// it did not see (the first of them is where the visible state changes).
func (ts *ThreadState) RemovalUnseen(id EventID) (map[crypto.UserID]uint64, bool) {
	for i := range ts.removals {
		if ts.removals[i].id != id {
			continue
		}
		out := map[crypto.UserID]uint64{}
		for w := range ts.Tips {
			if containsUser(ts.removals[i].users, ts.authorOf(w)) {
				out[w] = ts.removals[i].seen[w]
			}
		}
		return out, true
	}
	return nil, false
}

// authorOf returns the user a writer writes as.
func (ts *ThreadState) authorOf(w crypto.UserID) crypto.UserID {
	if u, ok := ts.Authors[w]; ok {
		return u
	}
	return w
}

// SeenOf returns what the thread holds of the writers of users: the
// writer's highest sequence number, sorted by writer (for Control.Seen).
func (ts *ThreadState) SeenOf(users []crypto.UserID) []SeqMark {
	var out []SeqMark
	for w, tip := range ts.Tips {
		if containsUser(users, ts.authorOf(w)) {
			out = append(out, SeqMark{Writer: w, Seq: tip.Seq})
		}
	}
	slices.SortFunc(out, func(a, b SeqMark) int { return bytes.Compare(a.Writer[:], b.Writer[:]) })
	if len(out) > MaxSeen {
		out = out[:MaxSeen]
	}
	return out
}

// fold applies, in linear order, the control events that include selects.
func (ts *ThreadState) fold(include func(*ControlEntry) bool) Snapshot {
	var s Snapshot
	for i := range ts.Controls {
		c := &ts.Controls[i]
		if include(c) {
			s.applyControl(c.Event, c.Meta.ID, c.Meta.User())
		}
	}
	return s
}

// foldVisible is fold for the visible state: the control events of an
// equivocating writer from its fork on take no effect, and the snapshot
// carries the forks so that messages judged against it follow the same
// rule.
func (ts *ThreadState) foldVisible(include func(*ControlEntry) bool) Snapshot {
	s := ts.fold(func(c *ControlEntry) bool {
		return include(c) && (c.Meta.Kind == KindThreadCreate || !ts.forked(c.Meta.Writer, c.Meta.Seq))
	})
	s.Forks = ts.Forks
	return s
}

// forked reports whether a writer's event with this sequence number is at
// or after the writer's fork.
func (ts *ThreadState) forked(w crypto.UserID, seq uint64) bool {
	f, ok := ts.Forks[w]
	return ok && seq >= f
}

// RecordFork notes that writer signed two different events with sequence
// number seq: an equivocation. Both are kept, and every replica that holds
// both applies the same rule: the writer's events from the lowest forked
// number on are void (its messages hidden, its control events without
// effect), whichever version arrived first. The events of others that
// name either version stay valid, so no honest message is lost. It reports
// whether the fork is new or lower than the one known.
func (ts *ThreadState) RecordFork(writer crypto.UserID, seq uint64) bool {
	if f, ok := ts.Forks[writer]; ok && f <= seq {
		return false
	}
	if ts.Forks == nil {
		ts.Forks = map[crypto.UserID]uint64{}
	}
	forks := maps.Clone(ts.Forks) // snapshots handed out keep theirs
	forks[writer] = seq
	ts.Forks = forks
	ts.refold()
	return true
}

// IsForked reports whether an event of writer with sequence number seq is
// void because the writer equivocated at or before it.
func (ts *ThreadState) IsForked(writer crypto.UserID, seq uint64) bool {
	return ts.forked(writer, seq)
}

// controlContribution is what parent p adds to its child's control heads:
// itself if it is a control event, else its own control heads.
func (ts *ThreadState) controlContribution(p *EventMeta) []EventID {
	if p.Kind.IsControl() {
		return []EventID{p.ID}
	}
	if p.LegacyControl != nil {
		return ts.legacyHeads(p.LegacyControl, crypto.UserID{}, 0)
	}
	return p.Control
}

// controlParents returns the control heads of a control event's strict
// causal past.
func (ts *ThreadState) controlParents(c *ControlEntry) []EventID {
	if c.Meta.LegacyControl != nil {
		return ts.legacyHeads(c.Meta.LegacyControl, c.Meta.Writer, c.Meta.Seq)
	}
	return c.Meta.Control
}

// legacyHeads maps a version-1 control vector to control event IDs: for
// each writer, its control event with the highest sequence number within
// the vector (below self's for self's own writer). Version-1 stores hold
// one event per writer and sequence number, so this is exact.
func (ts *ThreadState) legacyHeads(cv VersionVector, self crypto.UserID, selfSeq uint64) []EventID {
	best := map[crypto.UserID]*ControlEntry{}
	for i := range ts.Controls {
		c := &ts.Controls[i]
		limit := cv[c.Meta.Writer]
		if c.Meta.Writer == self && selfSeq > 0 {
			limit = selfSeq - 1
		}
		if c.Meta.Seq > limit {
			continue
		}
		if b := best[c.Meta.Writer]; b == nil || b.Meta.Seq < c.Meta.Seq {
			best[c.Meta.Writer] = c
		}
	}
	out := make([]EventID, 0, len(best))
	for _, c := range best {
		out = append(out, c.Meta.ID)
	}
	slices.SortFunc(out, func(a, b EventID) int { return a.Compare(b) })
	return out
}

// closure returns the control events that heads name, and their control
// ancestors.
func (ts *ThreadState) closure(heads []EventID) map[EventID]bool {
	in := make(map[EventID]bool, len(ts.Controls))
	todo := slices.Clone(heads)
	for len(todo) > 0 {
		id := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if in[id] {
			continue
		}
		c, ok := ts.byID[id]
		if !ok {
			continue
		}
		in[id] = true
		todo = append(todo, ts.controlParents(&c)...)
	}
	return in
}

// reduceHeads sorts and de-duplicates control heads and drops those that
// are control ancestors of others.
func (ts *ThreadState) reduceHeads(heads []EventID) []EventID {
	slices.SortFunc(heads, func(a, b EventID) int { return a.Compare(b) })
	heads = slices.Compact(heads)
	if len(heads) < 2 {
		return heads
	}
	below := map[EventID]bool{}
	for _, h := range heads {
		if c, ok := ts.byID[h]; ok {
			for id := range ts.closure(ts.controlParents(&c)) {
				below[id] = true
			}
		}
	}
	return slices.DeleteFunc(heads, func(h EventID) bool { return below[h] })
}

// snapshotFor returns the fold of the control events in the causal past
// whose control heads are heads: its judgement is the event's causal past
// alone, so it does not depend on forks learned later.
func (ts *ThreadState) snapshotFor(heads []EventID) Snapshot {
	key := string(appendIDs(nil, heads))
	if ts.cacheKey == key {
		return ts.cacheSnap
	}
	in := ts.closure(heads)
	s := ts.fold(func(c *ControlEntry) bool { return in[c.Meta.ID] })
	ts.cacheKey, ts.cacheSnap = key, s
	return s
}

// SnapshotAt returns the thread as it stands just before position o in the
// linear order: the fold of the control events that sort before o (less
// an equivocating writer's from its fork on). Message events are judged
// against it when the visible state is computed.
func (ts *ThreadState) SnapshotAt(o Order) Snapshot {
	n := len(ts.Controls)
	if n == 0 || ts.Controls[n-1].Meta.Order().Less(o) {
		return ts.Current
	}
	return ts.foldVisible(func(c *ControlEntry) bool { return c.Meta.Order().Less(o) })
}

// LastControlOrder is the linear position of the latest control event.
func (ts *ThreadState) LastControlOrder() Order {
	return ts.Controls[len(ts.Controls)-1].Meta.Order()
}

// Control returns the control event with the given ID.
func (ts *ThreadState) Control(id EventID) (*ControlEntry, bool) {
	c, ok := ts.byID[id]
	if !ok {
		return nil, false
	}
	return &c, true
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
// message edit's target), Lamport time and the epoch. It returns the
// thread as the event will be judged: the fold of the control events in
// the causal past its parents make (the current state, unless an
// equivocating manager's events are in that past). The caller sets the
// kind, time, control and content against it, then signs.
func (ts *ThreadState) NextHeader(ev *Event, writer Signer, extra ...EventMeta) Snapshot {
	at := ts.nextHeader(ev, writer.WriterID(), extra...)
	if ev.Seq == 1 {
		// The writer's first event in this thread: a device says whose.
		ev.Cert = writer.DeviceCertBytes()
	} else {
		ev.Cert = nil
	}
	return at
}

func (ts *ThreadState) nextHeader(ev *Event, writer crypto.UserID, extra ...EventMeta) Snapshot {
	ev.Thread = ts.ID
	ev.Writer = writer
	ev.Seq = ts.Tips[writer].Seq + 1
	// An equivocating writer's events from its fork on are void: new
	// events do not build on them, so that little depends on them.
	parents := slices.DeleteFunc(slices.Clone(ts.Heads), func(h EventMeta) bool { return ts.forked(h.Writer, h.Seq) && h.Writer != writer })
	if len(parents) == 0 {
		parents = slices.Clone(ts.Heads)
	}
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
	var heads []EventID
	for i := range parents {
		p := &parents[i]
		ev.Parents = append(ev.Parents, p.ID)
		lamport = max(lamport, p.Lamport)
		heads = append(heads, ts.controlContribution(p)...)
	}
	ev.Lamport = lamport + 1
	at := ts.snapshotFor(ts.reduceHeads(heads))
	ev.Epoch = at.Epoch
	ev.hasID = false
	return at
}

// RestoreThreadState rebuilds a thread's state from its control events (in
// any order), its writers' tips, its heads and its forks, as kept in
// storage.
func RestoreThreadState(controls []ControlEntry, tips map[crypto.UserID]Tip, heads []EventMeta, forks map[crypto.UserID]uint64, authors map[crypto.UserID]crypto.UserID) (*ThreadState, error) {
	var genesis *Event
	for _, c := range controls {
		if c.Meta.Kind == KindThreadCreate {
			genesis = c.Event
		}
	}
	if genesis == nil {
		return nil, fmt.Errorf("%w: no ThreadCreate among %d control events", ErrUnknownThread, len(controls))
	}
	ts := &ThreadState{ID: ThreadID(genesis.ID()), Genesis: genesis, Tips: tips, Heads: slices.Clone(heads), Forks: forks, Authors: authors}
	slices.SortFunc(ts.Heads, func(a, b EventMeta) int { return a.ID.Compare(b.ID) })
	ts.Controls = slices.Clone(controls)
	slices.SortFunc(ts.Controls, func(a, b ControlEntry) int { return a.Meta.Order().Compare(b.Meta.Order()) })
	ts.byID = make(map[EventID]ControlEntry, len(ts.Controls))
	for _, c := range ts.Controls {
		ts.byID[c.Meta.ID] = c
	}
	ts.refold()
	return ts, nil
}
