package protocol_test

// Scenario tests: data-driven scripts in testdata/scenarios/*.txt drive
// several replicas of one thread, each with its own view, through
// concurrent changes, and check what every replica shows.
//
// A script is one command per line; '#' starts a comment. Words are
// separated by spaces; arguments are NAME=VALUE; lists are comma-separated
// (an empty list is written "-" or left empty). Users, replicas and events
// are named by the script.
//
//	users NAME...                  test users (identities from fixed seeds)
//	replicas NAME...               empty replicas; each has its own view and
//	                               the key rings its users unwrapped there
//	REPLICA USER ACTION ARGS...    USER writes an event on REPLICA's view
//	                               with the author helpers; REPLICA must
//	                               accept it
//	expect-error REPLICA USER ACTION ARGS... -> ERR
//	                               building or validating that event fails
//	                               with protocol.ERR (the event is dropped)
//	sync REPLICA...                every replica receives every event any of
//	                               them has (in linear order)
//	send FROM TO EVENT,...         TO receives only these events
//	expect REPLICA FIELD=VALUE...  check REPLICA's state (fields below)
//	expect-same REPLICA...         the replicas' whole states are identical
//	read REPLICA USER MSG -> TEXT  USER opens MSG's current data on REPLICA
//	                               with her own keys; TEXT is "no-key" if
//	                               she lacks the key it is sealed with,
//	                               "no-message" if REPLICA lacks MSG
//	show REPLICA                   log REPLICA's state (for debugging)
//
// Actions (every one takes as=NAME to name the event, and
// with-keys-of=USER to seal with another user's keys, as a user holding a
// leaked key would):
//
//	create users=U,.. managers=U,.. [post=ROLE] [edit=ROLE] [delete=ROLE] [history=BOOL]
//	post [data=TEXT]
//	edit MSG [data=TEXT]
//	delete MSG
//	update [add=U,..] [remove=U,..] [add-managers=U,..] [remove-managers=U,..] [rotate] [meta=TEXT] [post=ROLE]...
//	delete-thread
//
// Expect fields: users, managers, holders (who received the current key),
// visible, void, deleted (messages: exact sets); epoch; key (the event
// that introduced the current key); rotate (NeedsRotation); thread
// (live|deleted); content (MSG:EVENT,...: the event whose content a
// message shows); held (events waiting for others); order (the linear
// order of all events, exactly).
//
// The state of a replica is the fold, in linear order, of all its events:
// a message is void if its post was not permitted at its position there.
//
// After each script the harness takes the union of all events and
// delivers it to fresh replicas in 25 other orders (reversed, and random
// permutations that violate causality, half of them with every event
// pruned); each must accept every event (holding and releasing as needed)
// and end in exactly the state of a replica that received them in linear
// order.

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/cryptotest"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/protocol"
)

var ruleErrors = map[string]error{}

func init() {
	for _, e := range []struct {
		name string
		err  error
	}{
		{"ErrUnknownVersion", protocol.ErrUnknownVersion}, {"ErrMalformed", protocol.ErrMalformed},
		{"ErrMalformedID", protocol.ErrMalformedID}, {"ErrTooLarge", protocol.ErrTooLarge},
		{"ErrBadSignature", protocol.ErrBadSignature}, {"ErrUnknownThread", protocol.ErrUnknownThread},
		{"ErrMissingParents", protocol.ErrMissingParents}, {"ErrSeqGap", protocol.ErrSeqGap},
		{"ErrWrongThread", protocol.ErrWrongThread}, {"ErrBadGenesis", protocol.ErrBadGenesis},
		{"ErrBadParents", protocol.ErrBadParents}, {"ErrBadLamport", protocol.ErrBadLamport},
		{"ErrEquivocation", protocol.ErrEquivocation}, {"ErrNotMember", protocol.ErrNotMember},
		{"ErrNotManager", protocol.ErrNotManager}, {"ErrNotPermitted", protocol.ErrNotPermitted},
		{"ErrNotAuthor", protocol.ErrNotAuthor}, {"ErrThreadDeleted", protocol.ErrThreadDeleted},
		{"ErrUnknownEpoch", protocol.ErrUnknownEpoch}, {"ErrBadKeys", protocol.ErrBadKeys},
		{"ErrBadTarget", protocol.ErrBadTarget}, {"ErrBadUpdate", protocol.ErrBadUpdate},
	} {
		ruleErrors[e.name] = e.err
	}
}

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/scenarios/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			h := fnv.New64a()
			h.Write([]byte(filepath.Base(file)))
			// Deterministic nonces and keys make event IDs, and so the
			// order of events with equal Lamport times, reproducible.
			cryptotest.SetGlobalRandom(t, h.Sum64())
			runScenario(t, file, h.Sum64())
		})
	}
}

