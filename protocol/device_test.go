package protocol_test

import (
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/protocol"
)

// device returns a device of the test user owner, called name, certified
// by owner's key.
func device(tb testing.TB, owner, name string) *protocol.Device {
	tb.Helper()
	seed := sha256.Sum256([]byte("weft protocol test device " + owner + "/" + name))
	key, err := crypto.NewDeviceIdentityFromSeed(seed[:])
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := ident(tb, owner).CertifyDevice(key.DeviceID(), name, time.Unix(1_700_000_000, 0), 1)
	if err != nil {
		tb.Fatal(err)
	}
	return &protocol.Device{Key: key, Cert: cert}
}

// Two devices of one user each write with their own key and sequence
// numbers, as that user: writing at the same moment is two writers, never
// an equivocation; each device's first event carries its certificate and
// its later events inherit the user through their chain.
func TestDevicesWriteAsTheirUser(t *testing.T) {
	f := newFixture(t, "alice", []string{"bob"}, nil, protocol.DefaultPolicy())
	laptop, phone := device(t, "bob", "laptop"), device(t, "bob", "phone")
	p1, err := protocol.NewPost(f.ts, laptop, f.rings["bob"], nil, nil, []byte("from the laptop"), f.now())
	if err != nil {
		t.Fatal(err)
	}
	p2, err := protocol.NewPost(f.ts, phone, f.rings["bob"], nil, nil, []byte("from the phone"), f.now())
	if err != nil {
		t.Fatal(err)
	}
	if p1.Seq != 1 || p2.Seq != 1 || len(p1.Cert) == 0 || p1.Writer == p2.Writer {
		t.Fatalf("device posts: seq %d/%d, cert %d bytes", p1.Seq, p2.Seq, len(p1.Cert))
	}
	// Both encode as version 2 and round-trip to the same ID.
	for _, p := range []*protocol.Event{p1, p2} {
		enc := p.Encode(nil)
		if enc[0] != 2 {
			t.Fatalf("a device's first event encodes as version %d", enc[0])
		}
		d, err := protocol.Decode(enc)
		if err != nil || d.ID() != p.ID() {
			t.Fatalf("round trip: %v", err)
		}
	}
	m1, m2 := f.accept(p1), f.accept(p2)
	if m1.User() != uid(t, "bob") || m2.User() != uid(t, "bob") || m1.Writer == uid(t, "bob") {
		t.Fatalf("users %s %s, writer %s", m1.User(), m2.User(), m1.Writer)
	}
	if len(f.ts.Forks) != 0 {
		t.Fatalf("two devices writing at once counted as an equivocation: %v", f.ts.Forks)
	}
	// The laptop's next event has no certificate and is still bob's.
	p3, err := protocol.NewPost(f.ts, laptop, f.rings["bob"], nil, nil, []byte("again"), f.now())
	if err != nil {
		t.Fatal(err)
	}
	if p3.Seq != 2 || len(p3.Cert) != 0 || p3.Encode(nil)[0] != 1 {
		t.Fatalf("second event: seq %d, cert %d bytes", p3.Seq, len(p3.Cert))
	}
	m3 := f.accept(p3)
	if m3.User() != uid(t, "bob") {
		t.Fatalf("inherited user %s", m3.User())
	}
	// The phone may edit what the laptop wrote: the author is the user.
	edit, err := protocol.NewMessageUpdate(f.ts, phone, f.rings["bob"], m1, nil, nil, []byte("fixed"), f.now())
	if err != nil {
		t.Fatal(err)
	}
	f.accept(edit)
	// The visible author of a message is the user.
	ms := protocol.NewMessageState(&m1, &f.ts.Current)
	if ms.Author != uid(t, "bob") || ms.Void {
		t.Fatalf("message author %s void %v", ms.Author, ms.Void)
	}
}

func TestDeviceCertificateRules(t *testing.T) {
	f := newFixture(t, "alice", []string{"bob"}, nil, protocol.DefaultPolicy())
	post := func(d protocol.Signer) *protocol.Event {
		t.Helper()
		ev, err := protocol.NewPost(f.ts, d, f.rings["bob"], nil, nil, []byte("x"), f.now())
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	// A certificate whose signature does not verify, and one of a device
	// of a non-member.
	forged := device(t, "bob", "stolen")
	ev0 := post(forged)
	ev0.Cert[len(ev0.Cert)-1] ^= 1
	if err := ev0.Sign(forged); err != nil {
		t.Fatal(err)
	}
	if _, err := f.check(ev0); !errors.Is(err, protocol.ErrBadDevice) {
		t.Errorf("a certificate bob did not sign: %v", err)
	}
	if _, err := f.check(post(device(t, "carol", "laptop"))); !errors.Is(err, protocol.ErrNotMember) {
		t.Errorf("a device of a non-member: %v", err)
	}
	// A certificate for another device than the writer.
	a, b := device(t, "bob", "a"), device(t, "bob", "b")
	ev := post(a)
	ev.Cert = b.Cert.Bytes()
	if err := ev.Sign(a); err != nil {
		t.Fatal(err)
	}
	if _, err := f.check(ev); !errors.Is(err, protocol.ErrBadDevice) {
		t.Errorf("a certificate of another device: %v", err)
	}
	// A device key writing without its certificate writes as itself: not
	// a member.
	bare := post(a)
	bare.Cert = nil
	if err := bare.Sign(a); err != nil {
		t.Fatal(err)
	}
	if _, err := f.check(bare); !errors.Is(err, protocol.ErrNotMember) {
		t.Errorf("a device without its certificate: %v", err)
	}
	// A certificate only with a device's first event.
	f.accept(post(a))
	late := post(a)
	late.Cert = a.Cert.Bytes()
	if err := late.Sign(a); !errors.Is(err, protocol.ErrMalformed) {
		t.Errorf("a certificate with sequence number 2: %v", err)
	}
}

// A device can create a thread: the creator and first manager is its
// user.
func TestDeviceCreatesThread(t *testing.T) {
	laptop := device(t, "alice", "laptop")
	ev, _, err := protocol.NewThread(laptop, uids(t, "bob"), nil, protocol.DefaultPolicy(), nil, nil, testTime0)
	if err != nil {
		t.Fatal(err)
	}
	if err := protocol.CheckEvent(ev, protocol.DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	ts, meta, err := protocol.NewThreadState(ev)
	if err != nil {
		t.Fatal(err)
	}
	if ts.Current.Creator != uid(t, "alice") || !ts.Current.IsManager(uid(t, "alice")) || meta.User() != uid(t, "alice") {
		t.Fatalf("creator %s, managers %v", ts.Current.Creator, ts.Current.Managers)
	}
}
