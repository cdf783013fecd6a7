package api

import (
	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/protocol"
)

// Request and response bodies. Binary fields (publicMeta, privateMeta,
// data) are base64 in JSON, as encoding/json writes []byte.

// IDResponse is GET /v1/id.
type IDResponse struct {
	UserID  crypto.UserID `json:"userId"`
	PeerID  string        `json:"peerId"`
	Addrs   []string      `json:"addrs"`
	Version string        `json:"version"`
}

// Peer is one entry of GET /v1/peers.
type Peer struct {
	PeerID string  `json:"peerId"`
	Score  float64 `json:"score"`
	// Relayed is true when the peer is reached only through a relay (a
	// limited circuit relay v2 connection); false: a direct connection.
	Relayed bool   `json:"relayed"`
	Addr    string `json:"addr"` // remote address of the connection in use
	// Direction is "inbound" (the peer dialled) or "outbound".
	Direction string `json:"direction"`
}

// ConnectRequest is POST /v1/connect.
type ConnectRequest struct {
	Addr string `json:"addr"`
}

// CreateThreadRequest is POST /v1/threads.
type CreateThreadRequest struct {
	Users       []crypto.UserID `json:"users"`
	Managers    []crypto.UserID `json:"managers"`
	PublicMeta  []byte          `json:"publicMeta"`
	PrivateMeta []byte          `json:"privateMeta"`
	Policy      *PolicyPatch    `json:"policy,omitempty"`
}

// PolicyPatch sets some of a thread's policy rules; the others keep their
// value (the default for a new thread, the current one for an update).
type PolicyPatch struct {
	Post          *protocol.Role `json:"post,omitempty"`
	EditMessage   *protocol.Role `json:"editMessage,omitempty"`
	DeleteMessage *protocol.Role `json:"deleteMessage,omitempty"`
	ShareHistory  *bool          `json:"shareHistory,omitempty"`
}

// Apply returns base with the rules p sets.
func (p *PolicyPatch) Apply(base protocol.Policy) protocol.Policy {
	if p.Post != nil {
		base.Post = *p.Post
	}
	if p.EditMessage != nil {
		base.EditMessage = *p.EditMessage
	}
	if p.DeleteMessage != nil {
		base.DeleteMessage = *p.DeleteMessage
	}
	if p.ShareHistory != nil {
		base.ShareHistory = *p.ShareHistory
	}
	return base
}

// PatchOf is the patch that sets every rule of p.
func PatchOf(p protocol.Policy) *PolicyPatch {
	return &PolicyPatch{Post: &p.Post, EditMessage: &p.EditMessage, DeleteMessage: &p.DeleteMessage, ShareHistory: &p.ShareHistory}
}

// CreateThreadResponse answers POST /v1/threads.
type CreateThreadResponse struct {
	ThreadID protocol.ThreadID `json:"threadId"`
}

// UpdateThreadRequest is PATCH /v1/threads/{id}. Absent fields are
// unchanged. PublicMeta and PrivateMeta are like the fields of an
// [UpdateMessageRequest]: nil ([Keep], or null or absent in JSON) keeps
// the field, [Set](b) replaces it, and Set(nil) ("" in JSON) clears it.
type UpdateThreadRequest struct {
	AddUsers       []crypto.UserID `json:"addUsers,omitempty"`
	RemoveUsers    []crypto.UserID `json:"removeUsers,omitempty"`
	AddManagers    []crypto.UserID `json:"addManagers,omitempty"`
	RemoveManagers []crypto.UserID `json:"removeManagers,omitempty"`
	PublicMeta     *[]byte         `json:"publicMeta,omitempty"`
	PrivateMeta    *[]byte         `json:"privateMeta,omitempty"`
	Policy         *PolicyPatch    `json:"policy,omitempty"`
	RotateKey      bool            `json:"rotateKey,omitempty"`
	Version        uint64          `json:"version,omitempty"`
	Force          bool            `json:"force,omitempty"`
}

// SendRequest is POST /v1/threads/{id}/messages and PATCH /v1/messages/{id}.
type SendRequest struct {
	PublicMeta  []byte `json:"publicMeta"`
	PrivateMeta []byte `json:"privateMeta"`
	Data        []byte `json:"data"`
}