type harness struct {
	t        *testing.T
	file     string
	line     int
	users    map[string]crypto.UserID
	byID     map[crypto.UserID]string
	replicas map[string]*replica
	events   map[string]*protocol.Event // by script name, in authoring order below
	authored []string
	names    map[protocol.EventID]string
	lastSeq  map[crypto.UserID]uint64
	clock    int64
}

type command struct {
	words []string          // positional words
	args  map[string]string // NAME=VALUE
	want  string            // after "->"
}

func parseCommand(line string) command {
	c := command{args: map[string]string{}}
	if i := strings.Index(line, "->"); i >= 0 {
		c.want = strings.TrimSpace(line[i+2:])
		line = line[:i]
	}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			c.args[k] = v
		} else {
			c.words = append(c.words, f)
		}
	}
	return c
}

func runScenario(t *testing.T, file string, seed uint64) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{
		t: t, file: file,
		users: map[string]crypto.UserID{}, byID: map[crypto.UserID]string{},
		replicas: map[string]*replica{}, events: map[string]*protocol.Event{},
		names: map[protocol.EventID]string{}, lastSeq: map[crypto.UserID]uint64{},
		clock: testTime0,
	}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for h.line = 1; sc.Scan(); h.line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		if strings.TrimSpace(text) == "" {
			continue
		}
		if err := h.run(parseCommand(text)); err != nil {
			t.Fatalf("%s:%d: %s\n%v", file, h.line, strings.TrimSpace(text), err)
		}
	}
	h.line = 0
	h.checkConvergence(seed)
}

