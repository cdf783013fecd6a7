package protocol_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/protocol"
)

// w returns a stand-in writer whose ID starts with b (version vectors do
// not check that writers are valid keys).
func w(b byte) crypto.UserID { return crypto.UserID{b} }

// vv builds a version vector from (writer byte, sequence) pairs.
func vv(pairs ...uint64) protocol.VersionVector {
	v := protocol.VersionVector{}
	for i := 0; i < len(pairs); i += 2 {
		v[w(byte(pairs[i]))] = pairs[i+1]
	}
	return v
}

func TestVersionVectorCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b protocol.VersionVector
		want protocol.Relation
	}{
		{nil, nil, protocol.Equal},
		{vv(), nil, protocol.Equal},
		{vv(1, 3, 2, 1), vv(2, 1, 1, 3), protocol.Equal},
		{vv(1, 2), vv(1, 3), protocol.Before},
		{vv(1, 3), vv(1, 3, 2, 1), protocol.Before}, // a new writer
		{nil, vv(1, 1), protocol.Before},
		{vv(1, 3, 2, 1), vv(1, 3), protocol.After},
		{vv(1, 4), vv(1, 3), protocol.After},
		{vv(1, 4), vv(1, 3, 2, 1), protocol.Concurrent},
		{vv(1, 1), vv(2, 1), protocol.Concurrent},
		{vv(1, 2, 2, 1), vv(1, 1, 2, 2), protocol.Concurrent},
	} {
		if got := tc.a.Compare(tc.b); got != tc.want {
			t.Errorf("%v.Compare(%v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		back := map[protocol.Relation]protocol.Relation{
			protocol.Equal: protocol.Equal, protocol.Before: protocol.After,
			protocol.After: protocol.Before, protocol.Concurrent: protocol.Concurrent,
		}[tc.want]
		if got := tc.b.Compare(tc.a); got != back {
			t.Errorf("%v.Compare(%v) = %v, want %v", tc.b, tc.a, got, back)
		}
	}
	for r, s := range map[protocol.Relation]string{protocol.Equal: "equal", protocol.Before: "before", protocol.After: "after", protocol.Concurrent: "concurrent"} {
		if r.String() != s {
			t.Errorf("%d.String() = %q, want %q", r, r.String(), s)
		}
	}
}

func TestVersionVectorMergeAndMissing(t *testing.T) {
	a := vv(1, 5, 2, 2)
	b := vv(1, 3, 2, 7, 3, 1)
	if got, want := a.Missing(b), []protocol.SeqRange{{Writer: w(2), From: 3, To: 7}, {Writer: w(3), From: 1, To: 1}}; !reflect.DeepEqual(got, want) {
		t.Errorf("a.Missing(b) = %v, want %v", got, want)
	}
	if got, want := b.Missing(a), []protocol.SeqRange{{Writer: w(1), From: 4, To: 5}}; !reflect.DeepEqual(got, want) {
		t.Errorf("b.Missing(a) = %v, want %v", got, want)
	}
	if got := a.Missing(a); len(got) != 0 {
		t.Errorf("a.Missing(a) = %v", got)
	}
	if got := vv().Missing(nil); len(got) != 0 {
		t.Errorf("empty Missing = %v", got)
	}
	c := a.Clone()
	c.Merge(b)
	if want := vv(1, 5, 2, 7, 3, 1); !reflect.DeepEqual(c, want) {
		t.Errorf("Merge = %v, want %v", c, want)
	}
	if !reflect.DeepEqual(a, vv(1, 5, 2, 2)) {
		t.Errorf("Clone shares storage: a became %v", a)
	}
	if protocol.VersionVector(nil).Clone() != nil {
		t.Errorf("Clone(nil) is not nil")
	}
	if got := c.Writers(); !slices.Equal(got, []crypto.UserID{w(1), w(2), w(3)}) {
		t.Errorf("Writers = %v", got)
	}
}

// Properties over random vectors: Missing is exactly what Compare says is
// lacking, fetching the missing ranges brings a replica up to date, and
// Merge is an upper bound.
func TestVersionVectorProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	random := func() protocol.VersionVector {
		v := protocol.VersionVector{}
		for i := range 4 {
			if s := rng.Uint64N(4); s > 0 {
				v[w(byte(i))] = s
			}
		}
		return v
	}
	for range 2000 {
		a, b := random(), random()
		rel := a.Compare(b)
		lacks := len(a.Missing(b)) > 0
		if lacks != (rel == protocol.Before || rel == protocol.Concurrent) {
			t.Fatalf("%v vs %v: Compare %v but Missing %v", a, b, rel, a.Missing(b))
		}
		got := a.Clone()
		for _, r := range a.Missing(b) {
			if r.From != a[r.Writer]+1 || r.To != b[r.Writer] || r.From > r.To {
				t.Fatalf("bad range %v for %v -> %v", r, a, b)
			}
			got[r.Writer] = r.To
		}
		if c := got.Compare(b); c != protocol.Equal && c != protocol.After {
			t.Fatalf("after fetching %v, %v is %v %v", a.Missing(b), got, c, b)
		}
		m := a.Clone()
		m.Merge(b)
		if !reflect.DeepEqual(m, got) {
			t.Fatalf("Merge(%v, %v) = %v, fetching gives %v", a, b, m, got)
		}
		if (a.Digest() == b.Digest()) != (rel == protocol.Equal) {
			t.Fatalf("Digest equality %v for %v %v %v", a.Digest() == b.Digest(), a, rel, b)
		}
	}
}

