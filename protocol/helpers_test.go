package protocol_test

import (
	"crypto/sha256"
	"slices"
	"sync"
	"testing"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/protocol"
)

// Test identities come from fixed seeds, so user IDs (and therefore every
// signature) are the same on every run.

var testUsers = []string{"alice", "bob", "carol", "dave", "erin"}

var (
	identMu    sync.Mutex
	identCache = map[string]*crypto.Identity{}
)

// ident returns the test identity called name: its Ed25519 seed is
// SHA-256("weft protocol test user " + name).
func ident(tb testing.TB, name string) *crypto.Identity {
	tb.Helper()
	identMu.Lock()
	defer identMu.Unlock()
	if id, ok := identCache[name]; ok {
		return id
	}
	seed := sha256.Sum256([]byte("weft protocol test user " + name))
	id, err := crypto.NewIdentityFromSeed(seed[:])
	if err != nil {
		tb.Fatalf("identity %s: %v", name, err)
	}
	identCache[name] = id
	return id
}

func uid(tb testing.TB, name string) crypto.UserID { tb.Helper(); return ident(tb, name).UserID() }

func uids(tb testing.TB, names ...string) []crypto.UserID {
	tb.Helper()
	var out []crypto.UserID
	for _, n := range names {
		out = append(out, uid(tb, n))
	}
	return out
}

// userName returns the test name of u, or its ID if it is not a test user.
func userName(tb testing.TB, u crypto.UserID) string {
	tb.Helper()
	for _, n := range testUsers {
		if uid(tb, n) == u {
			return n
		}
	}
	return u.String()
}

func userNames(tb testing.TB, us []crypto.UserID) []string {
	tb.Helper()
	out := make([]string, 0, len(us))
	for _, u := range us {
		out = append(out, userName(tb, u))
	}
	slices.Sort(out)
	return out
}

const testTime0 = int64(1_700_000_000_000) // Unix ms of the first event in tests

// fixture is one replica's view of one thread, driven directly through the
// author helpers and the validity rules. Events built by its helpers are
// signed but not accepted: call accept (or check, for an expected error).
type fixture struct {
	tb     testing.TB
	ts     *protocol.ThreadState
	create *protocol.Event
	events map[protocol.EventID]*protocol.Event
	metas  map[protocol.EventID]protocol.EventMeta
	rings  map[string]protocol.KeyRing // what each test user has unwrapped from accepted events
	clock  int64
}

// newFixture creates a thread by creator (users and managers as given; the
// creator is added to both) and accepts it.
func newFixture(tb testing.TB, creator string, users, managers []string, policy protocol.Policy) *fixture {
	tb.Helper()
	f := &fixture{
		tb:     tb,
		events: map[protocol.EventID]*protocol.Event{},
		metas:  map[protocol.EventID]protocol.EventMeta{},
		rings:  map[string]protocol.KeyRing{},
		clock:  testTime0,
	}
	for _, n := range testUsers {
		f.rings[n] = protocol.KeyRing{}
	}
	ev, _, err := protocol.NewThread(ident(tb, creator), uids(tb, users...), uids(tb, managers...), policy,
		[]byte("public title"), []byte("private title"), f.now())
	if err != nil {
		tb.Fatalf("NewThread: %v", err)
	}
	f.create = ev
	if err := protocol.CheckEvent(ev, protocol.DefaultLimits()); err != nil {
		tb.Fatalf("CheckEvent(ThreadCreate): %v", err)
	}
	ts, meta, err := protocol.NewThreadState(ev)
	if err != nil {
		tb.Fatalf("NewThreadState: %v", err)
	}
	f.ts = ts
	f.record(ev, meta)
	return f
}

// stdFixture is the thread most rule tests use: alice (the only manager),
// bob and carol; dave and erin are outsiders.
func stdFixture(tb testing.TB) *fixture {
	tb.Helper()
	return newFixture(tb, "alice", []string{"bob", "carol"}, []string{"alice"}, protocol.DefaultPolicy())
}

func (f *fixture) now() int64 { f.clock += 1000; return f.clock }

func (f *fixture) record(ev *protocol.Event, meta protocol.EventMeta) {
	f.events[meta.ID] = ev
	f.metas[meta.ID] = meta
	for _, n := range testUsers {
		protocol.UnwrapKeys(f.rings[n], ev, ident(f.tb, n))
	}
}

