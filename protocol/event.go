package protocol

import (
	"crypto/sha256"
	"fmt"

	"github.com/weftnet/weft/crypto"
)

// Kind is the kind of an event.
type Kind uint8

// The six event kinds. Their numbers are part of the wire format.
const (
	KindThreadCreate  Kind = 1
	KindThreadUpdate  Kind = 2
	KindThreadDelete  Kind = 3
	KindMessagePost   Kind = 4
	KindMessageUpdate Kind = 5
	KindMessageDelete Kind = 6
)

var kindNames = [...]string{"", "ThreadCreate", "ThreadUpdate", "ThreadDelete", "MessagePost", "MessageUpdate", "MessageDelete"}

func (k Kind) String() string {
	if k.valid() {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

func (k Kind) valid() bool { return k >= KindThreadCreate && k <= KindMessageDelete }

// IsControl reports whether events of this kind change the thread itself
// (membership, policy, keys, metadata, existence).
func (k Kind) IsControl() bool {
	return k == KindThreadCreate || k == KindThreadUpdate || k == KindThreadDelete
}

// IsMessage reports whether events of this kind act on a message.
func (k Kind) IsMessage() bool { return k >= KindMessagePost && k <= KindMessageDelete }

// NonceSize is the size of a ThreadCreate's random nonce.
const NonceSize = 32

// Event is one signed entry of a thread's log.
type Event struct {
	Kind    Kind
	Thread  ThreadID // zero in a ThreadCreate: its own ID is the thread ID
	Writer  crypto.UserID
	Seq     uint64    // 1, 2, 3... per writer and thread
	Lamport uint64    // 1 + the highest Lamport time among the parents; 1 for a ThreadCreate
	Time    int64     // author's clock, Unix milliseconds; shown, never used for order
	Epoch   uint32    // key epoch the content is sealed with (the new epoch for a rotation)
	Parents []EventID // sorted, distinct: the heads the writer had seen (plus the target of a message edit)

	Control Control

	// Content is nil when the event is pruned (its message or thread was
	// deleted). ContentHash always holds the hash the author signed.
	Content     *Content
	ContentHash [32]byte

	Sig []byte

	// Cert is the certificate (crypto.DeviceCert) of a device writer, in
	// the device's first event in the thread: the writer is then the
	// device's key and the member it writes as is the certificate's user.
	// Later events of the device inherit that user through their chain.
	// Empty for a user writing with its own key.
	Cert []byte

	id    EventID // cached by Seal and Decode
	hasID bool
}

// DeviceCert parses and verifies the event's device certificate: it must
// be signed by the user it names and certify the event's writer. It
// returns nil, nil if the event carries none.
func (e *Event) DeviceCert() (*crypto.DeviceCert, error) {
	if len(e.Cert) == 0 {
		return nil, nil
	}
	c, err := crypto.ParseDeviceCert(e.Cert)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadDevice, err)
	}
	if crypto.UserID(c.Device()) != e.Writer {
		return nil, fmt.Errorf("%w: the certificate is for device %s, not the writer %s", ErrBadDevice, c.Device(), e.Writer)
	}
	if err := c.Verify(c.User()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadDevice, err)
	}
	return c, nil
}

// Control is the never-pruned, kind-specific part of an event.
//
//	ThreadCreate:  Nonce, AddUsers (all members), AddManagers, Policy, Keys
//	ThreadUpdate:  Add/Remove Users/Managers, Set* flags, Policy, NewEpoch, Keys
//	ThreadDelete:  nothing
//	MessagePost:   nothing
//	MessageUpdate: Target
//	MessageDelete: Target
type Control struct {
	Nonce          [NonceSize]byte
	AddUsers       []crypto.UserID // sorted, distinct
	RemoveUsers    []crypto.UserID
	AddManagers    []crypto.UserID
	RemoveManagers []crypto.UserID
	SetPublicMeta  bool
	SetPrivateMeta bool
	SetPolicy      bool
	NewEpoch       bool // this update starts epoch Event.Epoch with a fresh key
	Policy         Policy
	Keys           []WrappedKey // sorted by (User, Epoch, Source)
	Target         EventID
	// HasSeen and Seen, in an update that removes users: what the author
	// had seen of the writers of the users it removes (writer → highest
	// sequence number). Their events it had not seen, and that have not
	// seen the removal, are void: a removal wins over every post of the
	// removed member it did not see, wherever that post sorts.
	HasSeen bool
	Seen    []SeqMark // sorted by writer, distinct
}