func (h *harness) run(c command) error {
	if len(c.words) == 0 {
		return errors.New("no command")
	}
	switch cmd, rest := c.words[0], c.words[1:]; cmd {
	case "users":
		for _, n := range rest {
			h.users[n] = uid(h.t, n)
			h.byID[h.users[n]] = n
		}
	case "replicas":
		for _, n := range rest {
			h.replicas[n] = h.newReplica(n, true)
		}
	case "sync":
		rs, err := h.replicaList(rest)
		if err != nil {
			return err
		}
		var all []*protocol.Event
		for _, r := range rs {
			all = append(all, r.all()...)
		}
		slices.SortFunc(all, func(a, b *protocol.Event) int { return a.Order().Compare(b.Order()) })
		for _, r := range rs {
			for _, ev := range all {
				if err := r.receive(ev); err != nil {
					return fmt.Errorf("%s rejects %s: %w", r.name, h.name(ev.ID()), err)
				}
			}
		}
	case "send":
		if len(rest) != 3 {
			return errors.New("want: send FROM TO EVENT,...")
		}
		rs, err := h.replicaList(rest[:2])
		if err != nil {
			return err
		}
		for _, n := range h.list(rest[2]) {
			ev, ok := h.events[n]
			if !ok || !rs[0].has(ev.ID()) {
				return fmt.Errorf("%s does not have %s", rs[0].name, n)
			}
			if err := rs[1].receive(ev); err != nil {
				return fmt.Errorf("%s rejects %s: %w", rs[1].name, n, err)
			}
		}
	case "expect":
		if len(rest) != 1 {
			return errors.New("want: expect REPLICA FIELD=VALUE...")
		}
		r, err := h.replica(rest[0])
		if err != nil {
			return err
		}
		return h.expect(r, c.args)
	case "expect-same":
		rs, err := h.replicaList(rest)
		if err != nil {
			return err
		}
		want := rs[0].render()
		for _, r := range rs[1:] {
			if got := r.render(); got != want {
				return fmt.Errorf("%s and %s differ:\n%s\n--- vs ---\n%s", rs[0].name, r.name, want, got)
			}
		}
	case "expect-error":
		if len(rest) < 3 || c.want == "" {
			return errors.New("want: expect-error REPLICA USER ACTION ARGS... -> ERR")
		}
		want, ok := ruleErrors[c.want]
		if !ok {
			return fmt.Errorf("unknown error %q", c.want)
		}
		r, err := h.replica(rest[0])
		if err != nil {
			return err
		}
		ev, err := h.build(r, rest[1], rest[2], command{words: rest[3:], args: c.args})
		if err == nil {
			err = r.judge(ev)
		}
		if !errors.Is(err, want) {
			return fmt.Errorf("got %v, want %s", err, c.want)
		}
	case "read":
		if len(rest) != 3 || c.want == "" {
			return errors.New("want: read REPLICA USER MSG -> TEXT")
		}
		r, err := h.replica(rest[0])
		if err != nil {
			return err
		}
		if got := r.read(rest[1], rest[2]); got != c.want {
			return fmt.Errorf("%s reads %q, want %q", rest[1], got, c.want)
		}
	case "show":
		r, err := h.replica(rest[0])
		if err != nil {
			return err
		}
		h.t.Logf("%s:%d: %s\n%s", h.file, h.line, r.name, r.render())
	default:
		r, ok := h.replicas[cmd]
		if !ok {
			return fmt.Errorf("unknown command or replica %q", cmd)
		}
		if len(rest) < 2 {
			return errors.New("want: REPLICA USER ACTION ARGS...")
		}
		ev, err := h.build(r, rest[0], rest[1], command{words: rest[2:], args: c.args})
		if err != nil {
			return fmt.Errorf("building: %w", err)
		}
		if ev.Seq <= h.lastSeq[ev.Writer] {
			return fmt.Errorf("%s would equivocate (sequence %d again): sync first", rest[0], ev.Seq)
		}
		h.lastSeq[ev.Writer] = ev.Seq
		name := c.args["as"]
		if name == "" {
			name = fmt.Sprintf("%s#%d", rest[0], ev.Seq)
		}
		if _, dup := h.events[name]; dup {
			return fmt.Errorf("event name %s used twice", name)
		}
		h.events[name] = ev
		h.authored = append(h.authored, name)
		h.names[ev.ID()] = name
		if err := r.receive(ev); err != nil {
			return fmt.Errorf("%s rejects its own %s: %w", r.name, name, err)
		}
		if !r.accepted(ev.ID()) {
			return fmt.Errorf("%s holds its own %s", r.name, name)
		}
	}
	return nil
}

func (h *harness) replica(n string) (*replica, error) {
	r, ok := h.replicas[n]
	if !ok {
		return nil, fmt.Errorf("no replica %q", n)
	}
	return r, nil
}

func (h *harness) replicaList(ns []string) ([]*replica, error) {
	if len(ns) == 0 {
		return nil, errors.New("no replicas named")
	}
	var rs []*replica
	for _, n := range ns {
		r, err := h.replica(n)
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	return rs, nil
}

func (h *harness) list(s string) []string {
	if s == "" || s == "-" {
		return nil
	}
	return strings.Split(s, ",")
}

func (h *harness) userIDs(s string) ([]crypto.UserID, error) {
	var out []crypto.UserID
	for _, n := range h.list(s) {
		u, ok := h.users[n]
		if !ok {
			return nil, fmt.Errorf("unknown user %q", n)
		}
		out = append(out, u)
	}
	return out, nil
}

func (h *harness) name(id protocol.EventID) string {
	if n, ok := h.names[id]; ok {
		return n
	}
	if id.IsZero() {
		return "-"
	}
	return id.String()[:12]
}

func (h *harness) userName(u crypto.UserID) string {
	if n, ok := h.byID[u]; ok {
		return n
	}
	return u.String()
}

// policyArgs applies post=, edit=, delete= and history= to p.
func policyArgs(p protocol.Policy, args map[string]string) (protocol.Policy, bool, error) {
	changed := false
	for k, dst := range map[string]*protocol.Role{"post": &p.Post, "edit": &p.EditMessage, "delete": &p.DeleteMessage} {
		if v, ok := args[k]; ok {
			r, err := protocol.ParseRole(v)
			if err != nil {
				return p, false, err
			}
			*dst, changed = r, true
		}
	}
	if v, ok := args["history"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return p, false, err
		}
		p.ShareHistory, changed = b, true
	}
	return p, changed, nil
}

