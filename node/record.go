package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/weftnet/weft/crypto"
)

// User records: what the weft DHT stores under /weft-user/<user ID>. A
// record maps a user ID to the peer IDs and addresses of the nodes where
// that user currently runs, and is signed by the user's key, so only the
// holder of that key can write one that DHT nodes accept.
//
// Wire form: a JSON body followed by the 64-byte Ed25519 signature of the
// body in the domain userRecordDomain. JSON keeps the body readable in
// debugging; the signature covers the exact bytes, so no canonical form is
// needed.

const (
	// UserRecordNamespace is the DHT namespace of user records.
	UserRecordNamespace = "weft-user"
	userRecordDomain    = "dht-user-record"
	userRecordVersion   = 1

	// maxUserRecord bounds a record's size; maxRecordNodes and
	// maxRecordAddrs bound what it lists.
	maxUserRecord  = 8 << 10
	maxRecordNodes = 8
	maxRecordAddrs = 12

	// userRecordTTL is how long a record is valid after it is signed;
	// nodes republish theirs well before (see recordRepublish).
	userRecordTTL = 2 * time.Hour
	// recordClockSkew tolerates signers whose clock runs ahead.
	recordClockSkew = 10 * time.Minute
)

// ErrBadRecord is wrapped by every reason a user record is refused.
var ErrBadRecord = errors.New("bad user record")

// UserRecord is the body of a user record.
type UserRecord struct {
	Version int           `json:"v"`
	User    crypto.UserID `json:"user"`
	// Seq orders records of one user: the higher wins. Signers use the
	// signing time in Unix nanoseconds (or one more than the last seen).
	Seq     int64        `json:"seq"`
	Expires int64        `json:"expires"` // Unix seconds
	Nodes   []RecordNode `json:"nodes"`
}

// RecordNode is one node of a user.
type RecordNode struct {
	Peer  string   `json:"peer"`
	Addrs []string `json:"addrs"`
	Seen  int64    `json:"seen"` // Unix seconds this node last republished
}

// userRecordKey is the DHT key of u's record: the namespace, then the raw
// 32-byte user ID (as IPNS keys hold raw peer IDs).
func userRecordKey(u crypto.UserID) string {
	return "/" + UserRecordNamespace + "/" + string(u[:])
}

// signUserRecord encodes and signs r with id, which must be r.User.
func signUserRecord(id *crypto.Identity, r *UserRecord) ([]byte, error) {
	if id.UserID() != r.User {
		return nil, fmt.Errorf("%w: signing %v's record with %v's key", ErrBadRecord, r.User, id.UserID())
	}
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding user record: %w", err)
	}
	out := append(body, id.Sign(userRecordDomain, body)...)
	if len(out) > maxUserRecord {
		return nil, fmt.Errorf("%w: %d bytes, over %d", ErrBadRecord, len(out), maxUserRecord)
	}
	return out, nil
}

