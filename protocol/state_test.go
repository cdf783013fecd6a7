package protocol_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/protocol"
)

// ruleCase crafts one event against a thread and says what the rules must
// answer. Crafted events are built with the author helpers and then, if
// needed, changed and re-signed by their writer, so that exactly one rule
// is broken.
type ruleCase struct {
	name    string
	fixture func(testing.TB) *fixture // stdFixture if nil: alice (manager), bob, carol
	event   func(t *testing.T, f *fixture) *protocol.Event
	want    error // nil: the event is valid
}

func policyFixture(mod func(*protocol.Policy)) func(testing.TB) *fixture {
	return func(tb testing.TB) *fixture {
		p := protocol.DefaultPolicy()
		mod(&p)
		return newFixture(tb, "alice", []string{"bob", "carol"}, []string{"alice"}, p)
	}
}

// twoManagers: alice and carol manage; bob and dave are members.
func twoManagers(tb testing.TB) *fixture {
	return newFixture(tb, "alice", []string{"bob", "carol", "dave"}, []string{"alice", "carol"}, protocol.DefaultPolicy())
}

func compareKeys(a, b protocol.WrappedKey) int {
	if c := bytes.Compare(a.User[:], b.User[:]); c != 0 {
		return c
	}
	if a.Epoch != b.Epoch {
		if a.Epoch < b.Epoch {
			return -1
		}
		return 1
	}
	return bytes.Compare(a.Source[:], b.Source[:])
}

func withoutKeysFor(keys []protocol.WrappedKey, u crypto.UserID) []protocol.WrappedKey {
	return slices.DeleteFunc(slices.Clone(keys), func(k protocol.WrappedKey) bool { return k.User == u })
}

// withKey adds a (well-formed, correctly wrapped) key to the list.
func withKey(t *testing.T, keys []protocol.WrappedKey, to crypto.UserID, binding [32]byte, epoch uint32, source protocol.EventID) []protocol.WrappedKey {
	t.Helper()
	wrapped, err := crypto.WrapThreadKey(to, binding, epoch, crypto.ThreadKey{1})
	if err != nil {
		t.Fatal(err)
	}
	keys = append(slices.Clone(keys), protocol.WrappedKey{User: to, Epoch: epoch, Source: source, Wrapped: wrapped})
	slices.SortFunc(keys, compareKeys)
	return keys
}

