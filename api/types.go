package api

import (
	"github.com/weftnet/weft/crypto"
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
}

// ConnectRequest is POST /v1/connect.
type ConnectRequest struct {
	Addr string `json:"addr"`
}

// CreateThreadRequest is POST /v1/threads.
type CreateThreadRequest struct {
	Users       []crypto.UserID  `json:"users"`
	Managers    []crypto.UserID  `json:"managers"`
	PublicMeta  []byte           `json:"publicMeta"`
	PrivateMeta []byte           `json:"privateMeta"`
	Policy      *protocol.Policy `json:"policy,omitempty"`
}

// CreateThreadResponse answers POST /v1/threads.
type CreateThreadResponse struct {
	ThreadID protocol.ThreadID `json:"threadId"`
}

// UpdateThreadRequest is PATCH /v1/threads/{id}. Absent fields are
// unchanged.
type UpdateThreadRequest struct {
	AddUsers       []crypto.UserID  `json:"addUsers,omitempty"`
	RemoveUsers    []crypto.UserID  `json:"removeUsers,omitempty"`
	AddManagers    []crypto.UserID  `json:"addManagers,omitempty"`
	RemoveManagers []crypto.UserID  `json:"removeManagers,omitempty"`
	PublicMeta     []byte           `json:"publicMeta,omitempty"`
	PrivateMeta    []byte           `json:"privateMeta,omitempty"`
	Policy         *protocol.Policy `json:"policy,omitempty"`
	RotateKey      bool             `json:"rotateKey,omitempty"`
	Version        uint64           `json:"version,omitempty"`
	Force          bool             `json:"force,omitempty"`
}

// SendRequest is POST /v1/threads/{id}/messages and PATCH /v1/messages/{id}.
type SendRequest struct {
	PublicMeta  []byte `json:"publicMeta"`
	PrivateMeta []byte `json:"privateMeta"`
	Data        []byte `json:"data"`
}

// SendResponse answers POST /v1/threads/{id}/messages.
type SendResponse struct {
	MessageID protocol.EventID `json:"messageId"`
}
