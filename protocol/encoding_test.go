package protocol_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/cryptotest"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/protocol"
)

var update = flag.Bool("update", false, "regenerate testdata/event-vectors.txt")

type namedEvent struct {
	name string
	ev   *protocol.Event
}

// everyKind builds, with the author helpers, an accepted event of every
// kind, including a ThreadUpdate that sets every field, one that shares
// history keys, and an event with two parents.
func everyKind(tb testing.TB) (*fixture, []namedEvent) {
	tb.Helper()
	f := stdFixture(tb)
	out := []namedEvent{{"create", f.create}}
	add := func(name string, ev *protocol.Event) *protocol.Event {
		f.accept(ev)
		out = append(out, namedEvent{name, ev})
		return ev
	}
	p1 := add("post", f.post("bob", "hello"))
	// bob and carol post concurrently, so alice's next post has two parents.
	q, r := f.post("bob", "concurrent 1"), f.post("carol", "concurrent 2")
	add("post-concurrent-1", q)
	add("post-concurrent-2", r)
	two := add("post-three-parents", f.post("alice", "merge"))
	// Its parents are both heads plus alice's own previous event (the
	// ThreadCreate), which NextHeader always names.
	if want := sortIDs(f.create.ID(), q.ID(), r.ID()); !slices.Equal(two.Parents, want) {
		tb.Fatalf("parents %v, want %v", two.Parents, want)
	}
	add("message-update", f.edit("bob", p1.ID(), "hello, edited"))
	add("message-delete", f.deleteMsg("alice", r.ID()))
	pol := protocol.DefaultPolicy()
	pol.EditMessage = protocol.RoleAuthor
	add("update-everything", f.update("alice", protocol.ThreadChange{
		AddUsers: uids(tb, "dave"), RemoveUsers: uids(tb, "carol"), AddManagers: uids(tb, "bob"),
		PublicMeta: []byte("new title"), PrivateMeta: []byte("new secret"), Policy: &pol,
	}))
	add("update-add-with-history", f.update("alice", protocol.ThreadChange{AddUsers: uids(tb, "erin")}))
	add("thread-delete", f.deleteThread("bob"))
	return f, out
}

func mustDecode(tb testing.TB, b []byte) *protocol.Event {
	tb.Helper()
	ev, err := protocol.Decode(b)
	if err != nil {
		tb.Fatalf("Decode: %v", err)
	}
	return ev
}

func TestEncodeRoundTripEveryKind(t *testing.T) {
	_, evs := everyKind(t)
	kinds := map[protocol.Kind]bool{}
	for _, ne := range evs {
		t.Run(ne.name, func(t *testing.T) {
			ev := ne.ev
			kinds[ev.Kind] = true
			enc := ev.Encode(nil)
			if got := ev.EncodedSize(); got != len(enc) {
				t.Errorf("EncodedSize = %d, Encode gives %d bytes", got, len(enc))
			}
			dec := mustDecode(t, enc)
			if dec.ID() != ev.ID() || dec.ID() != independentID(enc, dec) {
				t.Fatalf("decoded ID %s, signed ID %s, SHA-256 of the signed bytes %s", dec.ID(), ev.ID(), independentID(enc, dec))
			}
			if dec.Kind != ev.Kind || dec.Writer != ev.Writer || dec.Seq != ev.Seq || dec.Lamport != ev.Lamport ||
				dec.Time != ev.Time || dec.Epoch != ev.Epoch || !slices.Equal(dec.Parents, ev.Parents) {
				t.Errorf("header changed in the round trip:\n got %+v\nwant %+v", dec, ev)
			}
			if dec.ThreadID() != ev.ThreadID() {
				t.Errorf("ThreadID %s, want %s", dec.ThreadID(), ev.ThreadID())
			}
			if dec.Kind == protocol.KindThreadCreate && dec.ThreadID() != protocol.ThreadID(dec.ID()) {
				t.Errorf("a ThreadCreate's thread ID must be its own ID")
			}
			if enc2 := dec.Encode(nil); !bytes.Equal(enc, enc2) {
				t.Fatalf("Encode(Decode(b)) != b:\n%x\n%x", enc, enc2)
			}
			if err := protocol.CheckEvent(dec, protocol.DefaultLimits()); err != nil {
				t.Errorf("decoded event fails CheckEvent: %v", err)
			}
			// The result must not alias the input.
			clear(enc)
			if enc3 := dec.Encode(nil); !bytes.Equal(enc3, ev.Encode(nil)) {
				t.Errorf("decoded event changed when its input was overwritten")
			}
			// Encode appends.
			if got := ev.Encode([]byte("prefix")); !bytes.HasPrefix(got, []byte("prefix")) || !bytes.Equal(got[6:], ev.Encode(nil)) {
				t.Errorf("Encode does not append to dst")
			}
		})
	}
	for k := protocol.KindThreadCreate; k <= protocol.KindMessageDelete; k++ {
		if !kinds[k] {
			t.Errorf("no %s in the round trip", k)
		}
	}
}