// SeqMark is one writer's sequence number.
type SeqMark struct {
	Writer crypto.UserID
	Seq    uint64
}

// MaxSeen bounds Control.Seen.
const MaxSeen = 256

// WrappedKey is a thread key sealed to one user with HPKE.
type WrappedKey struct {
	User    crypto.UserID
	Epoch   uint32
	Source  EventID // the event that introduced this key; zero = the event carrying it
	Wrapped []byte  // crypto.WrappedKeySize bytes
}

// Content is the prunable part of an event. PrivateMeta and Data are sealed
// with the thread key of the event's epoch; PublicMeta is plaintext.
type Content struct {
	PublicMeta  []byte
	PrivateMeta []byte
	Data        []byte
}

// ID returns the event's ID. It is only meaningful for an event that was
// signed (Sign) or decoded.
func (e *Event) ID() EventID {
	if !e.hasID {
		e.id = sha256.Sum256(e.signedBytes(nil))
		e.hasID = true
	}
	return e.id
}

// ThreadID returns the thread the event belongs to.
func (e *Event) ThreadID() ThreadID {
	if e.Kind == KindThreadCreate {
		return ThreadID(e.ID())
	}
	return e.Thread
}

// Order returns the event's position in the linear order.
func (e *Event) Order() Order { return Order{Lamport: e.Lamport, ID: e.ID()} }

// KeyBinding is what HPKE wraps carried by this event are bound to: the
// thread ID, or in a ThreadCreate the nonce the thread ID commits to.
func (e *Event) KeyBinding() [32]byte {
	if e.Kind == KindThreadCreate {
		return e.Control.Nonce
	}
	return e.Thread
}

// Sign fills ContentHash from Content and signs the event as id. The
// writer must be id's user.
func (e *Event) Sign(id Signer) error {
	if e.Writer != id.WriterID() {
		return fmt.Errorf("%w: writer %s is not the signing identity", ErrBadSignature, e.Writer)
	}
	if e.Content == nil {
		e.Content = &Content{}
	}
	if err := e.checkShape(); err != nil {
		return err
	}
	e.ContentHash = e.Content.hash()
	e.hasID = false
	msg := e.signedBytes(nil)
	e.Sig = id.Sign(signDomain, msg)
	e.id = sha256.Sum256(msg)
	e.hasID = true
	return nil
}

// VerifySignature checks the author's signature and, unless the event is
// pruned, that the content matches the signed hash.
func (e *Event) VerifySignature() error {
	if e.Content != nil && e.Content.hash() != e.ContentHash {
		return fmt.Errorf("%w: content does not match its signed hash", ErrBadSignature)
	}
	if err := crypto.Verify(e.Writer, signDomain, e.signedBytes(nil), e.Sig); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return nil
}

// Pruned returns a copy of the event without its content; it keeps its ID
// and signature.
func (e *Event) Pruned() *Event {
	c := *e
	c.Content = nil
	return &c
}

// SealAAD returns the associated data for sealing a field of this event:
// it binds the field name, the whole header and the control part (thread or
// nonce, writer, sequence, epoch, kind, parents, target...).
func (e *Event) SealAAD(field string) []byte {
	h := sha256.New()
	h.Write(e.headerAndControl(nil))
	aad := make([]byte, 0, len("weft-seal-v1\x00")+len(field)+1+sha256.Size)
	aad = append(aad, "weft-seal-v1\x00"...)
	aad = append(aad, field...)
	aad = append(aad, 0)
	return h.Sum(aad)
}

// Field names used in SealAAD.
const (
	FieldPrivateMeta = "privateMeta"
	FieldData        = "data"
)

const signDomain = "event"

func (c *Content) hash() [32]byte {
	if c == nil {
		c = &Content{}
	}
	return sha256.Sum256(c.encode(nil))
}

// ContentMatches reports whether the event's content (if not pruned) is the
// content its author signed. It is the cheap part of VerifySignature, for
// re-checking stored events on read.
func (e *Event) ContentMatches() bool {
	return e.Content == nil || e.Content.hash() == e.ContentHash
}