var ruleCases = []ruleCase{
	// ---- valid events (the rules must not be stricter than the policy) ----
	{name: "member posts", want: nil, event: func(t *testing.T, f *fixture) *protocol.Event {
		return f.post("bob", "hi")
	}},
	{name: "author edits own message", want: nil, event: func(t *testing.T, f *fixture) *protocol.Event {
		p := f.accept(f.post("bob", "hi"))
		return f.edit("bob", p.ID, "hi!")
	}},
	{name: "author deletes own message", want: nil, event: func(t *testing.T, f *fixture) *protocol.Event {
		p := f.accept(f.post("bob", "hi"))
		return f.deleteMsg("bob", p.ID)
	}},
	{name: "manager deletes anyone's message", want: nil, event: func(t *testing.T, f *fixture) *protocol.Event {
		p := f.accept(f.post("bob", "hi"))
		return f.deleteMsg("alice", p.ID)
	}},
	{name: "manager edits anyone's message", want: nil, event: func(t *testing.T, f *fixture) *protocol.Event {
		p := f.accept(f.post("bob", "hi"))
		return f.edit("alice", p.ID, "moderated")
	}},
	{name: "manager updates and adds", want: nil, event: func(t *testing.T, f *fixture) *protocol.Event {
		return f.update("alice", protocol.ThreadChange{AddUsers: uids(t, "dave"), PublicMeta: []byte("t")})
	}},
	{name: "manager deletes the thread", want: nil, event: func(t *testing.T, f *fixture) *protocol.Event {
		return f.deleteThread("alice")
	}},
	{name: "member posts concurrently with a removal it has not seen", want: nil, event: func(t *testing.T, f *fixture) *protocol.Event {
		p := f.post("bob", "concurrent") // built before the removal is known
		f.accept(f.update("alice", protocol.ThreadChange{RemoveUsers: uids(t, "bob")}))
		return p
	}},

	// ---- signature and shape ----
	{name: "bad signature", want: protocol.ErrBadSignature, event: func(t *testing.T, f *fixture) *protocol.Event {
		ev := mustDecode(t, f.post("bob", "hi").Encode(nil))
		ev.Sig[0] ^= 1
		return ev
	}},
	{name: "forged writer", want: protocol.ErrBadSignature, event: func(t *testing.T, f *fixture) *protocol.Event {
		ev := mustDecode(t, f.postWith("dave", f.rings["alice"], "hi from bob").Encode(nil))
		ev.Writer = uid(t, "bob") // dave's signature, bob's name
		return ev
	}},
	{name: "malformed", want: protocol.ErrMalformed, event: func(t *testing.T, f *fixture) *protocol.Event {
		ev := mustDecode(t, f.post("bob", "hi").Encode(nil))
		ev.Control.Target = f.create.ID()
		return ev
	}},

	// ---- membership and roles ----
	{name: "post by a non-member", want: protocol.ErrNotMember, event: func(t *testing.T, f *fixture) *protocol.Event {
		return f.postWith("dave", f.rings["alice"], "let me in")
	}},
	{name: "update by a non-manager", want: protocol.ErrNotManager, event: func(t *testing.T, f *fixture) *protocol.Event {
		return f.update("bob", protocol.ThreadChange{AddUsers: uids(t, "dave")})
	}},
	{name: "thread delete by a non-manager", want: protocol.ErrNotManager, event: func(t *testing.T, f *fixture) *protocol.Event {
		return f.deleteThread("bob")
	}},
	{name: "update by a non-member", want: protocol.ErrNotManager, event: func(t *testing.T, f *fixture) *protocol.Event {
		ev, _, err := protocol.NewUpdate(f.ts, ident(t, "dave"), protocol.ThreadChange{AddUsers: uids(t, "dave")}, f.rings["alice"], f.now())
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}},
	{name: "member edits another's message", want: protocol.ErrNotAuthor, event: func(t *testing.T, f *fixture) *protocol.Event {
		p := f.accept(f.post("bob", "hi"))
		return f.edit("carol", p.ID, "bob said bye")
	}},
	{name: "member deletes another's message", want: protocol.ErrNotAuthor, event: func(t *testing.T, f *fixture) *protocol.Event {
		p := f.accept(f.post("bob", "hi"))
		return f.deleteMsg("carol", p.ID)
	}},
	{name: "non-member edits a message", want: protocol.ErrNotMember, event: func(t *testing.T, f *fixture) *protocol.Event {
		p := f.accept(f.post("bob", "hi"))
		ev, err := protocol.NewMessageUpdate(f.ts, ident(t, "dave"), f.rings["alice"], f.metas[p.ID], nil, nil, nil, f.now())
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}},
	{name: "manager edits another's message when only authors may", want: protocol.ErrNotAuthor,
		fixture: policyFixture(func(p *protocol.Policy) { p.EditMessage = protocol.RoleAuthor }),
		event: func(t *testing.T, f *fixture) *protocol.Event {
			p := f.accept(f.post("bob", "hi"))
			return f.edit("alice", p.ID, "moderated")
		}},
	{name: "author edits own when only authors may", want: nil,
		fixture: policyFixture(func(p *protocol.Policy) { p.EditMessage = protocol.RoleAuthor }),
		event: func(t *testing.T, f *fixture) *protocol.Event {
			p := f.accept(f.post("bob", "hi"))
			return f.edit("bob", p.ID, "hi!")
		}},
	{name: "removed author edits own when only authors may", want: protocol.ErrNotMember,
		fixture: policyFixture(func(p *protocol.Policy) { p.EditMessage = protocol.RoleAuthor }),
		event: func(t *testing.T, f *fixture) *protocol.Event {
			p := f.accept(f.post("bob", "hi"))
			f.accept(f.update("alice", protocol.ThreadChange{RemoveUsers: uids(t, "bob")}))
			ev, err := protocol.NewMessageUpdate(f.ts, ident(t, "bob"), f.rings["alice"], p, nil, nil, []byte("still mine"), f.now())
			if err != nil {
				t.Fatal(err)
			}
			return ev
		}},
	{name: "member posts when only managers may", want: protocol.ErrNotManager,
		fixture: policyFixture(func(p *protocol.Policy) { p.Post = protocol.RoleManager }),
		event: func(t *testing.T, f *fixture) *protocol.Event {
			return f.post("bob", "hi")
		}},
	{name: "manager posts when only managers may", want: nil,
		fixture: policyFixture(func(p *protocol.Policy) { p.Post = protocol.RoleManager }),
		event: func(t *testing.T, f *fixture) *protocol.Event {
			return f.post("alice", "announcement")
		}},
	{name: "manager posts when nobody may", want: protocol.ErrNotPermitted,
		fixture: policyFixture(func(p *protocol.Policy) { p.Post = protocol.RoleNobody }),
		event: func(t *testing.T, f *fixture) *protocol.Event {
			return f.post("alice", "hi")
		}},
	{name: "author edits own when nobody may", want: protocol.ErrNotPermitted,
		fixture: policyFixture(func(p *protocol.Policy) { p.EditMessage = protocol.RoleNobody }),
		event: func(t *testing.T, f *fixture) *protocol.Event {
			p := f.accept(f.post("bob", "hi"))
			return f.edit("bob", p.ID, "hi!")
		}},
	{name: "author deletes own when only managers may", want: protocol.ErrNotManager,
		fixture: policyFixture(func(p *protocol.Policy) { p.DeleteMessage = protocol.RoleManager }),
		event: func(t *testing.T, f *fixture) *protocol.Event {
			p := f.accept(f.post("bob", "hi"))
			return f.deleteMsg("bob", p.ID)
		}},
	{name: "policy change takes effect for later events", want: protocol.ErrNotPermitted, event: func(t *testing.T, f *fixture) *protocol.Event {
		p := protocol.DefaultPolicy()
		p.Post = protocol.RoleNobody
		f.accept(f.update("alice", protocol.ThreadChange{Policy: &p}))
		return f.post("bob", "hi")
	}},
	{name: "removed member posts after the removal", want: protocol.ErrNotMember, event: func(t *testing.T, f *fixture) *protocol.Event {
		f.accept(f.update("alice", protocol.ThreadChange{RemoveUsers: uids(t, "bob")}))
		// bob has no key of the new epoch; give him one so only the rule stops him.
		return f.postWith("bob", f.rings["alice"], "still here")
	}},
	{name: "demoted manager updates after the demotion", want: protocol.ErrNotManager, fixture: twoManagers,
		event: func(t *testing.T, f *fixture) *protocol.Event {
			f.accept(f.update("alice", protocol.ThreadChange{RemoveManagers: uids(t, "carol")}))
			return f.update("carol", protocol.ThreadChange{AddUsers: uids(t, "erin")})
		}},

	// ---- causality: hold, not drop ----
	{name: "sequence number that skips the writer's previous", want: protocol.ErrBadParents, event: func(t *testing.T, f *fixture) *protocol.Event {
		return f.resign(f.post("bob", "second"), func(e *protocol.Event) { e.Seq = 2 })
	}},
	{name: "missing parents", want: protocol.ErrMissingParents, event: func(t *testing.T, f *fixture) *protocol.Event {
		unseen := f.post("bob", "not here yet")
		return f.resign(f.post("carol", "reply"), func(e *protocol.Event) {
			e.Parents = sortIDs(append(e.Parents, unseen.ID())...)
			e.Lamport = unseen.Lamport + 1
		})
	}},

	// ---- chains ----
	{name: "old sequence number naming a later one", want: protocol.ErrBadParents, event: func(t *testing.T, f *fixture) *protocol.Event {
		f.accept(f.post("bob", "one"))
		f.accept(f.post("bob", "two"))
		return f.resign(f.post("bob", "again"), func(e *protocol.Event) { e.Seq = 1 })
	}},
	{name: "no parents", want: protocol.ErrBadParents, event: func(t *testing.T, f *fixture) *protocol.Event {
		return f.resign(f.post("bob", "hi"), func(e *protocol.Event) { e.Parents = nil })
	}},
	{name: "not following own previous event", want: protocol.ErrBadParents, event: func(t *testing.T, f *fixture) *protocol.Event {
		f.accept(f.post("bob", "one"))
		c := f.accept(f.post("carol", "reply"))
		ev := f.post("bob", "two")
		if len(ev.Parents) != 2 {
			t.Fatalf("NextHeader gave %d parents, want bob's previous event and carol's", len(ev.Parents))
		}
		// carol's reply descends from bob's first post, but bob must name it.
		return f.resign(ev, func(e *protocol.Event) { e.Parents = []protocol.EventID{c.ID} })
	}},
	{name: "Lamport too high", want: protocol.ErrBadLamport, event: func(t *testing.T, f *fixture) *protocol.Event {
		return f.resign(f.post("bob", "hi"), func(e *protocol.Event) { e.Lamport += 5 })
	}},
	{name: "Lamport not above the parents", want: protocol.ErrBadLamport, event: func(t *testing.T, f *fixture) *protocol.Event {
		f.accept(f.post("carol", "one"))
		return f.resign(f.post("bob", "hi"), func(e *protocol.Event) { e.Lamport = 2 })
	}},
	{name: "wrong thread", want: protocol.ErrWrongThread, event: func(t *testing.T, f *fixture) *protocol.Event {
		other := newFixture(t, "alice", []string{"bob"}, nil, protocol.DefaultPolicy())
		return other.post("bob", "elsewhere")
	}},
	{name: "second ThreadCreate", want: protocol.ErrWrongThread, event: func(t *testing.T, f *fixture) *protocol.Event {
		return newFixture(t, "alice", []string{"bob"}, nil, protocol.DefaultPolicy()).create
	}},

	// ---- epochs and keys ----
	{name: "post in an unknown epoch", want: protocol.ErrUnknownEpoch, event: func(t *testing.T, f *fixture) *protocol.Event {
		return f.resign(f.post("bob", "hi"), func(e *protocol.Event) { e.Epoch = 1 })
	}},
	{name: "post in an old epoch", want: protocol.ErrUnknownEpoch, event: func(t *testing.T, f *fixture) *protocol.Event {
		f.accept(f.update("alice", protocol.ThreadChange{RotateKey: true}))
		return f.resign(f.post("bob", "hi"), func(e *protocol.Event) { e.Epoch = 0 })
	}},
	{name: "rotation that skips an epoch", want: protocol.ErrUnknownEpoch, event: func(t *testing.T, f *fixture) *protocol.Event {
		return f.resign(f.update("alice", protocol.ThreadChange{RotateKey: true}), func(e *protocol.Event) {
			e.Epoch = 2
			for i := range e.Control.Keys {
				e.Control.Keys[i].Epoch = 2
			}
		})
	}},
	{name: "update without rotation in another epoch", want: protocol.ErrUnknownEpoch, event: func(t *testing.T, f *fixture) *protocol.Event {
		return f.resign(f.update("alice", protocol.ThreadChange{PublicMeta: []byte("t")}), func(e *protocol.Event) { e.Epoch = 1 })
	}},
	{name: "removal without a new epoch", want: protocol.ErrBadKeys, event: func(t *testing.T, f *fixture) *protocol.Event {
		return f.resign(f.update("alice", protocol.ThreadChange{RemoveUsers: uids(t, "bob")}), func(e *protocol.Event) {
			e.Control.NewEpoch = false
			e.Control.Keys = nil
			e.Epoch = 0
		})
	}},
	{name: "manager removal without a new epoch", want: protocol.ErrBadKeys, fixture: twoManagers,
		event: func(t *testing.T, f *fixture) *protocol.Event {
			return f.resign(f.update("alice", protocol.ThreadChange{RemoveManagers: uids(t, "carol")}), func(e *protocol.Event) {
				e.Control.NewEpoch = false
				e.Control.Keys = nil
				e.Epoch = 0
			})
		}},
	{name: "new member without the current key", want: protocol.ErrBadKeys, event: func(t *testing.T, f *fixture) *protocol.Event {
		return f.resign(f.update("alice", protocol.ThreadChange{AddUsers: uids(t, "dave")}), func(e *protocol.Event) {
			e.Control.Keys = nil
		})
	}},
	{name: "rotation that leaves out a member", want: protocol.ErrBadKeys, event: func(t *testing.T, f *fixture) *protocol.Event {
		return f.resign(f.update("alice", protocol.ThreadChange{RemoveUsers: uids(t, "carol")}), func(e *protocol.Event) {
			e.Control.Keys = withoutKeysFor(e.Control.Keys, uid(t, "bob"))
		})
	}},
	{name: "rotation that gives the new key to the removed member", want: protocol.ErrBadKeys, event: func(t *testing.T, f *fixture) *protocol.Event {
		return f.resign(f.update("alice", protocol.ThreadChange{RemoveUsers: uids(t, "carol")}), func(e *protocol.Event) {
			e.Control.Keys = withKey(t, e.Control.Keys, uid(t, "carol"), f.ts.ID, 1, protocol.EventID{})
		})
	}},
	{name: "old key given to a non-member", want: protocol.ErrBadKeys, event: func(t *testing.T, f *fixture) *protocol.Event {
		return f.resign(f.update("alice", protocol.ThreadChange{PublicMeta: []byte("t")}), func(e *protocol.Event) {
			e.Control.Keys = withKey(t, e.Control.Keys, uid(t, "erin"), f.ts.ID, 0, f.create.ID())
		})
	}},
	{name: "new key for a non-member without a new epoch", want: protocol.ErrBadKeys, event: func(t *testing.T, f *fixture) *protocol.Event {
		return f.resign(f.update("alice", protocol.ThreadChange{PublicMeta: []byte("t")}), func(e *protocol.Event) {
			e.Control.Keys = withKey(t, e.Control.Keys, uid(t, "erin"), f.ts.ID, 0, protocol.EventID{})
		})
	}},
	{name: "new key for a member without a new epoch", want: protocol.ErrBadKeys, event: func(t *testing.T, f *fixture) *protocol.Event {
		return f.resign(f.update("alice", protocol.ThreadChange{PublicMeta: []byte("t")}), func(e *protocol.Event) {
			e.Control.Keys = withKey(t, e.Control.Keys, uid(t, "bob"), f.ts.ID, 0, protocol.EventID{})
		})
	}},
	{name: "key from an unknown event", want: protocol.ErrBadKeys, event: func(t *testing.T, f *fixture) *protocol.Event {
		return f.resign(f.update("alice", protocol.ThreadChange{AddUsers: uids(t, "dave")}), func(e *protocol.Event) {
			e.Control.Keys = withKey(t, e.Control.Keys, uid(t, "dave"), f.ts.ID, 0, protocol.EventID{9})
		})
	}},
	{name: "key with the wrong epoch for its source", want: protocol.ErrBadKeys, event: func(t *testing.T, f *fixture) *protocol.Event {
		return f.resign(f.update("alice", protocol.ThreadChange{AddUsers: uids(t, "dave")}), func(e *protocol.Event) {
			e.Control.Keys = withKey(t, e.Control.Keys, uid(t, "dave"), f.ts.ID, 3, f.create.ID())
		})
	}},

	// ---- updates ----
	{name: "removing the last manager", want: protocol.ErrBadUpdate, event: func(t *testing.T, f *fixture) *protocol.Event {
		return f.update("alice", protocol.ThreadChange{RemoveManagers: uids(t, "alice")})
	}},
	{name: "a manager who is not a member", want: protocol.ErrBadUpdate, event: func(t *testing.T, f *fixture) *protocol.Event {
		return f.resign(f.update("alice", protocol.ThreadChange{AddManagers: uids(t, "dave")}), func(e *protocol.Event) {
			e.Control.AddUsers = nil
			e.Control.Keys = withoutKeysFor(e.Control.Keys, uid(t, "dave"))
		})
	}},

	// ---- targets ----
	{name: "target not among the parents", want: protocol.ErrBadTarget, event: func(t *testing.T, f *fixture) *protocol.Event {
		p := f.accept(f.post("bob", "hi"))
		f.accept(f.post("carol", "reply"))
		// alice (a manager) edits bob's post but leaves it out of her parents.
		return f.resign(f.edit("alice", p.ID, "hi!"), func(e *protocol.Event) {
			e.Parents = slices.DeleteFunc(e.Parents, func(id protocol.EventID) bool { return id == p.ID })
		})
	}},
	{name: "target is not a message", want: protocol.ErrBadTarget, event: func(t *testing.T, f *fixture) *protocol.Event {
		return f.deleteMsg("alice", f.create.ID())
	}},
	{name: "target is an edit, not a post", want: protocol.ErrBadTarget, event: func(t *testing.T, f *fixture) *protocol.Event {
		p := f.accept(f.post("bob", "hi"))
		e := f.accept(f.edit("bob", p.ID, "hi!"))
		return f.edit("bob", e.ID, "hi!!")
	}},

	// ---- deletion ----
	{name: "post after the thread was deleted", want: protocol.ErrThreadDeleted, event: func(t *testing.T, f *fixture) *protocol.Event {
		f.accept(f.deleteThread("alice"))
		return f.post("bob", "anyone?")
	}},
	{name: "update after the thread was deleted", want: protocol.ErrThreadDeleted, event: func(t *testing.T, f *fixture) *protocol.Event {
		f.accept(f.deleteThread("alice"))
		return f.update("alice", protocol.ThreadChange{AddUsers: uids(t, "dave")})
	}},
	{name: "second thread delete", want: protocol.ErrThreadDeleted, event: func(t *testing.T, f *fixture) *protocol.Event {
		f.accept(f.deleteThread("alice"))
		return f.deleteThread("alice")
	}},
	{name: "edit after the thread was deleted", want: protocol.ErrThreadDeleted, event: func(t *testing.T, f *fixture) *protocol.Event {
		p := f.accept(f.post("bob", "hi"))
		f.accept(f.deleteThread("alice"))
		return f.edit("bob", p.ID, "hi!")
	}},
}