// build makes (and signs) the event USER writes with ACTION on r's view.
func (h *harness) build(r *replica, user, action string, c command) (*protocol.Event, error) {
	u, ok := h.users[user]
	if !ok {
		return nil, fmt.Errorf("unknown user %q", user)
	}
	id := ident(h.t, user)
	ring := r.rings[user]
	if k, ok := c.args["with-keys-of"]; ok {
		ring = r.rings[k]
	}
	_ = u
	h.clock += 1000
	now := h.clock
	data := []byte(c.args["data"])
	if _, ok := c.args["data"]; !ok {
		data = []byte(c.args["as"])
	}
	if action != "create" && r.ts == nil {
		return nil, fmt.Errorf("%s has no thread yet", r.name)
	}
	target := func() (protocol.EventMeta, error) {
		if len(c.words) != 1 {
			return protocol.EventMeta{}, errors.New("name one message")
		}
		ev, ok := h.events[c.words[0]]
		if !ok || !r.accepted(ev.ID()) {
			return protocol.EventMeta{}, fmt.Errorf("%s does not have %s", r.name, c.words[0])
		}
		return r.metas[ev.ID()], nil
	}
	switch action {
	case "create":
		if r.ts != nil {
			return nil, fmt.Errorf("%s has a thread", r.name)
		}
		users, err := h.userIDs(c.args["users"])
		if err != nil {
			return nil, err
		}
		managers, err := h.userIDs(c.args["managers"])
		if err != nil {
			return nil, err
		}
		p, _, err := policyArgs(protocol.DefaultPolicy(), c.args)
		if err != nil {
			return nil, err
		}
		ev, _, err := protocol.NewThread(id, users, managers, p, []byte(c.args["meta"]), []byte("private"), now)
		return ev, err
	case "post":
		return protocol.NewPost(r.ts, id, ring, []byte("public"), []byte("private"), data, now)
	case "edit":
		m, err := target()
		if err != nil {
			return nil, err
		}
		return protocol.NewMessageUpdate(r.ts, id, ring, m, []byte("public"), []byte("private"), data, now)
	case "delete":
		m, err := target()
		if err != nil {
			return nil, err
		}
		return protocol.NewMessageDelete(r.ts, id, m, now)
	case "update":
		var ch protocol.ThreadChange
		var err error
		for k, dst := range map[string]*[]crypto.UserID{"add": &ch.AddUsers, "remove": &ch.RemoveUsers, "add-managers": &ch.AddManagers, "remove-managers": &ch.RemoveManagers} {
			if *dst, err = h.userIDs(c.args[k]); err != nil {
				return nil, err
			}
		}
		ch.RotateKey = slices.Contains(c.words, "rotate")
		if m, ok := c.args["meta"]; ok {
			ch.PublicMeta = []byte(m)
		}
		p, changed, err := policyArgs(r.ts.Current.Policy, c.args)
		if err != nil {
			return nil, err
		}
		if changed {
			ch.Policy = &p
		}
		ev, _, err := protocol.NewUpdate(r.ts, id, ch, ring, now)
		return ev, err
	case "delete-thread":
		return protocol.NewDelete(r.ts, id, now)
	}
	return nil, fmt.Errorf("unknown action %q", action)
}

// ---- the replica ----

// replica is a minimal in-memory replica: it checks every event it
// receives (after a trip through the wire encoding), holds those whose
// causal past is incomplete and retries them when others arrive, and
// applies the valid ones. Writer-side replicas also keep, per user, the
// keys unwrapped from accepted events.
type replica struct {
	name     string
	h        *harness
	ts       *protocol.ThreadState
	events   map[protocol.EventID]*protocol.Event
	metas    map[protocol.EventID]protocol.EventMeta
	held     map[protocol.EventID]*protocol.Event
	rejected map[protocol.EventID]error
	rings    map[string]protocol.KeyRing // nil on a relay
}

func (h *harness) newReplica(name string, withKeys bool) *replica {
	r := &replica{
		name: name, h: h,
		events: map[protocol.EventID]*protocol.Event{}, metas: map[protocol.EventID]protocol.EventMeta{},
		held: map[protocol.EventID]*protocol.Event{}, rejected: map[protocol.EventID]error{},
	}
	if withKeys {
		r.rings = map[string]protocol.KeyRing{}
		for n := range h.users {
			r.rings[n] = protocol.KeyRing{}
		}
	}
	return r
}

