package node

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftnet/weft/crypto"
)

func testIdentity(t *testing.T) *crypto.Identity {
	t.Helper()
	id, err := crypto.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

const testPeer = "12D3KooWGzBaNqSbJdRFKMHbTb6sdNt1e3cTXmQGjQx6KdQJbdNG"

// TestUserRecordValidator: the validator accepts a record signed by the
// user it is stored under and refuses every forgery a DHT peer could
// try; Select prefers the newest valid record.
func TestUserRecordValidator(t *testing.T) {
	if _, err := peer.Decode(testPeer); err != nil {
		t.Fatal(err)
	}
	alice, mallory := testIdentity(t), testIdentity(t)
	now := time.Now()
	v := recordValidator{now: func() time.Time { return now }}
	key := userRecordKey(alice.UserID())
	node := RecordNode{Peer: testPeer, Addrs: []string{"/ip4/11.0.0.1/tcp/4001"}, Seen: now.Unix()}
	good := mergeRecord(nil, alice.UserID(), node, now)
	goodB, err := signUserRecord(alice, good)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Validate(key, goodB); err != nil {
		t.Fatalf("a record signed by its user is refused: %v", err)
	}
	t.Logf("record size with one node and one address: %d bytes", len(goodB))

	// Alice's user ID, Mallory's key: the forgery the DHT must refuse.
	forged := *good
	forged.Nodes = []RecordNode{{Peer: testPeer, Addrs: []string{"/ip4/6.6.6.6/tcp/1"}, Seen: now.Unix()}}
	body, _ := jsonBody(&forged)
	forgedB := append(body, mallory.Sign(userRecordDomain, body)...)
	// Mallory's own valid record, stored under Alice's key.
	mrec := mergeRecord(nil, mallory.UserID(), node, now)
	malloryB, err := signUserRecord(mallory, mrec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signUserRecord(mallory, good); !errors.Is(err, ErrBadRecord) {
		t.Errorf("signing Alice's record with Mallory's key: %v, want ErrBadRecord", err)
	}
	tampered := append([]byte{}, goodB...)
	tampered[strings.Index(string(tampered), "11.0.0.1")] = '9'
	expired := mergeRecord(nil, alice.UserID(), node, now.Add(-3*time.Hour))
	expiredB, _ := signUserRecord(alice, expired)
	farFuture := mergeRecord(nil, alice.UserID(), node, now.Add(24*time.Hour))
	farB, _ := signUserRecord(alice, farFuture)
	otherDomain := append(append([]byte{}, goodB[:len(goodB)-crypto.SignatureSize]...), alice.Sign("event", goodB[:len(goodB)-crypto.SignatureSize])...)
	for name, c := range map[string]struct {
		key string
		val []byte
	}{
		"wrong key (forged)":      {key, forgedB},
		"another user's record":   {key, malloryB},
		"tampered address":        {key, tampered},
		"expired":                 {key, expiredB},
		"expiry too far ahead":    {key, farB},
		"signature, other domain": {key, otherDomain},
		"truncated":               {key, goodB[:40]},
		"empty":                   {key, nil},
		"other namespace":         {"/pk/" + key[len("/weft-user/"):], goodB},
		"key not a user ID":       {"/weft-user/short", goodB},
		"oversized":               {key, make([]byte, maxUserRecord+1)},
	} {
		if err := v.Validate(c.key, c.val); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: Validate = %v, want ErrBadRecord", name, err)
		}
	}

	// Select: the newest valid record wins; invalid ones never do.
	later := mergeRecord(good, alice.UserID(), RecordNode{Peer: testPeer, Addrs: []string{"/ip4/11.0.0.2/tcp/4001"}, Seen: now.Unix()}, now)
	if later.Seq <= good.Seq {
		t.Fatalf("merged record seq %d not above %d", later.Seq, good.Seq)
	}
	laterB, _ := signUserRecord(alice, later)
	if i, err := v.Select(key, [][]byte{goodB, forgedB, laterB, malloryB}); err != nil || i != 2 {
		t.Errorf("Select = %d, %v; want 2 (the newest valid)", i, err)
	}
	if i, err := v.Select(key, [][]byte{forgedB, goodB}); err != nil || i != 1 {
		t.Errorf("Select = %d, %v; want 1 (the only valid)", i, err)
	}
	if _, err := v.Select(key, [][]byte{forgedB, malloryB}); err == nil {
		t.Error("Select chose among forgeries only")
	}
}

// TestMergeRecord: a node publishing for a user keeps the user's other
// live nodes, replaces its own entry, and drops nodes not seen for a TTL.
func TestMergeRecord(t *testing.T) {
	alice := testIdentity(t)
	now := time.Now()
	other := "12D3KooWRBhwfeP2Y4TCx1SM6s9rUoHhR5nE4dDKk6d7rvxYBgKH"
	stale := "12D3KooWHFrmLWTTDD4NodngtRMEVYgxrsDMp4F9jgZLnLA3WcRh"
	old := &UserRecord{Version: userRecordVersion, User: alice.UserID(), Seq: now.Add(time.Hour).UnixNano(), Nodes: []RecordNode{
		{Peer: testPeer, Addrs: []string{"/ip4/11.0.0.9/tcp/1"}, Seen: now.Add(-time.Minute).Unix()},
		{Peer: other, Addrs: []string{"/ip4/11.0.0.8/tcp/1"}, Seen: now.Add(-time.Minute).Unix()},
		{Peer: stale, Addrs: []string{"/ip4/11.0.0.7/tcp/1"}, Seen: now.Add(-3 * time.Hour).Unix()},
	}}
	self := RecordNode{Peer: testPeer, Addrs: []string{"/ip4/11.0.0.1/tcp/1"}, Seen: now.Unix()}
	r := mergeRecord(old, alice.UserID(), self, now)
	if r.Seq != old.Seq+1 {
		t.Errorf("seq %d, want one above the old record's %d (its signer's clock ran ahead)", r.Seq, old.Seq)
	}
	if len(r.Nodes) != 2 || r.Nodes[0].Addrs[0] != "/ip4/11.0.0.1/tcp/1" || r.Nodes[1].Peer != other {
		t.Errorf("merged nodes %+v: want self (new address) then the other live node", r.Nodes)
	}
}

func jsonBody(r *UserRecord) ([]byte, error) { return json.Marshal(r) }