func TestRules(t *testing.T) {
	holds := []error{protocol.ErrSeqGap, protocol.ErrMissingParents, protocol.ErrUnknownThread}
	for _, tc := range ruleCases {
		t.Run(tc.name, func(t *testing.T) {
			mk := tc.fixture
			if mk == nil {
				mk = stdFixture
			}
			f := mk(t)
			ev := tc.event(t, f)
			vvBefore, headsBefore, controlsBefore := f.ts.VersionVector(), slices.Clone(f.ts.Heads), len(f.ts.Controls)
			meta, err := f.check(ev)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if meta.ID != ev.ID() || meta.Seq != ev.Seq || meta.Lamport != ev.Lamport {
					t.Errorf("meta %+v does not describe the event", meta)
				}
			} else if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if got, want := protocol.IsHold(err), slices.ContainsFunc(holds, func(h error) bool { return errors.Is(err, h) }); got != want || (want && tc.want == nil) {
				t.Errorf("IsHold(%v) = %v", err, got)
			}
			// Validate judges; it changes nothing.
			if !reflect.DeepEqual(f.ts.VersionVector(), vvBefore) || !reflect.DeepEqual(f.ts.Heads, headsBefore) || len(f.ts.Controls) != controlsBefore {
				t.Errorf("Validate changed the thread state")
			}
		})
	}
}