func (r *replica) accepted(id protocol.EventID) bool { _, ok := r.events[id]; return ok }

func (r *replica) has(id protocol.EventID) bool {
	_, held := r.held[id]
	return r.accepted(id) || held
}

// all returns the events r has, held ones included.
func (r *replica) all() []*protocol.Event {
	var out []*protocol.Event
	for _, ev := range r.events {
		out = append(out, ev)
	}
	for _, ev := range r.held {
		out = append(out, ev)
	}
	return out
}

// receive takes one event from the network. It returns an error only if
// the event is invalid; an event that must wait is held.
func (r *replica) receive(in *protocol.Event) error {
	ev, err := protocol.Decode(in.Encode(nil))
	if err != nil {
		return err
	}
	id := ev.ID()
	if id != in.ID() {
		return fmt.Errorf("the wire changed the ID of %s", r.h.name(in.ID()))
	}
	if r.has(id) {
		return nil
	}
	if err := protocol.CheckEvent(ev, protocol.DefaultLimits()); err != nil {
		return err
	}
	switch err := r.try(ev); {
	case protocol.IsHold(err):
		r.held[id] = ev
		return nil
	case err != nil:
		r.rejected[id] = err
		return err
	}
	r.release()
	return nil
}

// release retries held events until none can move.
func (r *replica) release() {
	for progress := true; progress; {
		progress = false
		ids := make([]protocol.EventID, 0, len(r.held))
		for id := range r.held {
			ids = append(ids, id)
		}
		slices.SortFunc(ids, protocol.EventID.Compare)
		for _, id := range ids {
			err := r.try(r.held[id])
			if protocol.IsHold(err) {
				continue
			}
			delete(r.held, id)
			if err != nil {
				r.rejected[id] = err
				continue
			}
			progress = true
		}
	}
}

func (r *replica) parentMetas(ev *protocol.Event) []protocol.EventMeta {
	var ps []protocol.EventMeta
	for _, p := range ev.Parents {
		if m, ok := r.metas[p]; ok {
			ps = append(ps, m)
		}
	}
	return ps
}

// judge runs the rules on an event without keeping it.
func (r *replica) judge(ev *protocol.Event) error {
	if err := protocol.CheckEvent(ev, protocol.DefaultLimits()); err != nil {
		return err
	}
	if ev.Kind == protocol.KindThreadCreate && r.ts == nil {
		_, _, err := protocol.NewThreadState(ev)
		return err
	}
	if r.ts == nil {
		return protocol.ErrUnknownThread
	}
	_, err := r.ts.Validate(ev, r.parentMetas(ev))
	return err
}

func (r *replica) try(ev *protocol.Event) error {
	var meta protocol.EventMeta
	switch {
	case ev.Kind == protocol.KindThreadCreate && r.ts == nil:
		ts, m, err := protocol.NewThreadState(ev)
		if err != nil {
			return err
		}
		r.ts, meta = ts, m
	case r.ts == nil:
		return fmt.Errorf("%w: no ThreadCreate yet", protocol.ErrUnknownThread)
	default:
		m, err := r.ts.Validate(ev, r.parentMetas(ev))
		if err != nil {
			return err
		}
		r.ts.Apply(ev, m)
		meta = m
	}
	r.events[meta.ID] = ev
	r.metas[meta.ID] = meta
	for n, ring := range r.rings {
		protocol.UnwrapKeys(ring, ev, ident(r.h.t, n))
	}
	return nil
}

// ---- the visible state ----

type view struct {
	order []protocol.EventMeta // all accepted events, in linear order
	msgs  map[protocol.EventID]*protocol.MessageState
}

