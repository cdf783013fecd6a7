package node

import (
	"errors"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/protocol"
)

// Errors of the node API. Rule violations are also reported with the
// protocol package's named errors (protocol.ErrNotMember, ...), wrapped, so
// errors.Is works with both.
var (
	ErrClosed          = errors.New("node is closed")
	ErrNotFound        = errors.New("not found")
	ErrUnknownIdentity = errors.New("no such local identity")
	ErrVersionMismatch = errors.New("thread was changed by someone else (version mismatch)")
	ErrNoKey           = errors.New("no key for this thread")
	ErrBadInput        = errors.New("bad input")
)

// Status codes of a returned message or thread: 0 means verified and
// decrypted; anything else says why the content could not be shown.
const (
	StatusOK           = 0
	StatusNoKey        = 1 // the reader holds no key for the epoch it was sealed with
	StatusDecryptError = 2 // the ciphertext did not open: tampered or corrupt
	StatusDeleted      = 3 // the content was deleted
	StatusUnverified   = 4 // the stored content does not match its signature
)

// Thread is a thread as a member sees it.
type Thread struct {
	ThreadID             protocol.ThreadID `json:"threadId"`
	CreateDate           int64             `json:"createDate"`
	Creator              crypto.UserID     `json:"creator"`
	LastModificationDate int64             `json:"lastModificationDate"`
	LastModifier         crypto.UserID     `json:"lastModifier"`
	Users                []crypto.UserID   `json:"users"`
	Managers             []crypto.UserID   `json:"managers"`
	Version              uint64            `json:"version"`
	Epoch                uint32            `json:"keyEpoch"`
	LastMsgDate          int64             `json:"lastMsgDate"`
	MessagesCount        uint64            `json:"messagesCount"`
	PublicMeta           []byte            `json:"publicMeta"`
	PrivateMeta          []byte            `json:"privateMeta"`
	Policy               protocol.Policy   `json:"policy"`
	StatusCode           int               `json:"statusCode"`
	Status               string            `json:"status,omitempty"`
	// Equivocations lists the writers this replica has caught signing two
	// different events with the same sequence number in this thread. Every
	// replica that holds both versions shows the same list; the writer's
	// events from that sequence number on are void (see docs/design.md).
	Equivocations []Equivocation `json:"equivocations,omitempty"`
}

// Equivocation names a writer that signed two events with one sequence
// number, and the lowest such number.
type Equivocation struct {
	Writer crypto.UserID `json:"writer"`
	Seq    uint64        `json:"seq"`
}

// Message is a message as a reader sees it.
type Message struct {
	ThreadID   protocol.ThreadID `json:"threadId"`
	MessageID  protocol.EventID  `json:"messageId"`
	CreateDate int64             `json:"createDate"`
	Author     crypto.UserID     `json:"author"`
	// Device is the device of the author that wrote the message (nil if
	// the author wrote it with its own user key, as before devices).
	Device      *crypto.DeviceID `json:"device,omitempty"`
	PublicMeta  []byte           `json:"publicMeta"`
	PrivateMeta []byte           `json:"privateMeta"`
	Data        []byte           `json:"data"`
	Updates     []MessageUpdate  `json:"updates"`
	StatusCode  int              `json:"statusCode"`
	Status      string           `json:"status,omitempty"`
}

// MessageUpdate records one edit of a message.
type MessageUpdate struct {
	Date   int64         `json:"createDate"`
	Author crypto.UserID `json:"author"`
}

// Page selects part of a list: skip items, return at most limit (0 means
// all), oldest first unless Desc; LastID starts after that item.
type Page struct {
	Skip   int
	Limit  int
	Desc   bool
	LastID protocol.EventID
}

// List is one page of a list and the number of items in all.
type List[T any] struct {
	TotalAvailable int `json:"totalAvailable"`
	Items          []T `json:"items"`
}

// ThreadUpdate describes a change to a thread. Nil fields are unchanged.
type ThreadUpdate struct {
	AddUsers, RemoveUsers       []crypto.UserID
	AddManagers, RemoveManagers []crypto.UserID
	PublicMeta, PrivateMeta     []byte
	Policy                      *protocol.Policy
	RotateKey                   bool
	// Version is the thread version the change was made against; if the
	// thread has moved on the update fails with ErrVersionMismatch, unless
	// Force is set. Zero skips the check.
	Version uint64
	Force   bool
}

// IdentityInfo describes a local identity.
type IdentityInfo struct {
	Name    string        `json:"name"`
	UserID  crypto.UserID `json:"userId"`
	Created int64         `json:"created"`
}