// An event held for a missing parent becomes valid, with the same result
// as if it had come in order, once the parent arrives.
func TestHeldEventIsReleased(t *testing.T) {
	f := stdFixture(t)
	first := f.post("bob", "first")
	second := f.resign(f.post("carol", "reply"), func(e *protocol.Event) {
		e.Parents = sortIDs(first.ID())
		e.Lamport = first.Lamport + 1
	})
	if _, err := f.check(second); !protocol.IsHold(err) {
		t.Fatalf("reply before its parent: %v, want a hold", err)
	}
	f.accept(first)
	meta := f.accept(second)
	if meta.Lamport != 3 || !slices.Equal(headIDs(f.ts), []protocol.EventID{second.ID()}) {
		t.Errorf("after release: Lamport %d, heads %v", meta.Lamport, headIDs(f.ts))
	}
}

func headIDs(ts *protocol.ThreadState) []protocol.EventID {
	var ids []protocol.EventID
	for _, h := range ts.Heads {
		ids = append(ids, h.ID)
	}
	return ids
}

func TestNewThreadStateRules(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(t *testing.T, e *protocol.Event)
		want   error
	}{
		{"valid", func(*testing.T, *protocol.Event) {}, nil},
		{"creator is not a manager", func(t *testing.T, e *protocol.Event) {
			e.Control.AddManagers = uids(t, "bob")
		}, protocol.ErrBadGenesis},
		{"manager is not a member", func(t *testing.T, e *protocol.Event) {
			e.Control.AddManagers = protocol.SortUsers(uids(t, "alice", "dave"))
		}, protocol.ErrBadGenesis},
		{"no members", func(t *testing.T, e *protocol.Event) {
			e.Control.AddUsers, e.Control.Keys = nil, nil
		}, protocol.ErrBadGenesis},
		{"a member without the key", func(t *testing.T, e *protocol.Event) {
			e.Control.Keys = withoutKeysFor(e.Control.Keys, uid(t, "bob"))
		}, protocol.ErrBadKeys},
		{"the key for a non-member", func(t *testing.T, e *protocol.Event) {
			e.Control.Keys = withKey(t, e.Control.Keys, uid(t, "dave"), e.Control.Nonce, 0, protocol.EventID{})
		}, protocol.ErrBadKeys},
		{"a key from elsewhere", func(t *testing.T, e *protocol.Event) {
			e.Control.Keys = withKey(t, e.Control.Keys, uid(t, "bob"), e.Control.Nonce, 0, protocol.EventID{5})
		}, protocol.ErrBadKeys},
		{"a key for another epoch", func(t *testing.T, e *protocol.Event) {
			ks := withoutKeysFor(e.Control.Keys, uid(t, "bob"))
			e.Control.Keys = withKey(t, ks, uid(t, "bob"), e.Control.Nonce, 1, protocol.EventID{})
		}, protocol.ErrBadKeys},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, _, err := protocol.NewThread(ident(t, "alice"), uids(t, "bob", "carol"), nil, protocol.DefaultPolicy(), nil, nil, testTime0)
			if err != nil {
				t.Fatal(err)
			}
			tc.mutate(t, ev)
			if err := ev.Sign(ident(t, "alice")); err != nil {
				t.Fatal(err)
			}
			if err := protocol.CheckEvent(ev, protocol.DefaultLimits()); err != nil {
				t.Fatalf("CheckEvent: %v", err)
			}
			ts, meta, err := protocol.NewThreadState(ev)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if ts.ID != protocol.ThreadID(ev.ID()) || meta.KeyRef != ev.ID() || ts.Current.Creator != uid(t, "alice") ||
					!reflect.DeepEqual(userNames(t, ts.Current.Users), []string{"alice", "bob", "carol"}) ||
					!reflect.DeepEqual(userNames(t, ts.Current.Managers), []string{"alice"}) {
					t.Errorf("NewThreadState gave %+v", ts.Current)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("NewThreadState = %v, want %v", err, tc.want)
			}
		})
	}
	// Any other kind is not a thread yet: hold it until its creation comes.
	f := stdFixture(t)
	_, _, err := protocol.NewThreadState(f.post("bob", "hi"))
	if !errors.Is(err, protocol.ErrUnknownThread) || !protocol.IsHold(err) {
		t.Errorf("NewThreadState(post) = %v, want a held ErrUnknownThread", err)
	}
}