func TestPrunedEventsRoundTripAndStayValid(t *testing.T) {
	f, evs := everyKind(t)
	// A replica that only ever sees pruned events accepts all of them, with
	// the same metadata: authorship survives pruning.
	var other *protocol.ThreadState
	for _, ne := range evs {
		ev := ne.ev
		p := ev.Pruned()
		if p.Content != nil {
			t.Fatalf("%s: Pruned kept the content", ne.name)
		}
		if ev.Content == nil {
			t.Fatalf("%s: Pruned changed the original", ne.name)
		}
		if p.ID() != ev.ID() {
			t.Errorf("%s: pruning changed the ID", ne.name)
		}
		enc := p.Encode(nil)
		if bytes.Equal(enc, ev.Encode(nil)) && ev.Content.PublicMeta != nil {
			t.Errorf("%s: pruned encoding equals the full one", ne.name)
		}
		dec := mustDecode(t, enc)
		if dec.Content != nil {
			t.Errorf("%s: decoded pruned event has content", ne.name)
		}
		if dec.ID() != ev.ID() {
			t.Errorf("%s: decoded pruned ID %s, want %s", ne.name, dec.ID(), ev.ID())
		}
		if !bytes.Equal(dec.Encode(nil), enc) {
			t.Errorf("%s: pruned event does not round-trip", ne.name)
		}
		if err := dec.VerifySignature(); err != nil {
			t.Errorf("%s: pruned event fails VerifySignature: %v", ne.name, err)
		}
		if err := protocol.CheckEvent(dec, protocol.DefaultLimits()); err != nil {
			t.Errorf("%s: pruned event fails CheckEvent: %v", ne.name, err)
		}
		if _, err := protocol.OpenField(dec, protocol.FieldData, crypto.ThreadKey{}); !errors.Is(err, crypto.ErrOpen) {
			t.Errorf("%s: OpenField of a pruned event: %v, want crypto.ErrOpen", ne.name, err)
		}
		var meta protocol.EventMeta
		var err error
		if dec.Kind == protocol.KindThreadCreate {
			other, meta, err = protocol.NewThreadState(dec)
		} else {
			var ps []protocol.EventMeta
			for _, id := range dec.Parents {
				ps = append(ps, f.metas[id])
			}
			meta, err = other.Validate(dec, ps)
		}
		if err != nil {
			t.Fatalf("%s: pruned event rejected: %v", ne.name, err)
		}
		if !reflect.DeepEqual(meta, f.metas[ev.ID()]) {
			t.Errorf("%s: pruned event's metadata differs:\n got %+v\nwant %+v", ne.name, meta, f.metas[ev.ID()])
		}
		if dec.Kind != protocol.KindThreadCreate {
			other.Apply(dec, meta)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	_, evs := everyKind(t)
	post := evs[1].ev
	if post.Kind != protocol.KindMessagePost {
		t.Fatal("everyKind changed")
	}
	good := post.Encode(nil)
	// Offsets in a MessagePost: version, kind, thread (32), writer (32), seq.
	const seqOff = 1 + 1 + 32 + 32
	if good[seqOff] != 1 {
		t.Fatalf("byte %d is %d, expected bob's sequence number 1", seqOff, good[seqOff])
	}
	edit := func(fn func([]byte) []byte) []byte { return fn(bytes.Clone(good)) }

	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, protocol.ErrMalformed},
		{"version 0", edit(func(b []byte) []byte { b[0] = 0; return b }), protocol.ErrUnknownVersion},
		{"version 3", edit(func(b []byte) []byte { b[0] = 3; return b }), protocol.ErrUnknownVersion},
		{"version 2 without its certificate", edit(func(b []byte) []byte { b[0] = 2; return b }), protocol.ErrMalformed},
		{"version 255", edit(func(b []byte) []byte { b[0] = 255; return b }), protocol.ErrUnknownVersion},
		{"kind 0", edit(func(b []byte) []byte { b[1] = 0; return b }), protocol.ErrMalformed},
		{"kind 7", edit(func(b []byte) []byte { b[1] = 7; return b }), protocol.ErrMalformed},
		{"trailing byte", append(bytes.Clone(good), 0), protocol.ErrMalformed},
		{"trailing bytes", append(bytes.Clone(good), "junk"...), protocol.ErrMalformed},
		{"non-minimal varint", edit(func(b []byte) []byte {
			// sequence number 1 as the two-byte varint 0x81 0x00
			return slices.Concat(b[:seqOff], []byte{0x81, 0x00}, b[seqOff+1:])
		}), protocol.ErrMalformed},
		{"overlong varint", edit(func(b []byte) []byte {
			return slices.Concat(b[:seqOff], bytes.Repeat([]byte{0xff}, 11), b[seqOff+1:])
		}), protocol.ErrMalformed},
		{"bad content flag", edit(func(b []byte) []byte {
			// the content flag follows the signature; the content of this post is known
			n := len(contentEncoding(post.Content))
			b[len(b)-n-1] = 2
			return b
		}), protocol.ErrMalformed},
		{"pruned flag with content", edit(func(b []byte) []byte {
			n := len(contentEncoding(post.Content))
			b[len(b)-n-1] = 0
			return b
		}), protocol.ErrMalformed},
		{"too large", make([]byte, protocol.MaxEncodedSize+1), protocol.ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := protocol.Decode(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode = %v, want %v", err, tc.want)
			}
			if ev != nil {
				t.Errorf("Decode returned an event with an error")
			}
		})
	}
}

