package protocol_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/protocol"
)

// vectorSeeds returns the encoded events of testdata/event-vectors.txt, and
// the thread state and metadata of replaying them, for fuzz seed corpora.
func vectorSeeds(f *testing.F) ([][]byte, *protocol.ThreadState, map[protocol.EventID]protocol.EventMeta) {
	f.Helper()
	var encs [][]byte
	var ts *protocol.ThreadState
	metas := map[protocol.EventID]protocol.EventMeta{}
	for _, v := range readVectors(f) {
		b, err := hex.DecodeString(v.Event)
		if err != nil {
			f.Fatal(err)
		}
		encs = append(encs, b)
		ev, err := protocol.Decode(b)
		if err != nil {
			f.Fatalf("%s: %v", v.Name, err)
		}
		if _, ok := metas[ev.ID()]; ok {
			continue // the pruned copy
		}
		var meta protocol.EventMeta
		ts, meta, err = replay(ts, metas, ev)
		if err != nil {
			f.Fatalf("%s: %v", v.Name, err)
		}
		metas[meta.ID] = meta
	}
	return encs, ts, metas
}

func FuzzDecodeEvent(f *testing.F) {
	encs, _, _ := vectorSeeds(f)
	for _, b := range encs {
		f.Add(b)
		f.Add(b[:len(b)/2])
		f.Add(append(bytes.Clone(b), 0))
	}
	dev := device(f, "bob", "fuzz")
	ts, _, _ := protocol.NewThreadState(mustThread(f))
	if p, err := protocol.NewPost(ts, dev, protocol.KeyRing{ts.Current.KeyRef: crypto.ThreadKey{}}, nil, nil, []byte("x"), testTime0); err == nil {
		f.Add(p.Encode(nil))
	}
	runPolicy := protocol.DefaultPolicy()
	runPolicy.MaxRun = 7
	if ev, _, err := protocol.NewThread(ident(f, "alice"), uids(f, "bob"), nil, runPolicy, nil, nil, testTime0); err == nil {
		f.Add(ev.Encode(nil))
	}
	f.Add([]byte{})
	f.Add([]byte{protocol.WireVersion})
	f.Add([]byte{protocol.WireVersion, byte(protocol.KindThreadUpdate), 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := protocol.Decode(b)
		if err != nil {
			if ev != nil {
				t.Fatalf("Decode returned an event and %v", err)
			}
			return
		}
		enc := ev.Encode(nil)
		if !bytes.Equal(enc, b) {
			t.Fatalf("Encode(Decode(b)) != b\n b: %x\nre: %x", b, enc)
		}
		if ev.EncodedSize() != len(b) {
			t.Fatalf("EncodedSize %d, input %d bytes", ev.EncodedSize(), len(b))
		}
		if got := independentID(b, ev); ev.ID() != got {
			t.Fatalf("ID %s, SHA-256 of the signed bytes is %s", ev.ID(), got)
		}
		// Whatever was decoded, the rest of the pipeline must not panic.
		_ = protocol.CheckEvent(ev, protocol.DefaultLimits())
		_ = ev.VerifySignature()
		_ = ev.SealAAD(protocol.FieldData)
		_, _, _ = protocol.NewThreadState(ev)
		p := ev.Pruned()
		pb := p.Encode(nil)
		pd, err := protocol.Decode(pb)
		if err != nil {
			t.Fatalf("pruned copy does not decode: %v", err)
		}
		if pd.ID() != ev.ID() || !bytes.Equal(pd.Encode(nil), pb) {
			t.Fatalf("pruned copy does not round-trip with the same ID")
		}
	})
}