// open opens ev's data with whatever key ring holds for the key the event
// was sealed with.
func open(f *fixture, ring protocol.KeyRing, ev *protocol.Event) (string, bool) {
	key, ok := ring[f.metas[ev.ID()].KeyRef]
	if !ok {
		return "", false
	}
	b, err := protocol.OpenField(ev, protocol.FieldData, key)
	if err != nil {
		f.tb.Fatalf("the right key does not open: %v", err)
	}
	return string(b), true
}

// canOpenWithAny reports whether any key in ring opens ev's data.
func canOpenWithAny(ring protocol.KeyRing, ev *protocol.Event) bool {
	for _, k := range ring {
		if _, err := protocol.OpenField(ev, protocol.FieldData, k); err == nil {
			return true
		}
	}
	return false
}

func TestRemovalRotatesKey(t *testing.T) {
	f := stdFixture(t)
	before := f.accept(f.post("carol", "before"))
	rm := f.update("alice", protocol.ThreadChange{RemoveUsers: uids(t, "bob")})
	rmMeta := f.accept(rm)
	if rm.Epoch != 1 || !rm.Control.NewEpoch || rmMeta.KeyRef != rm.ID() || f.ts.Current.KeyRef != rm.ID() || f.ts.Current.Epoch != 1 {
		t.Fatalf("removal: epoch %d, new epoch %v, current key %s", rm.Epoch, rm.Control.NewEpoch, f.ts.Current.KeyRef)
	}
	if got := userNames(t, f.ts.Current.KeyHolders); !slices.Equal(got, []string{"alice", "carol"}) {
		t.Errorf("holders of the new key: %v", got)
	}
	if f.ts.Current.NeedsRotation() {
		t.Errorf("NeedsRotation after a rotating removal")
	}
	// bob's identity opens none of the wraps of the new key.
	bobRing := maps.Clone(f.rings["bob"])
	if n, _ := protocol.UnwrapKeys(bobRing, rm, ident(t, "bob")); n != 0 {
		t.Errorf("bob unwrapped %d keys from his removal", n)
	}
	if _, ok := bobRing[rm.ID()]; ok {
		t.Fatalf("bob holds the key of the epoch that removed him")
	}
	for _, k := range rm.Control.Keys {
		if _, err := ident(t, "bob").UnwrapThreadKey(f.ts.ID, k.Epoch, k.Wrapped); err == nil {
			t.Errorf("bob unwraps the key wrapped to %s", userName(t, k.User))
		}
	}
	// The others can, and read what is posted next; bob cannot.
	for _, u := range []string{"alice", "carol"} {
		r := protocol.KeyRing{}
		if n, err := protocol.UnwrapKeys(r, rm, ident(t, u)); n != 1 {
			t.Errorf("%s unwrapped %d keys: %v", u, n, err)
		}
		if n, _ := protocol.UnwrapKeys(r, rm, ident(t, u)); n != 0 {
			t.Errorf("%s unwrapped %d keys she already had", u, n)
		}
		if r[rm.ID()] != f.rings["alice"][rm.ID()] {
			t.Errorf("%s unwrapped another key than alice's", u)
		}
	}
	after := f.post("carol", "after")
	afterMeta := f.accept(after)
	if after.Epoch != 1 || afterMeta.KeyRef != rm.ID() {
		t.Errorf("post after the removal: epoch %d, key %s", after.Epoch, afterMeta.KeyRef)
	}
	if got, ok := open(f, f.rings["carol"], after); !ok || got != "after" {
		t.Errorf("carol reads %q, %v", got, ok)
	}
	if _, ok := open(f, f.rings["bob"], after); ok || canOpenWithAny(f.rings["bob"], after) {
		t.Errorf("bob can read a post made after his removal")
	}
	// History stays readable to bob: he had that key.
	if got, ok := open(f, f.rings["bob"], f.events[before.ID]); !ok || got != "before" {
		t.Errorf("bob cannot read what he was shown before: %q, %v", got, ok)
	}
}

func TestNewMembersAndHistory(t *testing.T) {
	for _, share := range []bool{true, false} {
		p := protocol.DefaultPolicy()
		p.ShareHistory = share
		f := newFixture(t, "alice", []string{"bob"}, nil, p)
		old := f.post("bob", "epoch 0")
		f.accept(old)
		f.accept(f.update("alice", protocol.ThreadChange{RotateKey: true}))
		mid := f.post("bob", "epoch 1")
		f.accept(mid)
		add := f.update("alice", protocol.ThreadChange{AddUsers: uids(t, "dave")})
		f.accept(add)
		// A second newcomer, added together with a removal (a new epoch).
		add2 := f.update("alice", protocol.ThreadChange{AddUsers: uids(t, "erin"), RemoveUsers: uids(t, "bob")})
		f.accept(add2)
		late := f.post("alice", "epoch 2")
		f.accept(late)

		for _, c := range []struct {
			who  string
			ev   *protocol.Event
			want bool
		}{
			{"dave", mid, true},  // the current key when he joined
			{"dave", old, share}, // history
			{"dave", late, true}, // still a member at epoch 2
			{"erin", late, true}, // the new key of the epoch she joined in
			{"erin", mid, share}, // history
			{"erin", old, share}, // history
			{"bob", late, false}, // removed
		} {
			got, ok := open(f, f.rings[c.who], c.ev)
			if ok != c.want || (ok && got != string(mustOpenAny(t, f, c.ev))) {
				t.Errorf("ShareHistory=%v: %s reads %q: %v, want %v", share, c.who, got, ok, c.want)
			}
			if !c.want && canOpenWithAny(f.rings[c.who], c.ev) {
				t.Errorf("ShareHistory=%v: %s opens a post with some key", share, c.who)
			}
		}
	}
}