// fold computes the visible state: every message folded in linear order,
// each event judged against the thread as it stands at its position.
func (r *replica) fold() view {
	v := view{msgs: map[protocol.EventID]*protocol.MessageState{}}
	for _, m := range r.metas {
		v.order = append(v.order, m)
	}
	slices.SortFunc(v.order, func(a, b protocol.EventMeta) int { return a.Order().Compare(b.Order()) })
	for i := range v.order {
		m := &v.order[i]
		switch m.Kind {
		case protocol.KindMessagePost:
			snap := r.ts.SnapshotAt(m.Order())
			ms := protocol.NewMessageState(m, &snap)
			v.msgs[m.ID] = &ms
		case protocol.KindMessageUpdate, protocol.KindMessageDelete:
			ms, ok := v.msgs[m.Target]
			if !ok {
				r.h.t.Fatalf("%s: %s acts on %s, which is not before it", r.name, r.h.name(m.ID), r.h.name(m.Target))
			}
			snap := r.ts.SnapshotAt(m.Order())
			ms.Apply(m, &snap)
		}
	}
	// What storage would keep round-trips.
	for _, ms := range v.msgs {
		back, err := protocol.DecodeMessageState(ms.AppendBinary(nil))
		if err != nil || back.Content != ms.Content || back.Visible() != ms.Visible() {
			r.h.t.Fatalf("message state does not round-trip: %v", err)
		}
	}
	return v
}

func (r *replica) names(us []crypto.UserID) string {
	var ns []string
	for _, u := range us {
		ns = append(ns, r.h.userName(u))
	}
	slices.Sort(ns)
	return strings.Join(ns, ",")
}

// fields returns the expect fields of r's state.
func (r *replica) fields() map[string]string {
	f := map[string]string{"held": strconv.Itoa(len(r.held))}
	if r.ts == nil {
		return f
	}
	s := &r.ts.Current
	f["users"] = r.names(s.Users)
	f["managers"] = r.names(s.Managers)
	f["holders"] = r.names(s.KeyHolders)
	f["epoch"] = strconv.Itoa(int(s.Epoch))
	f["key"] = r.h.name(s.KeyRef)
	f["rotate"] = strconv.FormatBool(s.NeedsRotation())
	f["thread"] = map[bool]string{false: "live", true: "deleted"}[s.Deleted]
	v := r.fold()
	var visible, void, deleted, order, content []string
	for _, m := range v.order {
		order = append(order, r.h.name(m.ID))
		ms, ok := v.msgs[m.ID]
		if !ok {
			continue
		}
		n := r.h.name(m.ID)
		switch {
		case ms.Void:
			void = append(void, n)
		case ms.Deleted:
			deleted = append(deleted, n)
		default:
			visible = append(visible, n)
		}
		content = append(content, n+":"+r.h.name(ms.Content))
	}
	for k, l := range map[string][]string{"visible": visible, "void": void, "deleted": deleted, "content": content} {
		slices.Sort(l)
		f[k] = strings.Join(l, ",")
	}
	f["order"] = strings.Join(order, ",")
	return f
}

// render is r's whole state as text, for comparing replicas.
func (r *replica) render() string {
	if r.ts == nil {
		return "no thread"
	}
	f := r.fields()
	s := &r.ts.Current
	var b strings.Builder
	for _, k := range []string{"thread", "users", "managers", "epoch", "key", "holders", "rotate", "held"} {
		fmt.Fprintf(&b, "%s=%s ", k, f[k])
	}
	fmt.Fprintf(&b, "maxepoch=%d version=%d policy=%+v meta=%s,%s modified=%s@%d\n", s.MaxEpoch, s.Version, s.Policy,
		r.h.name(s.PublicMetaFrom), r.h.name(s.PrivateMetaFrom), r.h.userName(s.LastModifier), s.LastModifyTime)
	var keys []string
	for _, k := range s.Keys {
		keys = append(keys, fmt.Sprintf("%d:%s", k.Epoch, r.h.name(k.Ref)))
	}
	vv := r.ts.VersionVector()
	var vvs []string
	for _, w := range vv.Writers() {
		vvs = append(vvs, fmt.Sprintf("%s:%d", r.h.userName(w), vv[w]))
	}
	var heads []string
	for _, hd := range r.ts.Heads {
		heads = append(heads, r.h.name(hd.ID))
	}
	fmt.Fprintf(&b, "keys=%s vv=%s heads=%s rejected=%d\n", strings.Join(keys, ","), strings.Join(vvs, ","), strings.Join(heads, ","), len(r.rejected))
	fmt.Fprintf(&b, "order=%s\n", f["order"])
	v := r.fold()
	metas := sha256.New()
	for _, m := range v.order {
		metas.Write(m.AppendBinary(nil))
		ms, ok := v.msgs[m.ID]
		if !ok {
			continue
		}
		state := "visible"
		if ms.Void {
			state = "void"
		} else if ms.Deleted {
			state = "deleted"
		}
		var ups []string
		for _, u := range ms.Updates {
			ups = append(ups, r.h.name(u.Event))
		}
		fmt.Fprintf(&b, "msg %s %s content=%s updates=%s\n", r.h.name(m.ID), state, r.h.name(ms.Content), strings.Join(ups, ","))
	}
	fmt.Fprintf(&b, "metas=%x\n", metas.Sum(nil)[:8])
	return b.String()
}