func FuzzDecodeVersionVector(f *testing.F) {
	_, ts, metas := vectorSeeds(f)
	f.Add(ts.VersionVector().AppendBinary(nil))
	for _, m := range metas {
		f.Add(protocol.VersionVector{m.Writer: m.Seq}.AppendBinary(nil))
	}
	f.Add(protocol.VersionVector{}.AppendBinary(nil))
	f.Add(vv(1, 1, 2, 300, 3, 1<<40).AppendBinary(nil))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := protocol.DecodeVersionVector(b)
		if err != nil {
			if !errors.Is(err, protocol.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if enc := v.AppendBinary(nil); !bytes.Equal(enc, b) {
			t.Fatalf("AppendBinary(Decode(b)) != b\n b: %x\nre: %x", b, enc)
		}
		for w, s := range v {
			if s == 0 {
				t.Fatalf("entry %v of 0 accepted", w)
			}
		}
		if v.Compare(v.Clone()) != protocol.Equal || len(v.Missing(v)) != 0 {
			t.Fatalf("a vector is not equal to its copy")
		}
	})
}

func FuzzDecodeEventMeta(f *testing.F) {
	_, _, metas := vectorSeeds(f)
	for _, m := range metas {
		f.Add(m.AppendBinary(nil))
	}
	f.Add([]byte{1})
	for _, m := range metas {
		m.Author = uid(f, "carol")
		f.Add(m.AppendBinary(nil))
		f.Add(protocol.LegacyMetaBytes(&m, protocol.VersionVector{m.Writer: 1}))
		break
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := protocol.DecodeEventMeta(b)
		if err != nil {
			return
		}
		if enc := m.AppendBinary(nil); !bytes.Equal(enc, b) {
			t.Fatalf("AppendBinary(Decode(b)) != b\n b: %x\nre: %x", b, enc)
		}
	})
}

func FuzzDecodeMessageState(f *testing.F) {
	_, ts, metas := vectorSeeds(f)
	for _, ms := range foldMessages(ts, metas) {
		f.Add(ms.AppendBinary(nil))
	}
	// A state with updates, built by hand.
	var ms protocol.MessageState
	ms.ID[0], ms.Content[0] = 1, 2
	ms.Deleted = true
	ms.Created = -5
	ms.Updates = []protocol.UpdateInfo{{Time: 7, Order: protocol.Order{Lamport: 3}}}
	f.Add(ms.AppendBinary(nil))
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := protocol.DecodeMessageState(b)
		if err != nil {
			return
		}
		if enc := m.AppendBinary(nil); !bytes.Equal(enc, b) {
			t.Fatalf("AppendBinary(Decode(b)) != b\n b: %x\nre: %x", b, enc)
		}
	})
}

func FuzzParseEventID(f *testing.F) {
	for _, v := range readVectors(f) {
		f.Add(v.ID)
		f.Add(strings.ToUpper(v.ID))
		f.Add(v.ID[:63])
	}
	f.Add("")
	f.Add(strings.Repeat("0", 64))
	f.Fuzz(func(t *testing.T, s string) {
		id, err := protocol.ParseEventID(s)
		tid, terr := protocol.ParseThreadID(s)
		if (err == nil) != (terr == nil) || (err == nil && [32]byte(id) != [32]byte(tid)) {
			t.Fatalf("ParseEventID and ParseThreadID disagree: %v, %v", err, terr)
		}
		canonical := len(s) == 64 && strings.Trim(s, "0123456789abcdef") == ""
		if canonical != (err == nil) {
			t.Fatalf("ParseEventID(%q) = %v; canonical = %v", s, err, canonical)
		}
		if err != nil {
			if !errors.Is(err, protocol.ErrMalformedID) {
				t.Fatalf("error %v does not wrap ErrMalformedID", err)
			}
			return
		}
		if id.String() != s {
			t.Fatalf("String() = %q, parsed %q", id.String(), s)
		}
	})
}

// mustThread is a ThreadCreate by alice with bob as a member.
func mustThread(tb testing.TB) *protocol.Event {
	ev, _, err := protocol.NewThread(ident(tb, "alice"), uids(tb, "bob"), nil, protocol.DefaultPolicy(), nil, nil, testTime0)
	if err != nil {
		tb.Fatal(err)
	}
	return ev
}