func TestVersionVectorEncoding(t *testing.T) {
	for _, v := range []protocol.VersionVector{nil, vv(), vv(1, 1), vv(3, 1, 1, 1<<40, 2, 127, 4, 128)} {
		b := v.AppendBinary(nil)
		got, err := protocol.DecodeVersionVector(b)
		if err != nil {
			t.Fatalf("%v: %v", v, err)
		}
		if len(got) != len(v) || got.Compare(v) != protocol.Equal {
			t.Errorf("round trip of %v gave %v", v, got)
		}
		// The encoding is canonical: insertion order does not matter.
		if !bytes.Equal(got.AppendBinary(nil), b) {
			t.Errorf("re-encoding of %v differs", v)
		}
	}
	if vv(1, 1, 2, 2).Digest() != vv(2, 2, 1, 1).Digest() {
		t.Errorf("Digest depends on insertion order")
	}
	if vv(1, 1).Digest() == vv(1, 2).Digest() || vv().Digest() == vv(1, 1).Digest() {
		t.Errorf("different vectors have the same digest")
	}

	entry := func(b byte, seq byte) []byte { u := w(b); return append(u[:], seq) }
	for name, b := range map[string][]byte{
		"unsorted":          slices.Concat([]byte{2}, entry(2, 1), entry(1, 1)),
		"duplicate":         slices.Concat([]byte{2}, entry(1, 1), entry(1, 2)),
		"zero":              slices.Concat([]byte{1}, entry(1, 0)),
		"trailing":          slices.Concat([]byte{1}, entry(1, 1), []byte{0}),
		"truncated":         slices.Concat([]byte{2}, entry(1, 1)),
		"huge":              {0xff, 0xff, 0xff, 0xff, 0x0f},
		"non-minimal count": slices.Concat([]byte{0x81, 0x00}, entry(1, 1)),
		"empty":             {},
	} {
		if _, err := protocol.DecodeVersionVector(b); !errors.Is(err, protocol.ErrMalformed) {
			t.Errorf("%s: DecodeVersionVector = %v, want ErrMalformed", name, err)
		}
	}
}

// A thread's version vector follows its writers' sequence numbers, and two
// replicas that hold the same events have the same digest.
func TestThreadVersionVector(t *testing.T) {
	f := stdFixture(t)
	g := &fixture{tb: t, events: map[protocol.EventID]*protocol.Event{}, metas: map[protocol.EventID]protocol.EventMeta{}, rings: f.rings}
	ts, meta, err := protocol.NewThreadState(f.create)
	if err != nil {
		t.Fatal(err)
	}
	g.ts = ts
	g.metas[meta.ID] = meta

	var evs []*protocol.Event
	for _, u := range []string{"bob", "carol", "bob", "alice"} {
		ev := f.post(u, "x")
		f.accept(ev)
		evs = append(evs, ev)
	}
	wantVV := protocol.VersionVector{uid(t, "alice"): 2, uid(t, "bob"): 2, uid(t, "carol"): 1}
	if !reflect.DeepEqual(f.ts.VersionVector(), wantVV) {
		t.Errorf("VersionVector = %v, want %v", f.ts.VersionVector(), wantVV)
	}
	if rel := g.ts.VersionVector().Compare(f.ts.VersionVector()); rel != protocol.Before {
		t.Errorf("a replica with only the creation is %v the full one", rel)
	}
	missing := g.ts.VersionVector().Missing(f.ts.VersionVector())
	want := []protocol.SeqRange{{Writer: uid(t, "alice"), From: 2, To: 2}, {Writer: uid(t, "bob"), From: 1, To: 2}, {Writer: uid(t, "carol"), From: 1, To: 1}}
	if !sameRanges(missing, want) {
		t.Errorf("Missing = %v, want %v", missing, want)
	}
	for _, ev := range evs {
		g.accept(ev)
	}
	if g.ts.VersionVector().Digest() != f.ts.VersionVector().Digest() {
		t.Errorf("replicas with the same events have different digests")
	}
}

// sameRanges compares range lists as sets (Missing sorts by writer bytes).
func sameRanges(a, b []protocol.SeqRange) bool {
	key := func(r protocol.SeqRange) string { return string(r.Writer[:]) }
	a, b = slices.Clone(a), slices.Clone(b)
	slices.SortFunc(a, func(x, y protocol.SeqRange) int { return bytes.Compare([]byte(key(x)), []byte(key(y))) })
	slices.SortFunc(b, func(x, y protocol.SeqRange) int { return bytes.Compare([]byte(key(x)), []byte(key(y))) })
	return reflect.DeepEqual(a, b)
}