// mustOpenAny opens ev's data with alice's keys (she has them all).
func mustOpenAny(t *testing.T, f *fixture, ev *protocol.Event) []byte {
	t.Helper()
	b, err := protocol.OpenField(ev, protocol.FieldData, f.rings["alice"][f.metas[ev.ID()].KeyRef])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RestoreThreadState rebuilds the same state from what storage keeps, in
// any order, and judges the next event exactly as the live state does.
func TestRestoreThreadState(t *testing.T) {
	f := twoManagers(t)
	p := f.accept(f.post("bob", "a"))
	f.accept(f.update("alice", protocol.ThreadChange{AddUsers: uids(t, "erin"), PublicMeta: []byte("x")}))
	f.accept(f.edit("bob", p.ID, "b"))
	f.accept(f.update("carol", protocol.ThreadChange{RemoveUsers: uids(t, "dave")}))
	f.accept(f.post("erin", "c"))

	controls := slices.Clone(f.ts.Controls)
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(controls), func(i, j int) { controls[i], controls[j] = controls[j], controls[i] })
	heads := slices.Clone(f.ts.Heads)
	slices.Reverse(heads)
	rs, err := protocol.RestoreThreadState(controls, maps.Clone(f.ts.Tips), heads, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rs.ID != f.ts.ID || !reflect.DeepEqual(rs.Current, f.ts.Current) || !reflect.DeepEqual(rs.Heads, f.ts.Heads) ||
		!reflect.DeepEqual(rs.VersionVector(), f.ts.VersionVector()) {
		t.Fatalf("restored state differs:\n got %+v\nwant %+v", rs.Current, f.ts.Current)
	}
	for i := range rs.Controls {
		if rs.Controls[i].Meta.ID != f.ts.Controls[i].Meta.ID {
			t.Fatalf("restored control %d out of order", i)
		}
	}
	next := f.post("carol", "d")
	want, err1 := f.ts.Validate(next, f.parentMetas(next))
	got, err2 := rs.Validate(next, f.parentMetas(next))
	if err1 != nil || err2 != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("live: %+v %v; restored: %+v %v", want, err1, got, err2)
	}
	if _, err := protocol.RestoreThreadState(controls[:0], nil, nil, nil, nil); !errors.Is(err, protocol.ErrUnknownThread) {
		t.Errorf("restore without a ThreadCreate: %v", err)
	}
}

// The snapshot at a position folds exactly the control events before it.
func TestSnapshotAt(t *testing.T) {
	f := stdFixture(t)
	a := f.accept(f.post("bob", "a"))
	add := f.accept(f.update("alice", protocol.ThreadChange{AddUsers: uids(t, "dave")}))
	b := f.accept(f.post("dave", "b"))
	rm := f.accept(f.update("alice", protocol.ThreadChange{RemoveUsers: uids(t, "dave")}))
	for _, c := range []struct {
		at       protocol.Order
		dave     bool
		epoch    uint32
		versionN uint64
	}{
		{a.Order(), false, 0, 1},
		{add.Order(), false, 0, 1}, // strictly before the update itself
		{b.Order(), true, 0, 2},
		{rm.Order(), true, 0, 2},
		{protocol.Order{Lamport: rm.Lamport + 1}, false, 1, 3},
	} {
		s := f.ts.SnapshotAt(c.at)
		if s.IsUser(uid(t, "dave")) != c.dave || s.Epoch != c.epoch || s.Version != c.versionN {
			t.Errorf("at %v: dave member %v, epoch %d, version %d; want %v %d %d", c.at, s.IsUser(uid(t, "dave")), s.Epoch, s.Version, c.dave, c.epoch, c.versionN)
		}
	}
	if got := f.ts.LastControlOrder(); got != rm.Order() {
		t.Errorf("LastControlOrder = %v", got)
	}
	if ce, ok := f.ts.Control(add.ID); !ok || ce.Event.ID() != add.ID {
		t.Errorf("Control(add) = %v, %v", ce, ok)
	}
	if _, ok := f.ts.Control(a.ID); ok {
		t.Errorf("a post is listed as a control event")
	}
}

// MessageState.Apply may see a message's updates in any order (storage
// folds them as they arrive); the content is always the latest effective
// update in the linear order, and an update is counted once.
func TestMessageStateApplyOrder(t *testing.T) {
	f := stdFixture(t)
	p := f.accept(f.post("bob", "v0"))
	e1 := f.accept(f.edit("bob", p.ID, "v1"))
	e2 := f.accept(f.edit("alice", p.ID, "v2"))
	e3 := f.accept(f.edit("bob", p.ID, "v3"))
	snap := f.ts.Current
	for _, order := range [][]protocol.EventMeta{{e1, e2, e3}, {e3, e2, e1}, {e2, e3, e1}} {
		ms := protocol.NewMessageState(&p, &snap)
		for _, e := range order {
			if !ms.Apply(&e, &snap) {
				t.Fatalf("update %s not applied", e.ID)
			}
		}
		if ms.Content != e3.ID || ms.ContentOrder != e3.Order() {
			t.Errorf("after updates in order %v: content %s, want the last one %s", order, ms.Content, e3.ID)
		}
		if len(ms.Updates) != 3 || ms.Updates[0].Event != e1.ID || ms.Updates[2].Event != e3.ID || ms.Updates[1].Author != uid(t, "alice") {
			t.Errorf("updates not in linear order: %+v", ms.Updates)
		}
		if ms.Apply(&e2, &snap) {
			t.Errorf("the same update applied twice")
		}
		if !ms.Visible() {
			t.Errorf("edited message not visible")
		}
	}
	// An update for another message, or by a non-author member, is ignored.
	other := f.accept(f.post("carol", "other"))
	ms := protocol.NewMessageState(&p, &snap)
	if ms.Apply(&other, &snap) {
		t.Errorf("a post applied as an update")
	}
	carolEdit := protocol.EventMeta{ID: protocol.EventID{7}, Kind: protocol.KindMessageUpdate, Writer: uid(t, "carol"), Lamport: 9, Target: p.ID}
	if ms.Apply(&carolEdit, &snap) || ms.Content != p.ID {
		t.Errorf("a non-author member's edit took effect")
	}
	// Deletion is final.
	del := protocol.EventMeta{ID: protocol.EventID{8}, Kind: protocol.KindMessageDelete, Writer: uid(t, "alice"), Lamport: 10, Target: p.ID}
	if !ms.Apply(&del, &snap) || !ms.Deleted || ms.Visible() {
		t.Errorf("manager's delete did not take effect")
	}
	if ms.Apply(&e1, &snap) || ms.Content != p.ID {
		t.Errorf("an update applied to a deleted message")
	}
}