var setFields = map[string]bool{"users": true, "managers": true, "holders": true, "visible": true, "void": true, "deleted": true, "content": true}

func (h *harness) expect(r *replica, want map[string]string) error {
	got := r.fields()
	var errs []string
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			errs = append(errs, fmt.Sprintf("unknown field %q", k))
			continue
		}
		switch {
		case k == "content":
			// Only the messages named are checked.
			have := h.list(g)
			for _, pair := range h.list(w) {
				if !slices.Contains(have, pair) {
					errs = append(errs, fmt.Sprintf("content: want %s, have %s", pair, g))
				}
			}
			continue
		case setFields[k]:
			l := h.list(w)
			slices.Sort(l)
			w = strings.Join(l, ",")
		}
		if g != w {
			errs = append(errs, fmt.Sprintf("%s=%s, want %s", k, g, w))
		}
	}
	if len(errs) > 0 {
		slices.Sort(errs)
		return fmt.Errorf("%s: %s\nstate:\n%s", r.name, strings.Join(errs, "; "), r.render())
	}
	return nil
}

// read opens the current data of message msg as user on r.
func (r *replica) read(user, msg string) string {
	ev, ok := r.h.events[msg]
	if !ok || !r.accepted(ev.ID()) {
		return "no-message"
	}
	ms, ok := r.fold().msgs[ev.ID()]
	if !ok {
		return "not-a-message"
	}
	content := r.events[ms.Content]
	key, ok := r.rings[user][r.metas[ms.Content].KeyRef]
	if !ok {
		return "no-key"
	}
	b, err := protocol.OpenField(content, protocol.FieldData, key)
	if err != nil {
		return "error: " + err.Error()
	}
	return string(b)
}

// checkConvergence delivers the union of the scenario's events to fresh
// replicas in many orders and checks they all end in the same state.
func (h *harness) checkConvergence(seed uint64) {
	t := h.t
	var union []*protocol.Event
	for _, n := range h.authored {
		union = append(union, h.events[n])
	}
	slices.SortFunc(union, func(a, b *protocol.Event) int { return a.Order().Compare(b.Order()) })

	deliver := func(name string, evs []*protocol.Event) *replica {
		r := h.newReplica(name, false)
		for _, ev := range evs {
			if err := r.receive(ev); err != nil {
				t.Fatalf("%s: %s rejected: %v", name, h.name(ev.ID()), err)
			}
		}
		if len(r.events) != len(union) || len(r.held) != 0 || len(r.rejected) != 0 {
			t.Fatalf("%s: %d of %d events accepted, %d held, %d rejected", name, len(r.events), len(union), len(r.held), len(r.rejected))
		}
		return r
	}
	ref := deliver("linear order", union)
	want := ref.render()
	for n, r := range h.replicas {
		if len(r.events) == len(union) && r.render() != want {
			t.Errorf("replica %s holds every event but differs from the linear-order replica:\n%s\n--- want ---\n%s", n, r.render(), want)
		}
	}
	rng := rand.New(rand.NewPCG(seed, 42))
	perms := [][]*protocol.Event{slices.Clone(union)}
	slices.Reverse(perms[0])
	for range 24 {
		p := slices.Clone(union)
		rng.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
		perms = append(perms, p)
	}
	for i, p := range perms {
		if i%2 == 1 {
			// A relay that only ever saw pruned events decides the same.
			for j, ev := range p {
				p[j] = ev.Pruned()
			}
		}
		var names []string
		for _, ev := range p {
			names = append(names, h.name(ev.ID()))
		}
		r := deliver(fmt.Sprintf("permutation %d", i), p)
		if got := r.render(); got != want {
			t.Fatalf("delivery order %s ends in another state:\n%s\n--- want (linear order) ---\n%s", strings.Join(names, " "), got, want)
		}
	}
}