// contentEncoding is the wire form of a content part (three length-prefixed
// byte strings), written independently of the package.
func contentEncoding(c *protocol.Content) []byte {
	var b []byte
	for _, f := range [][]byte{c.PublicMeta, c.PrivateMeta, c.Data} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// controlOffset is where the control part of ev's encoding starts
// (computed from the documented layout, independently of the package).
func controlOffset(ev *protocol.Event) int {
	n := 1 + 1 + 32 + 32
	for _, v := range []uint64{ev.Seq, ev.Lamport, uint64(ev.Time), uint64(ev.Epoch), uint64(len(ev.Parents))} {
		n += len(binary.AppendUvarint(nil, v))
	}
	n += 32 * len(ev.Parents)
	if len(ev.Cert) > 0 || ev.Control.HasSeen {
		// Version 2: the extensions' flags byte, then each extension.
		n++
		if len(ev.Cert) > 0 {
			n += len(binary.AppendUvarint(nil, uint64(len(ev.Cert)))) + len(ev.Cert)
		}
		if ev.Control.HasSeen {
			n += len(binary.AppendUvarint(nil, uint64(len(ev.Control.Seen))))
			for _, m := range ev.Control.Seen {
				n += 32 + len(binary.AppendUvarint(nil, m.Seq))
			}
		}
	}
	return n
}

// Unknown flag bits are not silently dropped (that would break the
// round trip and let two encodings share an ID).
func TestDecodeUnknownFlags(t *testing.T) {
	f, evs := everyKind(t)
	// ThreadCreate: nonce, users, managers, then the 4 policy bytes.
	create := f.create.Encode(nil)
	off := controlOffset(f.create) + 32
	for _, l := range [][]crypto.UserID{f.create.Control.AddUsers, f.create.Control.AddManagers} {
		off += len(binary.AppendUvarint(nil, uint64(len(l)))) + 32*len(l)
	}
	if want := []byte{1, 4, 4, 1}; !bytes.Equal(create[off:off+4], want) {
		t.Fatalf("policy bytes %v, want DefaultPolicy's %v", create[off:off+4], want)
	}
	for i, v := range map[int]byte{0: 3, 1: 0, 2: 6, 3: 2} {
		b := bytes.Clone(create)
		b[off+i] = v
		if _, err := protocol.Decode(b); !errors.Is(err, protocol.ErrMalformed) {
			t.Errorf("policy byte %d = %d: Decode = %v, want ErrMalformed", i, v, err)
		}
	}
	// ThreadUpdate: the flags byte starts the control part.
	var upd *protocol.Event
	for _, ne := range evs {
		if ne.name == "update-everything" {
			upd = ne.ev
		}
	}
	b := upd.Encode(nil)
	if b[controlOffset(upd)] != 0x0f {
		t.Fatalf("update flags %#x, want all four set", b[controlOffset(upd)])
	}
	for _, bit := range []byte{0x10, 0x80} {
		c := bytes.Clone(b)
		c[controlOffset(upd)] |= bit
		if _, err := protocol.Decode(c); !errors.Is(err, protocol.ErrMalformed) {
			t.Errorf("update flag %#x: Decode = %v, want ErrMalformed", bit, err)
		}
	}
}

func TestDecodeNonMinimalVarintMessage(t *testing.T) {
	f := stdFixture(t)
	b := f.create.Encode(nil)
	const seqOff = 1 + 1 + 32 + 32
	bad := slices.Concat(b[:seqOff], []byte{0x81, 0x00}, b[seqOff+1:])
	_, err := protocol.Decode(bad)
	if !errors.Is(err, protocol.ErrMalformed) || !strings.Contains(err.Error(), "non-minimal") {
		t.Fatalf("Decode = %v, want a non-minimal varint ErrMalformed", err)
	}
}

func TestEveryTruncationFails(t *testing.T) {
	_, evs := everyKind(t)
	for _, ne := range evs {
		for _, b := range [][]byte{ne.ev.Encode(nil), ne.ev.Pruned().Encode(nil)} {
			for i := 0; i < len(b); i++ {
				ev, err := protocol.Decode(b[:i])
				if err == nil || ev != nil {
					t.Fatalf("%s: Decode of the first %d of %d bytes succeeded", ne.name, i, len(b))
				}
				if !errors.Is(err, protocol.ErrMalformed) {
					t.Fatalf("%s: Decode of %d of %d bytes = %v, want ErrMalformed", ne.name, i, len(b), err)
				}
			}
		}
	}
}

// Flipping any single bit of a valid encoding is caught: by Decode, or by
// the signature. Nothing else is needed to trust an event's bytes.
func TestEveryBitFlipIsDetected(t *testing.T) {
	_, evs := everyKind(t)
	for _, ne := range evs {
		for _, orig := range [][]byte{ne.ev.Encode(nil), ne.ev.Pruned().Encode(nil)} {
			b := bytes.Clone(orig)
			for i := range b {
				bit := byte(1) << (i % 8)
				b[i] ^= bit
				ev, err := protocol.Decode(b)
				if err == nil {
					err = protocol.CheckEvent(ev, protocol.DefaultLimits())
					if !errors.Is(err, protocol.ErrBadSignature) {
						t.Fatalf("%s: flipping bit %d of byte %d of %d: CheckEvent = %v, want ErrBadSignature", ne.name, i%8, i, len(b), err)
					}
				}
				b[i] ^= bit
			}
		}
	}
}

func TestUnsortedParentsAreMalformed(t *testing.T) {
	_, evs := everyKind(t)
	var two *protocol.Event
	for _, ne := range evs {
		if ne.name == "post-three-parents" {
			two = ne.ev
		}
	}
	for _, tc := range []struct {
		name    string
		parents func([]protocol.EventID) []protocol.EventID
	}{
		{"swapped", func(p []protocol.EventID) []protocol.EventID { return []protocol.EventID{p[1], p[0]} }},
		{"duplicate", func(p []protocol.EventID) []protocol.EventID { return []protocol.EventID{p[0], p[0]} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := mustDecode(t, two.Encode(nil))
			ev.Parents = tc.parents(ev.Parents)
			_, err := protocol.Decode(ev.Encode(nil))
			if !errors.Is(err, protocol.ErrMalformed) {
				t.Errorf("Decode = %v, want ErrMalformed", err)
			}
			if err := protocol.CheckEvent(ev, protocol.DefaultLimits()); !errors.Is(err, protocol.ErrMalformed) {
				t.Errorf("CheckEvent = %v, want ErrMalformed", err)
			}
			if err := ev.Sign(ident(t, "alice")); !errors.Is(err, protocol.ErrMalformed) {
				t.Errorf("Sign = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestPolicyCheck(t *testing.T) {
	if err := protocol.DefaultPolicy().Check(); err != nil {
		t.Errorf("DefaultPolicy: %v", err)
	}
	for _, p := range []protocol.Policy{
		{},
		{Post: protocol.RoleAuthor, EditMessage: protocol.RoleAuthor, DeleteMessage: protocol.RoleAuthor},
		{Post: protocol.RoleMember, EditMessage: 0, DeleteMessage: protocol.RoleAuthor},
		{Post: protocol.RoleMember, EditMessage: protocol.RoleAuthor, DeleteMessage: 6},
	} {
		if err := p.Check(); err == nil {
			t.Errorf("%+v: Check = nil", p)
		}
	}
	for _, r := range []protocol.Role{protocol.RoleMember, protocol.RoleManager, protocol.RoleAuthor, protocol.RoleAuthorOrManager, protocol.RoleNobody} {
		if got, err := protocol.ParseRole(r.String()); err != nil || got != r {
			t.Errorf("ParseRole(%q) = %v, %v", r.String(), got, err)
		}
	}
	if _, err := protocol.ParseRole("admin"); err == nil {
		t.Errorf("ParseRole(admin) succeeded")
	}
}

// Events whose fields do not fit their kind cannot be signed, pass
// CheckEvent or (if the field is on the wire for the kind) be decoded.
func TestShapeRules(t *testing.T) {
	f, evs := everyKind(t)
	byName := map[string]*protocol.Event{}
	for _, ne := range evs {
		byName[ne.name] = ne.ev
	}
	someID := f.create.ID()
	for _, tc := range []struct {
		from   string
		onWire bool // the broken field is encoded for this kind
		mutate func(*protocol.Event)
	}{
		{"post", false, func(e *protocol.Event) { e.Control.Target = someID }},
		{"post", false, func(e *protocol.Event) { e.Control.AddUsers = uids(t, "dave") }},
		{"post", true, func(e *protocol.Event) { e.Seq = 0 }},
		{"post", true, func(e *protocol.Event) { e.Lamport = 0 }},
		{"post", true, func(e *protocol.Event) { e.Thread = protocol.ThreadID{} }},
		{"message-update", true, func(e *protocol.Event) { e.Control.Target = protocol.EventID{} }},
		{"message-delete", true, func(e *protocol.Event) { e.Content = &protocol.Content{Data: []byte("x")} }},
		{"thread-delete", true, func(e *protocol.Event) { e.Content = &protocol.Content{PublicMeta: []byte("x")} }},
		{"create", true, func(e *protocol.Event) { e.Content.Data = []byte("x") }},
		{"create", true, func(e *protocol.Event) { e.Thread = protocol.ThreadID(someID) }},
		{"create", true, func(e *protocol.Event) { e.Seq = 2 }},
		{"create", true, func(e *protocol.Event) { e.Epoch = 1 }},
		{"create", true, func(e *protocol.Event) { e.Parents = []protocol.EventID{someID} }},
		{"create", true, func(e *protocol.Event) { e.Control.Policy.Post = protocol.RoleAuthor }},
		{"create", true, func(e *protocol.Event) { e.Control.Policy.EditMessage = 0 }},
		{"create", false, func(e *protocol.Event) { e.Control.NewEpoch = true }},
		{"create", true, func(e *protocol.Event) { slices.Reverse(e.Control.AddUsers) }},
		{"create", true, func(e *protocol.Event) {
			e.Control.AddManagers = append(e.Control.AddManagers, e.Control.AddManagers[0])
		}},
		{"create", true, func(e *protocol.Event) { e.Control.Keys[0].Wrapped = e.Control.Keys[0].Wrapped[1:] }},
		{"create", true, func(e *protocol.Event) { e.Control.Keys[0], e.Control.Keys[1] = e.Control.Keys[1], e.Control.Keys[0] }},
		{"create", true, func(e *protocol.Event) { e.Control.Keys = slices.Insert(e.Control.Keys, 0, e.Control.Keys[0]) }},
		{"update-everything", false, func(e *protocol.Event) { e.Control.SetPolicy = false }},
		{"update-everything", true, func(e *protocol.Event) { e.Control.SetPublicMeta = false }},
		{"update-everything", false, func(e *protocol.Event) { e.Control.Target = someID }},
		{"update-everything", true, func(e *protocol.Event) { e.Content.Data = []byte("x") }},
	} {
		ev := mustDecode(t, byName[tc.from].Encode(nil))
		tc.mutate(ev)
		if err := protocol.CheckEvent(ev, protocol.DefaultLimits()); !errors.Is(err, protocol.ErrMalformed) {
			t.Errorf("%s: CheckEvent of a malformed event = %v, want ErrMalformed", tc.from, err)
		}
		if err := ev.Sign(ident(t, userName(t, ev.Writer))); !errors.Is(err, protocol.ErrMalformed) {
			t.Errorf("%s: Sign of a malformed event = %v, want ErrMalformed", tc.from, err)
		}
		if _, err := protocol.Decode(ev.Encode(nil)); tc.onWire && !errors.Is(err, protocol.ErrMalformed) {
			t.Errorf("%s: Decode of a malformed event = %v, want ErrMalformed", tc.from, err)
		}
	}
}

func TestTamperedContentFailsSignature(t *testing.T) {
	_, evs := everyKind(t)
	for _, ne := range evs {
		for i, mutate := range []func(*protocol.Content){
			func(c *protocol.Content) { c.PublicMeta = append(c.PublicMeta, 'x') },
			func(c *protocol.Content) { c.PrivateMeta = nil },
			func(c *protocol.Content) { c.Data = append(c.Data, 'x') },
			func(c *protocol.Content) { c.PublicMeta, c.PrivateMeta = c.PrivateMeta, c.PublicMeta },
		} {
			ev := mustDecode(t, ne.ev.Encode(nil))
			mutate(ev.Content)
			if bytes.Equal(contentEncoding(ev.Content), contentEncoding(ne.ev.Content)) {
				continue // a no-op for this event (e.g. no private metadata to drop)
			}
			if err := ev.VerifySignature(); !errors.Is(err, protocol.ErrBadSignature) {
				t.Errorf("%s: tampered content %d: VerifySignature = %v, want ErrBadSignature", ne.name, i, err)
			}
			if ev.ContentMatches() {
				t.Errorf("%s: tampered content %d: ContentMatches = true", ne.name, i)
			}
			if !ne.ev.ContentMatches() || !ev.Pruned().ContentMatches() {
				t.Errorf("%s: ContentMatches is false for the original or a pruned copy", ne.name)
			}
			// The same on the wire (if the tampered event still decodes).
			if dec, err := protocol.Decode(ev.Encode(nil)); err == nil {
				if err := protocol.CheckEvent(dec, protocol.DefaultLimits()); !errors.Is(err, protocol.ErrBadSignature) {
					t.Errorf("%s: tampered content %d on the wire: CheckEvent = %v, want ErrBadSignature", ne.name, i, err)
				}
			}
		}
	}
}

func TestTamperedHeaderFailsSignature(t *testing.T) {
	f, evs := everyKind(t)
	post := evs[1].ev
	for _, tc := range []struct {
		name   string
		mutate func(*protocol.Event)
	}{
		{"time", func(e *protocol.Event) { e.Time++ }},
		{"lamport", func(e *protocol.Event) { e.Lamport++ }},
		{"seq", func(e *protocol.Event) { e.Seq++ }},
		{"epoch", func(e *protocol.Event) { e.Epoch++ }},
		{"thread", func(e *protocol.Event) { e.Thread[0] ^= 1 }},
		{"writer", func(e *protocol.Event) { e.Writer = uid(t, "carol") }},
		{"parents", func(e *protocol.Event) { e.Parents = sortIDs(f.create.ID(), protocol.EventID{1}) }},
		{"signature", func(e *protocol.Event) { e.Sig[10] ^= 1 }},
		{"content hash", func(e *protocol.Event) { e.ContentHash[0] ^= 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := mustDecode(t, post.Encode(nil))
			tc.mutate(ev)
			dec := mustDecode(t, ev.Encode(nil))
			if err := protocol.CheckEvent(dec, protocol.DefaultLimits()); !errors.Is(err, protocol.ErrBadSignature) {
				t.Errorf("CheckEvent = %v, want ErrBadSignature", err)
			}
			// The ID covers everything signed, not the signature itself.
			if sameID := dec.ID() == post.ID(); sameID != (tc.name == "signature") {
				t.Errorf("tampering with the %s: same ID = %v", tc.name, sameID)
			}
		})
	}
	// A tampered byte in the signed header, on the wire.
	b := post.Encode(nil)
	b[2] ^= 0x40 // first byte of the thread ID
	if err := protocol.CheckEvent(mustDecode(t, b), protocol.DefaultLimits()); !errors.Is(err, protocol.ErrBadSignature) {
		t.Errorf("tampered header byte: CheckEvent = %v, want ErrBadSignature", err)
	}
	// Signing as someone else than the writer is refused.
	ev := mustDecode(t, post.Encode(nil))
	if err := ev.Sign(ident(t, "alice")); !errors.Is(err, protocol.ErrBadSignature) {
		t.Errorf("Sign by a non-writer = %v, want ErrBadSignature", err)
	}
}

func TestCheckEventLimits(t *testing.T) {
	f := stdFixture(t)
	lim := protocol.Limits{MaxData: 1024, MaxMeta: 64}
	build := func(pub, priv, data int) *protocol.Event {
		ev, err := protocol.NewPost(f.ts, ident(t, "bob"), f.rings["bob"],
			bytes.Repeat([]byte("p"), pub), bytes.Repeat([]byte("q"), priv), bytes.Repeat([]byte("d"), data), f.now())
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	for _, tc := range []struct {
		pub, priv, data int
		want            error
	}{
		{0, 0, 0, nil},
		{64, 64, 1024, nil}, // exactly at the limits
		{65, 0, 0, protocol.ErrTooLarge},
		{0, 65, 0, protocol.ErrTooLarge},
		{0, 0, 1025, protocol.ErrTooLarge},
	} {
		ev := build(tc.pub, tc.priv, tc.data)
		if err := protocol.CheckEvent(ev, lim); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("pub=%d priv=%d data=%d: CheckEvent = %v, want %v", tc.pub, tc.priv, tc.data, err, tc.want)
		}
		// The same event round-trips; the limit is the replica's, not the wire's.
		if _, err := protocol.Decode(ev.Encode(nil)); err != nil {
			t.Errorf("Decode: %v", err)
		}
	}
	// A pruned event carries no content, so it is never too large.
	if err := protocol.CheckEvent(build(0, 0, 2000).Pruned(), lim); err != nil {
		t.Errorf("pruned oversized post: CheckEvent = %v", err)
	}
}

func TestParseIDs(t *testing.T) {
	f := stdFixture(t)
	id := f.create.ID()
	s := id.String()
	if len(s) != 64 || strings.ToLower(s) != s {
		t.Fatalf("String = %q", s)
	}
	got, err := protocol.ParseEventID(s)
	if err != nil || got != id {
		t.Fatalf("ParseEventID(%q) = %v, %v", s, got, err)
	}
	tid, err := protocol.ParseThreadID(s)
	if err != nil || tid != f.create.ThreadID() || tid.String() != s {
		t.Fatalf("ParseThreadID(%q) = %v, %v", s, tid, err)
	}
	text, _ := id.MarshalText()
	var back protocol.EventID
	if err := back.UnmarshalText(text); err != nil || back != id {
		t.Errorf("EventID text round trip: %v, %v", back, err)
	}
	var tback protocol.ThreadID
	text, _ = tid.MarshalText()
	if err := tback.UnmarshalText(text); err != nil || tback != tid {
		t.Errorf("ThreadID text round trip: %v, %v", tback, err)
	}
	for _, bad := range []string{"", s[:63], s + "0", strings.ToUpper(s), "g" + s[1:], " " + s[1:]} {
		if _, err := protocol.ParseEventID(bad); !errors.Is(err, protocol.ErrMalformedID) {
			t.Errorf("ParseEventID(%q) = %v, want ErrMalformedID", bad, err)
		}
		if _, err := protocol.ParseThreadID(bad); !errors.Is(err, protocol.ErrMalformedID) {
			t.Errorf("ParseThreadID(%q) = %v, want ErrMalformedID", bad, err)
		}
		if err := back.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) succeeded", bad)
		}
	}
	if !(protocol.EventID{}).IsZero() || id.IsZero() || !(protocol.ThreadID{}).IsZero() {
		t.Errorf("IsZero is wrong")
	}
}

// Order keys sort bytewise exactly as the linear order does.
func TestOrderKey(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var orders []protocol.Order
	for range 200 {
		var o protocol.Order
		o.Lamport = rng.Uint64N(5)
		if rng.IntN(4) == 0 {
			o.Lamport = rng.Uint64()
		}
		for i := range o.ID {
			o.ID[i] = byte(rng.IntN(3))
		}
		orders = append(orders, o)
	}
	for _, a := range orders {
		ka := a.AppendKey(nil)
		if len(ka) != protocol.OrderKeySize {
			t.Fatalf("key of %d bytes", len(ka))
		}
		back, err := protocol.ParseOrderKey(ka)
		if err != nil || back != a {
			t.Fatalf("ParseOrderKey(AppendKey(%v)) = %v, %v", a, back, err)
		}
		for _, b := range orders {
			if got, want := bytes.Compare(ka, b.AppendKey(nil)), a.Compare(b); got != want {
				t.Fatalf("key order %d, Order.Compare %d for %v and %v", got, want, a, b)
			}
			if a.Less(b) != (a.Compare(b) < 0) {
				t.Fatalf("Less disagrees with Compare")
			}
		}
	}
	if _, err := protocol.ParseOrderKey(make([]byte, protocol.OrderKeySize-1)); !errors.Is(err, protocol.ErrMalformed) {
		t.Errorf("ParseOrderKey of a short key: %v", err)
	}
}

func TestEventMetaRoundTrip(t *testing.T) {
	f, evs := everyKind(t)
	for _, ne := range evs {
		m := f.metas[ne.ev.ID()]
		b := m.AppendBinary(nil)
		got, err := protocol.DecodeEventMeta(b)
		if err != nil {
			t.Fatalf("%s: DecodeEventMeta: %v", ne.name, err)
		}
		if !reflect.DeepEqual(*got, m) {
			t.Errorf("%s: meta round trip:\n got %+v\nwant %+v", ne.name, *got, m)
		}
		if !bytes.Equal(got.AppendBinary(nil), b) {
			t.Errorf("%s: meta re-encoding differs", ne.name)
		}
		for i := range b {
			if _, err := protocol.DecodeEventMeta(b[:i]); err == nil {
				t.Fatalf("%s: DecodeEventMeta of %d of %d bytes succeeded", ne.name, i, len(b))
			}
		}
		if _, err := protocol.DecodeEventMeta(append(b, 0)); !errors.Is(err, protocol.ErrMalformed) {
			t.Errorf("%s: trailing byte: %v", ne.name, err)
		}
		bad := bytes.Clone(b)
		bad[0] = 9
		if _, err := protocol.DecodeEventMeta(bad); !errors.Is(err, protocol.ErrUnknownVersion) {
			t.Errorf("%s: unknown version: %v", ne.name, err)
		}
		for _, k := range []byte{0, 7, 255} {
			bad := bytes.Clone(b)
			bad[1] = k
			if _, err := protocol.DecodeEventMeta(bad); !errors.Is(err, protocol.ErrMalformed) {
				t.Errorf("%s: kind %d: %v", ne.name, k, err)
			}
		}
	}
}

func TestMessageStateRoundTrip(t *testing.T) {
	f, _ := everyKind(t)
	// Fold the messages of everyKind's thread and round-trip each state.
	msgs := foldMessages(f.ts, f.metas)
	if len(msgs) < 3 {
		t.Fatalf("only %d messages", len(msgs))
	}
	edited := false
	for id, m := range msgs {
		edited = edited || len(m.Updates) > 0
		b := m.AppendBinary(nil)
		got, err := protocol.DecodeMessageState(b)
		if err != nil {
			t.Fatalf("%s: DecodeMessageState: %v", id, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%s: round trip:\n got %+v\nwant %+v", id, got, m)
		}
		for i := range b {
			if _, err := protocol.DecodeMessageState(b[:i]); err == nil {
				t.Fatalf("DecodeMessageState of %d of %d bytes succeeded", i, len(b))
			}
		}
		if _, err := protocol.DecodeMessageState(append(b, 0)); !errors.Is(err, protocol.ErrMalformed) {
			t.Errorf("trailing byte: %v", err)
		}
		for _, flag := range []byte{4, 0x80} {
			bad := bytes.Clone(b)
			bad[1] |= flag
			if _, err := protocol.DecodeMessageState(bad); !errors.Is(err, protocol.ErrMalformed) {
				t.Errorf("unknown flag %#x: %v", flag, err)
			}
		}
		bad := bytes.Clone(b)
		bad[0] = 2
		if _, err := protocol.DecodeMessageState(bad); !errors.Is(err, protocol.ErrUnknownVersion) {
			t.Errorf("unknown version: %v", err)
		}
	}
	if !edited {
		t.Errorf("no edited message in the fold")
	}
}

// foldMessages computes the message states of a thread from the metadata of
// all its accepted events.
func foldMessages(ts *protocol.ThreadState, metas map[protocol.EventID]protocol.EventMeta) map[protocol.EventID]*protocol.MessageState {
	all := make([]protocol.EventMeta, 0, len(metas))
	for _, m := range metas {
		all = append(all, m)
	}
	slices.SortFunc(all, func(a, b protocol.EventMeta) int { return a.Order().Compare(b.Order()) })
	msgs := map[protocol.EventID]*protocol.MessageState{}
	for i := range all {
		m := &all[i]
		switch m.Kind {
		case protocol.KindMessagePost:
			snap := ts.SnapshotAt(m.Order())
			ms := protocol.NewMessageState(m, &snap)
			msgs[m.ID] = &ms
		case protocol.KindMessageUpdate, protocol.KindMessageDelete:
			if ms, ok := msgs[m.Target]; ok {
				snap := ts.SnapshotAt(m.Order())
				ms.Apply(m, &snap)
			}
		}
	}
	return msgs
}

// ---- Golden test vectors ----

const vectorsFile = "testdata/event-vectors.txt"

// vectorRandSeed is the testing/cryptotest.SetGlobalRandom seed the vectors
// are generated with.
const vectorRandSeed = 1

// vector is one event of the golden file. Key is the thread key its
// content is sealed with (for events with sealed content); the plaintext
// fields are what OpenField must give with it.
type vector struct {
	Name        string
	Kind        string
	Writer      string
	ID          string
	Key         string // hex, or empty
	PublicMeta  string // quoted
	PrivateMeta string // quoted
	Data        string // quoted
	Event       string // hex
}

var vectorFields = []string{"name", "kind", "writer", "id", "key", "public-meta", "private-meta", "data", "event"}

func (v *vector) field(name string) *string {
	return map[string]*string{
		"name": &v.Name, "kind": &v.Kind, "writer": &v.Writer, "id": &v.ID, "key": &v.Key,
		"public-meta": &v.PublicMeta, "private-meta": &v.PrivateMeta, "data": &v.Data, "event": &v.Event,
	}[name]
}

// buildVectors builds the vector thread: alice creates it with bob and
// carol, bob posts and edits, alice removes carol and adds dave (a new
// epoch), dave posts, alice deletes bob's message, then the thread. It is
// deterministic under cryptotest.SetGlobalRandom.
func buildVectors(tb testing.TB) []vector {
	f := stdFixture(tb)
	type step struct {
		name string
		ev   *protocol.Event
		// the plaintexts of the sealed fields, if any
		priv, data string
	}
	steps := []step{{"create", f.create, "private title", ""}}
	acc := func(name string, ev *protocol.Event, priv, data string) *protocol.Event {
		f.accept(ev)
		steps = append(steps, step{name, ev, priv, data})
		return ev
	}
	post := acc("post", f.post("bob", "hello, weft"), "priv:hello, weft", "hello, weft")
	acc("message-update", f.edit("bob", post.ID(), "hello again"), "priv:hello again", "hello again")
	acc("thread-update", f.update("alice", protocol.ThreadChange{
		AddUsers: uids(tb, "dave"), RemoveUsers: uids(tb, "carol"), PublicMeta: []byte("renamed"), PrivateMeta: []byte("new secret"),
	}), "new secret", "")
	acc("post-epoch-1", f.post("dave", "dave was here"), "priv:dave was here", "dave was here")
	acc("message-delete", f.deleteMsg("alice", post.ID()), "", "")
	acc("thread-delete", f.deleteThread("alice"), "", "")
	steps = append(steps, step{"post-pruned", post.Pruned(), "", ""})

	var out []vector
	for _, s := range steps {
		ev := s.ev
		v := vector{
			Name: s.name, Kind: ev.Kind.String(), Writer: userName(tb, ev.Writer),
			ID: ev.ID().String(), Event: hex.EncodeToString(ev.Encode(nil)),
		}
		if ev.Content != nil && len(ev.Content.PrivateMeta) > 0 {
			keyRef := f.metas[ev.ID()].KeyRef
			key, ok := f.rings["alice"][keyRef]
			if !ok {
				tb.Fatalf("%s: alice lacks the key", s.name)
			}
			v.Key = hex.EncodeToString(key[:])
			v.PublicMeta = strconv.Quote(string(ev.Content.PublicMeta))
			v.PrivateMeta = strconv.Quote(s.priv)
			if ev.Kind.IsMessage() {
				v.Data = strconv.Quote(s.data)
			}
		}
		out = append(out, v)
	}
	return out
}

func formatVectors(vs []vector) []byte {
	var b bytes.Buffer
	b.WriteString(`# weft protocol event test vectors (wire version 1).
#
# Generated by: go test ./protocol -run TestEventVectors -update
# Identities: the Ed25519 seed of user NAME is SHA-256("weft protocol test user " + NAME).
# Randomness (thread nonce, thread keys, HPKE wraps, seal nonces):
#   testing/cryptotest.SetGlobalRandom(t, 1); event times are 1700000001000 + 1000*i ms.
# One block per event, in thread order. "event" is the wire encoding (hex), "id" its
# event ID. "key" is the thread key the content is sealed with; opening privateMeta
# and data with it (SealAAD of the event) gives the quoted plaintexts. The thread
# update removes carol and adds dave, starting epoch 1; post-pruned is the first
# post without its content (same ID).
`)
	for _, v := range vs {
		b.WriteString("\n")
		for _, name := range vectorFields {
			if val := *v.field(name); val != "" {
				fmt.Fprintf(&b, "%s: %s\n", name, val)
			}
		}
	}
	return b.Bytes()
}

func parseVectors(data []byte) ([]vector, error) {
	var out []vector
	var cur *vector
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#"):
			continue
		case line == "":
			cur = nil
			continue
		}
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			return nil, fmt.Errorf("line %d: want \"field: value\"", n)
		}
		if cur == nil {
			out = append(out, vector{})
			cur = &out[len(out)-1]
		}
		p := cur.field(k)
		if p == nil {
			return nil, fmt.Errorf("line %d: unknown field %q", n, k)
		}
		*p = v
	}
	return out, sc.Err()
}

func readVectors(tb testing.TB) []vector {
	tb.Helper()
	data, err := os.ReadFile(vectorsFile)
	if err != nil {
		tb.Fatal(err)
	}
	vs, err := parseVectors(data)
	if err != nil {
		tb.Fatalf("%s: %v", vectorsFile, err)
	}
	return vs
}

func TestEventVectors(t *testing.T) {
	cryptotest.SetGlobalRandom(t, vectorRandSeed)
	generated := formatVectors(buildVectors(t))
	if *update {
		if err := os.WriteFile(vectorsFile, generated, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", vectorsFile)
	}

	// The stored vectors are the contract: they must decode, verify,
	// re-encode to the same bytes, form a valid thread and open with
	// their keys, independently of how they were generated.
	vs := readVectors(t)
	if len(vs) != 8 {
		t.Fatalf("%d vectors, want 8", len(vs))
	}
	var ts *protocol.ThreadState
	metas := map[protocol.EventID]protocol.EventMeta{}
	kinds := map[string]bool{}
	for _, v := range vs {
		b, err := hex.DecodeString(v.Event)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		ev, err := protocol.Decode(b)
		if err != nil {
			t.Fatalf("%s: Decode: %v", v.Name, err)
		}
		kinds[v.Kind] = true
		if !bytes.Equal(ev.Encode(nil), b) {
			t.Errorf("%s: re-encoding differs", v.Name)
		}
		if ev.ID().String() != v.ID {
			t.Errorf("%s: ID %s, vector says %s", v.Name, ev.ID(), v.ID)
		}
		if ev.Kind.String() != v.Kind {
			t.Errorf("%s: kind %s, vector says %s", v.Name, ev.Kind, v.Kind)
		}
		if ev.Writer != uid(t, v.Writer) {
			t.Errorf("%s: writer is not %s", v.Name, v.Writer)
		}
		if err := protocol.CheckEvent(ev, protocol.DefaultLimits()); err != nil {
			t.Errorf("%s: CheckEvent: %v", v.Name, err)
		}
		if v.Key != "" {
			kb, err := hex.DecodeString(v.Key)
			if err != nil || len(kb) != 32 {
				t.Fatalf("%s: bad key %q", v.Name, v.Key)
			}
			key := crypto.ThreadKey(kb)
			checkOpen := func(field, quoted string) {
				want, err := strconv.Unquote(quoted)
				if err != nil {
					t.Fatalf("%s: %s: %v", v.Name, field, err)
				}
				got, err := protocol.OpenField(ev, field, key)
				if err != nil || string(got) != want {
					t.Errorf("%s: OpenField(%s) = %q, %v; want %q", v.Name, field, got, err, want)
				}
			}
			checkOpen(protocol.FieldPrivateMeta, v.PrivateMeta)
			if v.Data != "" {
				checkOpen(protocol.FieldData, v.Data)
			}
			if pub, _ := strconv.Unquote(v.PublicMeta); string(ev.Content.PublicMeta) != pub {
				t.Errorf("%s: publicMeta %q, want %q", v.Name, ev.Content.PublicMeta, pub)
			}
			// Every key this event wraps opens for its user, and the new
			// key it introduces is the vector's key.
			for _, k := range ev.Control.Keys {
				ring := protocol.KeyRing{}
				if n, err := protocol.UnwrapKeys(ring, ev, ident(t, userName(t, k.User))); n == 0 {
					t.Errorf("%s: %s cannot unwrap: %v", v.Name, userName(t, k.User), err)
				}
				if k.Source.IsZero() && ring[ev.ID()] != key {
					t.Errorf("%s: %s unwraps another key than the vector's", v.Name, userName(t, k.User))
				}
			}
		}
		if v.Name == "post-pruned" {
			if ev.Content != nil || ev.ID() != mustParseID(t, vs[1].ID) {
				t.Errorf("post-pruned is not the pruned first post")
			}
			continue
		}
		// Replay: the vectors form a valid thread in this order.
		var meta protocol.EventMeta
		ts, meta, err = replay(ts, metas, ev)
		if err != nil {
			t.Fatalf("%s: rejected: %v", v.Name, err)
		}
		metas[meta.ID] = meta
	}
	for k := protocol.KindThreadCreate; k <= protocol.KindMessageDelete; k++ {
		if !kinds[k.String()] {
			t.Errorf("no %s vector", k)
		}
	}
	if !ts.Current.Deleted || ts.Current.Epoch != 1 {
		t.Errorf("vector thread ends at epoch %d, deleted=%v; want epoch 1, deleted", ts.Current.Epoch, ts.Current.Deleted)
	}

	// And generating them again gives the same bytes: the wire format
	// (and the use of randomness) has not changed.
	stored, _ := os.ReadFile(vectorsFile)
	if !bytes.Equal(generated, stored) {
		t.Errorf("%s differs from freshly generated vectors; if the wire format changed on purpose, run with -update", vectorsFile)
	}
}

func mustParseID(tb testing.TB, s string) protocol.EventID {
	tb.Helper()
	id, err := protocol.ParseEventID(s)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// independentID computes an event ID from its encoding alone: SHA-256 of
// everything before the signature.
func independentID(b []byte, ev *protocol.Event) protocol.EventID {
	tail := crypto.SignatureSize + 1
	if ev.Content != nil {
		tail += len(contentEncoding(ev.Content))
	}
	return sha256.Sum256(b[:len(b)-tail])
}

// An update that removes a member, as written before seen marks (wire
// version 1), still decodes, verifies and re-encodes to the same bytes.
func TestLegacyRemovalDecodes(t *testing.T) {
	h, err := os.ReadFile("testdata/legacy-v1-removal.hex")
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(h)))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := protocol.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Kind != protocol.KindThreadUpdate || len(ev.Control.RemoveUsers) == 0 || ev.Control.HasSeen {
		t.Fatalf("decoded %s, removes %d, seen marks %v", ev.Kind, len(ev.Control.RemoveUsers), ev.Control.HasSeen)
	}
	if err := protocol.CheckEvent(ev, protocol.DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ev.Encode(nil), b) {
		t.Fatal("does not re-encode to the same bytes")
	}
}