// With more concurrent heads than an event may name, the author helpers
// name the latest ones (and the writer's own previous event); the event is
// valid, the other heads stay heads, and the next event merges them.
func TestManyHeads(t *testing.T) {
	var names []string
	for i := range 70 {
		names = append(names, fmt.Sprintf("writer%02d", i))
	}
	f := newFixture(t, "alice", names, nil, protocol.DefaultPolicy())
	var posts []*protocol.Event
	for _, n := range names {
		ring := protocol.KeyRing{}
		protocol.UnwrapKeys(ring, f.create, ident(t, n))
		posts = append(posts, f.postWith(n, ring, "concurrent")) // none sees the others
	}
	for _, p := range posts {
		f.accept(p)
	}
	if len(f.ts.Heads) != 70 {
		t.Fatalf("%d heads, want 70", len(f.ts.Heads))
	}
	first := f.post("alice", "merge 1")
	if len(first.Parents) != protocol.MaxParents || !slices.Contains(first.Parents, f.create.ID()) {
		t.Fatalf("%d parents (own previous named: %v), want %d including alice's ThreadCreate",
			len(first.Parents), slices.Contains(first.Parents, f.create.ID()), protocol.MaxParents)
	}
	f.accept(mustDecode(t, first.Encode(nil)))
	if got, want := len(f.ts.Heads), 70-(protocol.MaxParents-1)+1; got != want {
		t.Fatalf("%d heads after the first merge, want %d", got, want)
	}
	second := f.post("alice", "merge 2")
	f.accept(second)
	if len(f.ts.Heads) != 1 || second.Lamport != 4 {
		t.Fatalf("after the second merge: %d heads, Lamport %d; want 1 head, Lamport 4", len(f.ts.Heads), second.Lamport)
	}
}

// An equivocation is valid by the rules (a rule on the event and its
// parents alone), and RecordFork then voids the writer from the forked
// number on, whichever version came first: replicas that saw the versions
// in either order end in the same state.
func TestEquivocationIsAFork(t *testing.T) {
	build := func(first bool) (*fixture, *protocol.Event, *protocol.Event, *protocol.Event) {
		f := twoManagers(t)
		p0 := f.accept(f.post("bob", "before"))
		_ = p0
		// carol (a manager) signs two updates with one sequence number:
		// one removes dave, the other adds erin.
		a := f.update("carol", protocol.ThreadChange{RemoveUsers: uids(t, "dave")})
		b := f.update("carol", protocol.ThreadChange{AddUsers: uids(t, "erin")})
		if a.Seq != b.Seq || a.ID() == b.ID() {
			t.Fatal("not an equivocation")
		}
		x, y := a, b
		if !first {
			x, y = b, a
		}
		f.accept(x)
		meta, err := f.check(y)
		if err != nil {
			t.Fatalf("second version: %v; want it valid", err)
		}
		if !f.ts.RecordFork(y.Writer, y.Seq) {
			t.Fatal("RecordFork: not new")
		}
		f.ts.Apply(y, meta)
		f.record(y, meta)
		// Bob builds on both versions (he saw both).
		reply := f.accept(f.post("bob", "after"))
		_ = reply
		return f, a, b, nil
	}
	f1, a, b, _ := build(true)
	f2, _, _, _ := build(false)
	for _, f := range []*fixture{f1, f2} {
		cur := f.ts.Current
		if !cur.IsUser(uid(t, "dave")) || cur.IsUser(uid(t, "erin")) {
			t.Errorf("forked updates took effect: users %v", cur.Users)
		}
		if !f.ts.IsForked(uid(t, "carol"), a.Seq) || f.ts.IsForked(uid(t, "carol"), a.Seq-1) || f.ts.IsForked(uid(t, "bob"), 1) {
			t.Errorf("IsForked wrong: forks %v", f.ts.Forks)
		}
		if cur.Forks[uid(t, "carol")] != a.Seq {
			t.Errorf("snapshot forks %v", cur.Forks)
		}
		if f.ts.RecordFork(uid(t, "carol"), a.Seq+1) {
			t.Error("a later fork of a forked writer counts as new")
		}
	}
	c1, c2 := f1.ts.Current, f2.ts.Current // two threads: compare what does not name the thread's events
	if !slices.Equal(c1.Users, c2.Users) || !slices.Equal(c1.Managers, c2.Managers) || c1.Epoch != c2.Epoch || c1.Version != c2.Version ||
		!reflect.DeepEqual(c1.Forks, c2.Forks) || !reflect.DeepEqual(f1.ts.VersionVector(), f2.ts.VersionVector()) {
		t.Errorf("replicas that saw the versions in other orders differ:\n%+v\n%+v", f1.ts.Current, f2.ts.Current)
	}
	// A post of the forked writer is void in the visible state.
	ms := protocol.NewMessageState(&protocol.EventMeta{ID: protocol.EventID{9}, Kind: protocol.KindMessagePost, Writer: uid(t, "carol"), Seq: a.Seq + 1, Lamport: 99}, &f1.ts.Current)
	if !ms.Void {
		t.Error("a forked writer's post is visible")
	}
	// New events do not build on the forked writer's events.
	next := f1.post("alice", "next")
	for _, p := range next.Parents {
		if p == a.ID() || p == b.ID() {
			t.Errorf("a new event names a forked event %s as a parent", p)
		}
	}
}