// parseUserRecord checks a record found under key (its user, signature,
// expiry and shape) at time now and returns its body.
func parseUserRecord(key string, value []byte, now time.Time) (*UserRecord, error) {
	ns, rest, ok := strings.Cut(strings.TrimPrefix(key, "/"), "/")
	if !ok || ns != UserRecordNamespace {
		return nil, fmt.Errorf("%w: key not in /%s/", ErrBadRecord, UserRecordNamespace)
	}
	u, err := crypto.UserIDFromBytes([]byte(rest))
	if err != nil {
		return nil, fmt.Errorf("%w: key: %w", ErrBadRecord, err)
	}
	if len(value) > maxUserRecord {
		return nil, fmt.Errorf("%w: %d bytes, over %d", ErrBadRecord, len(value), maxUserRecord)
	}
	if len(value) <= crypto.SignatureSize {
		return nil, fmt.Errorf("%w: too short", ErrBadRecord)
	}
	body, sig := value[:len(value)-crypto.SignatureSize], value[len(value)-crypto.SignatureSize:]
	if err := crypto.Verify(u, userRecordDomain, body, sig); err != nil {
		return nil, fmt.Errorf("%w: not signed by %v: %w", ErrBadRecord, u, err)
	}
	var r UserRecord
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: body: %w", ErrBadRecord, err)
	}
	switch {
	case r.Version != userRecordVersion:
		return nil, fmt.Errorf("%w: version %d", ErrBadRecord, r.Version)
	case r.User != u:
		return nil, fmt.Errorf("%w: record of %v stored under %v", ErrBadRecord, r.User, u)
	case r.Expires < now.Unix():
		return nil, fmt.Errorf("%w: expired %v", ErrBadRecord, time.Unix(r.Expires, 0).UTC())
	case r.Expires > now.Add(userRecordTTL+recordClockSkew).Unix():
		return nil, fmt.Errorf("%w: expiry too far ahead", ErrBadRecord)
	case len(r.Nodes) == 0 || len(r.Nodes) > maxRecordNodes:
		return nil, fmt.Errorf("%w: %d nodes (want 1 to %d)", ErrBadRecord, len(r.Nodes), maxRecordNodes)
	}
	for _, nd := range r.Nodes {
		if _, err := peer.Decode(nd.Peer); err != nil {
			return nil, fmt.Errorf("%w: peer %q: %w", ErrBadRecord, nd.Peer, err)
		}
		if len(nd.Addrs) > maxRecordAddrs {
			return nil, fmt.Errorf("%w: %d addresses for a node (max %d)", ErrBadRecord, len(nd.Addrs), maxRecordAddrs)
		}
		for _, a := range nd.Addrs {
			if _, err := ma.NewMultiaddr(a); err != nil {
				return nil, fmt.Errorf("%w: address %q: %w", ErrBadRecord, a, err)
			}
		}
	}
	return &r, nil
}

// AddrInfos returns the record's nodes as dialable peer infos.
func (r *UserRecord) AddrInfos() []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, nd := range r.Nodes {
		id, err := peer.Decode(nd.Peer)
		if err != nil {
			continue
		}
		ai := peer.AddrInfo{ID: id}
		for _, a := range nd.Addrs {
			if m, err := ma.NewMultiaddr(a); err == nil {
				ai.Addrs = append(ai.Addrs, m)
			}
		}
		out = append(out, ai)
	}
	return out
}

// recordValidator is the DHT's record.Validator for /weft-user/: it
// refuses any record not signed by the user it is stored under, and
// prefers the highest Seq.
type recordValidator struct {
	now func() time.Time
}

func (v recordValidator) clock() time.Time {
	if v.now != nil {
		return v.now()
	}
	return time.Now()
}

// Validate implements record.Validator.
func (v recordValidator) Validate(key string, value []byte) error {
	_, err := parseUserRecord(key, value, v.clock())
	return err
}

// Select implements record.Validator: the valid record with the highest
// Seq, ties broken by the bytes so every node picks the same.
func (v recordValidator) Select(key string, values [][]byte) (int, error) {
	best, bestSeq := -1, int64(0)
	now := v.clock()
	for i, val := range values {
		r, err := parseUserRecord(key, val, now)
		if err != nil {
			continue
		}
		if best < 0 || r.Seq > bestSeq || (r.Seq == bestSeq && bytes.Compare(val, values[best]) > 0) {
			best, bestSeq = i, r.Seq
		}
	}
	if best < 0 {
		return 0, fmt.Errorf("%w: no valid record among %d", ErrBadRecord, len(values))
	}
	return best, nil
}

// mergeRecord returns the record a node publishes for u: its own entry
// (peer, addrs) first, then the other nodes of old (a record another node
// of the same user published) that republished within the TTL.
func mergeRecord(old *UserRecord, u crypto.UserID, self RecordNode, now time.Time) *UserRecord {
	r := &UserRecord{Version: userRecordVersion, User: u, Seq: now.UnixNano(), Expires: now.Add(userRecordTTL).Unix()}
	r.Nodes = append(r.Nodes, self)
	if old != nil {
		if old.Seq >= r.Seq {
			r.Seq = old.Seq + 1
		}
		for _, nd := range old.Nodes {
			if nd.Peer == self.Peer || nd.Seen < now.Add(-userRecordTTL).Unix() || len(r.Nodes) >= maxRecordNodes {
				continue
			}
			r.Nodes = append(r.Nodes, nd)
		}
	}
	return r
}