func (f *fixture) parentMetas(ev *protocol.Event) []protocol.EventMeta {
	var ps []protocol.EventMeta
	for _, p := range ev.Parents {
		if m, ok := f.metas[p]; ok {
			ps = append(ps, m)
		}
	}
	return ps
}

// check runs CheckEvent and Validate without applying.
func (f *fixture) check(ev *protocol.Event) (protocol.EventMeta, error) {
	if err := protocol.CheckEvent(ev, protocol.DefaultLimits()); err != nil {
		return protocol.EventMeta{}, err
	}
	return f.ts.Validate(ev, f.parentMetas(ev))
}

// accept checks, validates and applies ev, which must be valid.
func (f *fixture) accept(ev *protocol.Event) protocol.EventMeta {
	f.tb.Helper()
	meta, err := f.check(ev)
	if err != nil {
		f.tb.Fatalf("%s by %s rejected: %v", ev.Kind, userName(f.tb, ev.Writer), err)
	}
	f.ts.Apply(ev, meta)
	f.record(ev, meta)
	return meta
}

func (f *fixture) post(user, data string) *protocol.Event {
	f.tb.Helper()
	return f.postWith(user, f.rings[user], data)
}

// postWith builds a post sealed with a key from ring (which need not be the
// user's own: a leaked key lets an outsider seal, not post).
func (f *fixture) postWith(user string, ring protocol.KeyRing, data string) *protocol.Event {
	f.tb.Helper()
	ev, err := protocol.NewPost(f.ts, ident(f.tb, user), ring, []byte("pub:"+data), []byte("priv:"+data), []byte(data), f.now())
	if err != nil {
		f.tb.Fatalf("NewPost by %s: %v", user, err)
	}
	return ev
}

func (f *fixture) edit(user string, target protocol.EventID, data string) *protocol.Event {
	f.tb.Helper()
	ev, err := protocol.NewMessageUpdate(f.ts, ident(f.tb, user), f.rings[user], f.metas[target], []byte("pub:"+data), []byte("priv:"+data), []byte(data), f.now())
	if err != nil {
		f.tb.Fatalf("NewMessageUpdate by %s: %v", user, err)
	}
	return ev
}

func (f *fixture) deleteMsg(user string, target protocol.EventID) *protocol.Event {
	f.tb.Helper()
	ev, err := protocol.NewMessageDelete(f.ts, ident(f.tb, user), f.metas[target], f.now())
	if err != nil {
		f.tb.Fatalf("NewMessageDelete by %s: %v", user, err)
	}
	return ev
}

func (f *fixture) update(user string, ch protocol.ThreadChange) *protocol.Event {
	f.tb.Helper()
	ev, _, err := protocol.NewUpdate(f.ts, ident(f.tb, user), ch, f.rings[user], f.now())
	if err != nil {
		f.tb.Fatalf("NewUpdate by %s: %v", user, err)
	}
	return ev
}

func (f *fixture) deleteThread(user string) *protocol.Event {
	f.tb.Helper()
	ev, err := protocol.NewDelete(f.ts, ident(f.tb, user), f.now())
	if err != nil {
		f.tb.Fatalf("NewDelete by %s: %v", user, err)
	}
	return ev
}

// resign applies mutate to ev and signs it again as its (possibly new)
// writer, so that only the rule under test is broken.
func (f *fixture) resign(ev *protocol.Event, mutate func(*protocol.Event)) *protocol.Event {
	f.tb.Helper()
	mutate(ev)
	if err := ev.Sign(ident(f.tb, userName(f.tb, ev.Writer))); err != nil {
		f.tb.Fatalf("re-signing: %v", err)
	}
	return ev
}

// sortIDs sorts and returns event IDs (parents must be sorted).
func sortIDs(ids ...protocol.EventID) []protocol.EventID {
	ids = slices.Clone(ids)
	slices.SortFunc(ids, protocol.EventID.Compare)
	return ids
}

// replay applies ev, the next event of a known-valid thread, to ts (a nil
// ts for the ThreadCreate), taking its parents' metadata from metas.
func replay(ts *protocol.ThreadState, metas map[protocol.EventID]protocol.EventMeta, ev *protocol.Event) (*protocol.ThreadState, protocol.EventMeta, error) {
	if ev.Kind == protocol.KindThreadCreate {
		return protocol.NewThreadState(ev)
	}
	var ps []protocol.EventMeta
	for _, p := range ev.Parents {
		ps = append(ps, metas[p])
	}
	meta, err := ts.Validate(ev, ps)
	if err == nil {
		ts.Apply(ev, meta)
	}
	return ts, meta, err
}