// Stores written before metadata version 2 keep, for each event, a vector
// of control writers instead of control heads. A thread restored from
// such metadata must judge new events exactly as one built with heads.
func TestLegacyControlVectors(t *testing.T) {
	f := twoManagers(t)
	p := f.accept(f.post("bob", "a"))
	f.accept(f.update("alice", protocol.ThreadChange{AddUsers: uids(t, "erin"), PublicMeta: []byte("x")}))
	f.accept(f.edit("bob", p.ID, "b"))
	f.accept(f.update("carol", protocol.ThreadChange{RemoveUsers: uids(t, "dave")}))
	f.accept(f.post("erin", "c"))
	f.accept(f.update("alice", protocol.ThreadChange{RotateKey: true}))

	// What version 1 kept: writer -> highest sequence number of a control
	// event in the causal past, the event itself included.
	legacy := func(m protocol.EventMeta) *protocol.EventMeta {
		cv := protocol.VersionVector{}
		in := protocol.ControlClosure(f.ts, m.Control)
		if m.Kind.IsControl() {
			in[m.ID] = true
		}
		for id := range in {
			c, _ := f.ts.Control(id)
			cv[c.Meta.Writer] = max(cv[c.Meta.Writer], c.Meta.Seq)
		}
		got, err := protocol.DecodeEventMeta(protocol.LegacyMetaBytes(&m, cv))
		if err != nil {
			t.Fatal(err)
		}
		if got.Control != nil || !reflect.DeepEqual(got.LegacyControl, cv) {
			t.Fatalf("version 1 decodes to %+v", got)
		}
		return got
	}
	var controls []protocol.ControlEntry
	for _, c := range f.ts.Controls {
		controls = append(controls, protocol.ControlEntry{Event: c.Event, Meta: *legacy(c.Meta)})
	}
	var heads []protocol.EventMeta
	for _, h := range f.ts.Heads {
		heads = append(heads, *legacy(h))
	}
	rs, err := protocol.RestoreThreadState(controls, maps.Clone(f.ts.Tips), heads, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rs.Current, f.ts.Current) {
		t.Fatalf("restored from version 1:\n got %+v\nwant %+v", rs.Current, f.ts.Current)
	}
	for _, next := range []*protocol.Event{f.post("carol", "d"), f.update("alice", protocol.ThreadChange{AddUsers: uids(t, "dave")})} {
		want, err1 := f.ts.Validate(next, f.parentMetas(next))
		var old []protocol.EventMeta
		for _, pm := range f.parentMetas(next) {
			old = append(old, *legacy(pm))
		}
		got, err2 := rs.Validate(next, old)
		// Version 1 did not count runs: one restarts from its events.
		if got.Run > want.Run {
			t.Errorf("run %d from version 1, %d live", got.Run, want.Run)
		}
		got.Run, want.Run = 0, 0
		if err1 != nil || err2 != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: live %+v %v; from version 1 %+v %v", next.Kind, want, err1, got, err2)
		}
	}
}

// A removal wins over every post of the removed member that it did not
// see, wherever the post sorts: a post built on old events (a low Lamport
// time, so it sorts before the removal) is void once the removal is
// known, while the posts the removal's author had seen stay.
func TestRemovalWinsOverUnseenPosts(t *testing.T) {
	f := newFixture(t, "alice", []string{"bob", "carol"}, nil, protocol.DefaultPolicy())
	old := slices.Clone(f.ts.Heads) // before anything: bob will build on these
	seen := f.accept(f.post("bob", "seen by the removal"))
	for i := range 5 {
		f.accept(f.post("carol", fmt.Sprint("chatter ", i)))
	}
	// bob, pretending not to have seen anything since the start, writes a
	// post on the old heads: valid by its causal past (bob is a member
	// there), with a Lamport time below the removal's.
	stale := f.resign(f.post("bob", "backdated"), func(e *protocol.Event) {
		var ps []protocol.EventID
		var l uint64
		for _, h := range old {
			ps = append(ps, h.ID)
			l = max(l, h.Lamport)
		}
		ps = append(ps, seen.ID)
		e.Parents = sortIDs(ps...)
		e.Lamport = max(l, seen.Lamport) + 1
	})
	rm := f.update("alice", protocol.ThreadChange{RemoveUsers: uids(t, "bob")})
	if !rm.Control.HasSeen || len(rm.Control.Seen) != 1 || rm.Control.Seen[0] != (protocol.SeqMark{Writer: uid(t, "bob"), Seq: 1}) {
		t.Fatalf("seen marks %v %+v", rm.Control.HasSeen, rm.Control.Seen)
	}
	rmMeta := f.accept(rm)
	sm := f.accept(stale)
	if !sm.Order().Less(rmMeta.Order()) {
		t.Fatalf("the stale post (Lamport %d) does not sort before the removal (%d): the test shows nothing", sm.Lamport, rmMeta.Lamport)
	}
	if !f.ts.VoidByRemoval(&sm) {
		t.Error("a post the removal did not see, sorting before it, is visible")
	}
	if f.ts.VoidByRemoval(&seen) {
		t.Error("a post the removal saw is void")
	}
	// Let back in, bob writes having seen the removal: visible.
	f.accept(f.update("alice", protocol.ThreadChange{AddUsers: uids(t, "bob")}))
	back := f.accept(f.post("bob", "back"))
	if f.ts.VoidByRemoval(&back) {
		t.Error("a post written after being let in again is void")
	}
}

// A user's events in a row that see nothing new of others are bounded by
// the thread's policy (Policy.MaxRun); a reply by someone else starts a
// new run, another device of the same user does not.
func TestRunLimit(t *testing.T) {
	p := protocol.DefaultPolicy()
	p.MaxRun = 3
	f := newFixture(t, "alice", []string{"bob"}, nil, p)
	if f.create.Encode(nil)[0] != 2 {
		t.Fatal("a policy with a run bound is not carried as an extension")
	}
	if d, err := protocol.Decode(f.create.Encode(nil)); err != nil || d.Control.Policy.MaxRun != 3 {
		t.Fatalf("round trip: %v %+v", err, d.Control.Policy)
	}
	for i := range 3 {
		m := f.accept(f.post("bob", fmt.Sprint(i)))
		if m.Run != uint64(i+1) {
			t.Fatalf("post %d: run %d", i, m.Run)
		}
	}
	if _, err := f.check(f.post("bob", "one too many")); !errors.Is(err, protocol.ErrRunTooLong) {
		t.Fatalf("the 4th in a row: %v", err)
	}
	f.accept(f.post("alice", "a reply"))
	m := f.accept(f.post("bob", "after the reply"))
	if m.Run != 1 {
		t.Fatalf("after a reply: run %d, want 1", m.Run)
	}
	phone := device(t, "bob", "phone")
	pp, err := protocol.NewPost(f.ts, phone, f.rings["bob"], nil, nil, []byte("phone"), f.now())
	if err != nil {
		t.Fatal(err)
	}
	f.accept(pp)
	m = f.accept(f.post("bob", "laptop again"))
	if m.Run != 2 {
		t.Fatalf("after the same user's other device: run %d, want 2", m.Run)
	}
	// The default bound needs no extension: existing threads keep their bytes.
	g := newFixture(t, "alice", []string{"bob"}, nil, protocol.DefaultPolicy())
	if g.create.Encode(nil)[0] != 1 || g.ts.Current.Policy.RunBound() != protocol.DefaultMaxRun {
		t.Fatal("the default policy changed the encoding")
	}
}