// UpdateMessageRequest is the body of PATCH /v1/messages/{id}. A field left
// out (or null) keeps its current value; "" sets it empty. Use [Keep] and
// [Set] to fill it.
type UpdateMessageRequest struct {
	PublicMeta  *[]byte `json:"publicMeta,omitempty"`
	PrivateMeta *[]byte `json:"privateMeta,omitempty"`
	Data        *[]byte `json:"data,omitempty"`
}

// bytesOf is the value of an update field for the node: nil to keep, an
// empty (non-nil) slice to clear.
func bytesOf(f *[]byte) []byte {
	if f == nil {
		return nil
	}
	if *f == nil {
		return []byte{}
	}
	return *f
}

// setField is f as it must travel in JSON: a pointer to a nil slice would
// be null (keep), while it means empty.
func setField(f *[]byte) *[]byte {
	if f != nil && *f == nil {
		return Set(nil)
	}
	return f
}

// Set returns a field value for an [UpdateMessageRequest] or an
// [UpdateThreadRequest] that replaces the field with b (empty if b is
// nil).
func Set(b []byte) *[]byte {
	if b == nil {
		b = []byte{}
	}
	return &b
}

// Keep is the field value of an [UpdateMessageRequest] or an
// [UpdateThreadRequest] that keeps the field as it is.
var Keep *[]byte

// SendResponse answers POST /v1/threads/{id}/messages.
type SendResponse struct {
	MessageID protocol.EventID `json:"messageId"`
}

// Status answers GET /v1/status: the node's health at a glance.
type Status struct {
	Peers          int               `json:"peers"`
	Threads        int               `json:"threads"`
	Identities     int               `json:"identities"`
	EventsStored   uint64            `json:"eventsStored"`   // since the daemon started
	EventsRejected map[string]uint64 `json:"eventsRejected"` // by the rule broken, since start
	HeldEvents     int               `json:"heldEvents"`     // waiting for missing parents
	LastSync       int64             `json:"lastSync"`       // Unix ms of the last completed sync; 0: none yet
	Gossip         GossipStatus      `json:"gossip"`
	Network        NetworkStatus     `json:"network"`
}

// NetworkStatus is the node's place on the network (see docs/design.md §9).
type NetworkStatus struct {
	// Reachability is public, private or unknown (AutoNAT, or forced).
	Reachability string   `json:"reachability"`
	ListenAddrs  []string `json:"listenAddrs"`
	// Addrs are the addresses the node advertises (including relayed ones).
	Addrs []string `json:"addrs"`
	// ObservedAddrs are this node's addresses as its peers see them.
	ObservedAddrs []ObservedAddr `json:"observedAddrs"`
	// ReachableAddrs and UnreachableAddrs are AutoNAT v2's verdicts.
	ReachableAddrs   []string `json:"reachableAddrs"`
	UnreachableAddrs []string `json:"unreachableAddrs"`
	// Relays are the relays (peer IDs) this node holds a reservation on.
	Relays       []string `json:"relays"`
	RelayService bool     `json:"relayService"` // relaying for others now
	DHT          string   `json:"dht"`          // off, client or server
	DHTPeers     int      `json:"dhtPeers"`     // routing table size
	// RecordsPublished counts user records put into the DHT since start;
	// Lookups and LookupsFound count user lookups and those that found a
	// record.
	RecordsPublished      uint64 `json:"recordsPublished"`
	RecordPublishFailures uint64 `json:"recordPublishFailures"`
	Lookups               uint64 `json:"lookups"`
	LookupsFound          uint64 `json:"lookupsFound"`
	DirectPeers           int    `json:"directPeers"`
	RelayedPeers          int    `json:"relayedPeers"`
}

// ObservedAddr is an address peers see the node at, and how many saw it.
type ObservedAddr struct {
	Addr      string `json:"addr"`
	Observers int    `json:"observers"`
}

// GossipStatus counts what gossip dropped, rejected or ignored since start.
type GossipStatus struct {
	DroppedRPCs   int64 `json:"droppedRpcs"`
	Undeliverable int64 `json:"undeliverable"`
	Rejected      int64 `json:"rejected"`
	Ignored       int64 `json:"ignored"`
	Throttled     int64 `json:"throttled"`
}

// DevicesResponse lists devices (GET /v1/threads/{id}/devices).
type DevicesResponse struct {
	Devices []node.DeviceInfo `json:"devices"`
}
