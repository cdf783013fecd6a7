package protocol

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/weftnet/weft/crypto"
)

// WireVersion is the version of the event encoding this package writes
// for an event signed by a device's first event in a thread (it carries
// the device's certificate); every other event is written as version 1,
// which is version 2 without the certificate, so events written before
// devices keep their bytes and IDs. An event that starts with another
// version gives ErrUnknownVersion.
const WireVersion = 2

// wireV1 is the version of events without a device certificate.
const wireV1 = 1

// MaxCertSize bounds an event's device certificate.
const MaxCertSize = 512

// Hard limits of the encoding, independent of a node's configured Limits.
const (
	MaxEncodedSize = 8 << 20 // whole encoded event
	MaxParents     = 64
)

const (
	flagSetPublicMeta = 1 << iota
	flagSetPrivateMeta
	flagSetPolicy
	flagNewEpoch
	flagsKnown = flagSetPublicMeta | flagSetPrivateMeta | flagSetPolicy | flagNewEpoch
)

const (
	contentPruned  = 0
	contentPresent = 1
)

// Encode appends the wire form of a signed event to dst.
func (e *Event) Encode(dst []byte) []byte {
	dst = e.signedBytes(dst)
	dst = append(dst, e.Sig...)
	if e.Content == nil {
		return append(dst, contentPruned)
	}
	dst = append(dst, contentPresent)
	return e.Content.encode(dst)
}

// EncodedSize returns the length of Encode's output.
func (e *Event) EncodedSize() int { return len(e.Encode(nil)) }

// signedBytes appends the bytes the author signs: header, control part and
// content hash.
func (e *Event) signedBytes(dst []byte) []byte {
	dst = e.headerAndControl(dst)
	return append(dst, e.ContentHash[:]...)
}

func (e *Event) headerAndControl(dst []byte) []byte {
	v := byte(wireV1)
	if e.hasExtensions() {
		v = WireVersion
	}
	dst = append(dst, v, byte(e.Kind))
	dst = append(dst, e.Thread[:]...)
	dst = append(dst, e.Writer[:]...)
	dst = binary.AppendUvarint(dst, e.Seq)
	dst = binary.AppendUvarint(dst, e.Lamport)
	dst = binary.AppendUvarint(dst, uint64(e.Time))
	dst = binary.AppendUvarint(dst, uint64(e.Epoch))
	dst = binary.AppendUvarint(dst, uint64(len(e.Parents)))
	for _, p := range e.Parents {
		dst = append(dst, p[:]...)
	}
	if v == WireVersion {
		// Version 2's extensions: a flags byte, then what it announces.
		var flags byte
		if len(e.Cert) > 0 {
			flags |= extCert
		}
		if e.Control.HasSeen {
			flags |= extSeen
		}
		if e.carriesPolicy() && e.Control.Policy.MaxRun != 0 {
			flags |= extRun
		}
		dst = append(dst, flags)
		if len(e.Cert) > 0 {
			dst = appendBytes(dst, e.Cert)
		}
		if e.Control.HasSeen {
			dst = binary.AppendUvarint(dst, uint64(len(e.Control.Seen)))
			for _, m := range e.Control.Seen {
				dst = append(dst, m.Writer[:]...)
				dst = binary.AppendUvarint(dst, m.Seq)
			}
		}
		if flags&extRun != 0 {
			dst = binary.AppendUvarint(dst, uint64(e.Control.Policy.MaxRun))
		}
	}
	return e.Control.encode(dst, e.Kind)
}

// carriesPolicy reports whether the event sets a policy.
func (e *Event) carriesPolicy() bool {
	return e.Kind == KindThreadCreate || (e.Kind == KindThreadUpdate && e.Control.SetPolicy)
}

// Extensions of wire version 2.
const (
	extCert  = 1 << iota // a device certificate
	extSeen              // Control.Seen
	extRun               // Control.Policy.MaxRun
	extKnown = extCert | extSeen | extRun
)

// hasExtensions reports whether the event needs wire version 2.
func (e *Event) hasExtensions() bool {
	return len(e.Cert) > 0 || e.Control.HasSeen || (e.carriesPolicy() && e.Control.Policy.MaxRun != 0)
}

func (c *Control) encode(dst []byte, k Kind) []byte {
	switch k {
	case KindThreadCreate:
		dst = append(dst, c.Nonce[:]...)
		dst = appendUsers(dst, c.AddUsers)
		dst = appendUsers(dst, c.AddManagers)
		dst = c.Policy.appendTo(dst)
		dst = appendKeys(dst, c.Keys)
	case KindThreadUpdate:
		var flags byte
		if c.SetPublicMeta {
			flags |= flagSetPublicMeta
		}
		if c.SetPrivateMeta {
			flags |= flagSetPrivateMeta
		}
		if c.SetPolicy {
			flags |= flagSetPolicy
		}
		if c.NewEpoch {
			flags |= flagNewEpoch
		}
		dst = append(dst, flags)
		dst = appendUsers(dst, c.AddUsers)
		dst = appendUsers(dst, c.RemoveUsers)
		dst = appendUsers(dst, c.AddManagers)
		dst = appendUsers(dst, c.RemoveManagers)
		if c.SetPolicy {
			dst = c.Policy.appendTo(dst)
		}
		dst = appendKeys(dst, c.Keys)
	case KindMessageUpdate, KindMessageDelete:
		dst = append(dst, c.Target[:]...)
	}
	return dst
}

func appendUsers(dst []byte, us []crypto.UserID) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(us)))
	for _, u := range us {
		dst = append(dst, u[:]...)
	}
	return dst
}

func appendKeys(dst []byte, ks []WrappedKey) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ks)))
	for _, k := range ks {
		dst = append(dst, k.User[:]...)
		dst = binary.AppendUvarint(dst, uint64(k.Epoch))
		dst = append(dst, k.Source[:]...)
		dst = append(dst, k.Wrapped...)
	}
	return dst
}

func (c *Content) encode(dst []byte) []byte {
	dst = appendBytes(dst, c.PublicMeta)
	dst = appendBytes(dst, c.PrivateMeta)
	return appendBytes(dst, c.Data)
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// Decode parses one encoded event. It checks the encoding is canonical (so
// Encode gives back the same bytes) and the event is well formed for its
// kind; it does not verify the signature or any validity rule. The result
// does not alias b.
func Decode(b []byte) (*Event, error) {
	if len(b) > MaxEncodedSize {
		return nil, fmt.Errorf("%w: event of %d bytes exceeds %d", ErrTooLarge, len(b), MaxEncodedSize)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrMalformed)
	}
	if b[0] != wireV1 && b[0] != WireVersion {
		return nil, fmt.Errorf("%w: %d (this node speaks %d and %d)", ErrUnknownVersion, b[0], wireV1, WireVersion)
	}
	r := reader{b: b, off: 1}
	e := &Event{}
	e.Kind = Kind(r.byte())
	if !e.Kind.valid() && r.err == nil {
		return nil, fmt.Errorf("%w: unknown kind %d", ErrMalformed, uint8(e.Kind))
	}
	r.fixed(e.Thread[:])
	r.fixed(e.Writer[:])
	e.Seq = r.uvarint()
	e.Lamport = r.uvarint()
	e.Time = int64(r.uvarint())
	epoch := r.uvarint()
	if epoch > 1<<32-1 {
		r.fail("epoch out of range")
	}
	e.Epoch = uint32(epoch)
	n := r.count(32, MaxParents)
	if n > 0 {
		e.Parents = make([]EventID, n)
		for i := range e.Parents {
			r.fixed(e.Parents[i][:])
		}
	}
	var maxRun uint64
	if b[0] == WireVersion {
		flags := r.byte()
		switch {
		case r.err != nil:
		case flags == 0:
			r.fail("version 2 without extensions (that is version 1)")
		case flags&^extKnown != 0:
			r.fail("unknown extensions")
		}
		if flags&extCert != 0 {
			e.Cert = r.lenBytes()
			if r.err == nil && (len(e.Cert) == 0 || len(e.Cert) > MaxCertSize) {
				r.fail(fmt.Sprintf("device certificate of %d bytes (1 to %d)", len(e.Cert), MaxCertSize))
			}
		}
		if flags&extSeen != 0 {
			e.Control.HasSeen = true
			n := r.count(33, MaxSeen)
			for i := 0; i < n && r.err == nil; i++ {
				var m SeqMark
				r.fixed(m.Writer[:])
				m.Seq = r.uvarint()
				e.Control.Seen = append(e.Control.Seen, m)
			}
		}
		if flags&extRun != 0 {
			if maxRun = r.uvarint(); r.err == nil && (maxRun == 0 || maxRun > 1<<32-1) {
				r.fail("run bound out of range")
			}
		}
	}
	e.Control.decode(&r, e.Kind)
	if maxRun != 0 {
		// The run bound is an extension of the policy decoded above.
		e.Control.Policy.MaxRun = uint32(maxRun)
	}
	r.fixed(e.ContentHash[:])
	signedEnd := r.off
	e.Sig = r.bytes(crypto.SignatureSize)
	switch r.byte() {
	case contentPruned:
	case contentPresent:
		e.Content = &Content{
			PublicMeta:  r.lenBytes(),
			PrivateMeta: r.lenBytes(),
			Data:        r.lenBytes(),
		}
	default:
		r.fail("bad content flag")
	}
	if r.err != nil {
		return nil, r.err
	}
	if r.off != len(b) {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b)-r.off)
	}
	if err := e.checkShape(); err != nil {
		return nil, err
	}
	e.id = sha256.Sum256(b[:signedEnd])
	e.hasID = true
	return e, nil
}

func (c *Control) decode(r *reader, k Kind) {
	switch k {
	case KindThreadCreate:
		r.fixed(c.Nonce[:])
		c.AddUsers = r.users()
		c.AddManagers = r.users()
		c.Policy = r.policy()
		c.Keys = r.keys()
	case KindThreadUpdate:
		flags := r.byte()
		if flags&^flagsKnown != 0 {
			r.fail("unknown update flags")
		}
		c.SetPublicMeta = flags&flagSetPublicMeta != 0
		c.SetPrivateMeta = flags&flagSetPrivateMeta != 0
		c.SetPolicy = flags&flagSetPolicy != 0
		c.NewEpoch = flags&flagNewEpoch != 0
		c.AddUsers = r.users()
		c.RemoveUsers = r.users()
		c.AddManagers = r.users()
		c.RemoveManagers = r.users()
		if c.SetPolicy {
			c.Policy = r.policy()
		}
		c.Keys = r.keys()
	case KindMessageUpdate, KindMessageDelete:
		r.fixed(c.Target[:])
	}
}

// checkShape checks the structural rules that need no thread state: fields
// that a kind does not use are empty, lists are sorted and distinct.
func (e *Event) checkShape() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrMalformed, e.Kind, fmt.Sprintf(format, args...))
	}
	if !e.Kind.valid() {
		return fmt.Errorf("%w: unknown kind %d", ErrMalformed, uint8(e.Kind))
	}
	if e.Seq == 0 || e.Lamport == 0 {
		return bad("sequence number and Lamport time start at 1")
	}
	if len(e.Parents) > MaxParents {
		return bad("%d parents, at most %d", len(e.Parents), MaxParents)
	}
	for i := 1; i < len(e.Parents); i++ {
		if e.Parents[i-1].Compare(e.Parents[i]) >= 0 {
			return bad("parents not sorted and distinct")
		}
	}
	c := &e.Control
	for _, l := range [][]crypto.UserID{c.AddUsers, c.RemoveUsers, c.AddManagers, c.RemoveManagers} {
		for i := 1; i < len(l); i++ {
			if bytes.Compare(l[i-1][:], l[i][:]) >= 0 {
				return bad("user list not sorted and distinct")
			}
		}
	}
	for i, k := range c.Keys {
		if len(k.Wrapped) != crypto.WrappedKeySize {
			return bad("wrapped key of %d bytes", len(k.Wrapped))
		}
		if i > 0 && compareKeys(&c.Keys[i-1], &c.Keys[i]) >= 0 {
			return bad("keys not sorted and distinct")
		}
	}
	if len(e.Sig) != 0 && len(e.Sig) != crypto.SignatureSize {
		return bad("signature of %d bytes", len(e.Sig))
	}
	if len(e.Cert) > 0 && e.Seq != 1 {
		return bad("a device certificate comes with the device's first event in a thread, not sequence number %d", e.Seq)
	}
	if len(e.Cert) > MaxCertSize {
		return bad("device certificate of %d bytes exceeds %d", len(e.Cert), MaxCertSize)
	}
	if c := &e.Control; c.HasSeen || len(c.Seen) > 0 {
		switch {
		case !c.HasSeen:
			return bad("seen marks without their flag")
		case e.Kind != KindThreadUpdate || len(c.RemoveUsers) == 0:
			return bad("seen marks belong to an update that removes users")
		case len(c.Seen) > MaxSeen:
			return bad("%d seen marks, at most %d", len(c.Seen), MaxSeen)
		}
		for i, m := range c.Seen {
			if m.Seq == 0 {
				return bad("seen mark of sequence number 0")
			}
			if i > 0 && bytes.Compare(c.Seen[i-1].Writer[:], m.Writer[:]) >= 0 {
				return bad("seen marks not sorted and distinct")
			}
		}
	}
	empty := Control{}
	cont := e.Content
	noContent := cont == nil || (len(cont.PublicMeta) == 0 && len(cont.PrivateMeta) == 0 && len(cont.Data) == 0)
	switch e.Kind {
	case KindThreadCreate:
		if !e.Thread.IsZero() {
			return bad("thread must be zero: a thread's ID is its creation's ID")
		}
		if e.Seq != 1 || e.Lamport != 1 || e.Epoch != 0 || len(e.Parents) != 0 {
			return bad("must have sequence 1, Lamport time 1, epoch 0 and no parents")
		}
		if len(c.RemoveUsers)+len(c.RemoveManagers) != 0 || c.SetPublicMeta || c.SetPrivateMeta || c.SetPolicy || c.NewEpoch || !c.Target.IsZero() {
			return bad("unexpected update fields")
		}
		if err := c.Policy.check(); err != nil {
			return bad("%v", err)
		}
		if cont != nil && len(cont.Data) != 0 {
			return bad("data is not allowed")
		}
	case KindThreadUpdate:
		if !c.Target.IsZero() || c.Nonce != empty.Nonce {
			return bad("unexpected fields")
		}
		if !c.SetPolicy && c.Policy != (Policy{}) {
			return bad("policy without its flag")
		}
		if c.SetPolicy {
			if err := c.Policy.check(); err != nil {
				return bad("%v", err)
			}
		}
		if cont != nil {
			if len(cont.Data) != 0 || (!c.SetPublicMeta && len(cont.PublicMeta) != 0) || (!c.SetPrivateMeta && len(cont.PrivateMeta) != 0) {
				return bad("content without its flag")
			}
		}
	case KindThreadDelete, KindMessagePost:
		if !controlEmpty(c) {
			return bad("unexpected control fields")
		}
		if e.Kind == KindThreadDelete && !noContent {
			return bad("content is not allowed")
		}
	case KindMessageUpdate, KindMessageDelete:
		if c.Target.IsZero() {
			return bad("missing target")
		}
		t := *c
		t.Target = EventID{}
		if !controlEmpty(&t) {
			return bad("unexpected control fields")
		}
		if e.Kind == KindMessageDelete && !noContent {
			return bad("content is not allowed")
		}
	}
	if e.Kind != KindThreadCreate && e.Thread.IsZero() {
		return bad("missing thread")
	}
	return nil
}

func controlEmpty(c *Control) bool {
	return c.Nonce == [NonceSize]byte{} && len(c.AddUsers)+len(c.RemoveUsers)+len(c.AddManagers)+len(c.RemoveManagers)+len(c.Keys) == 0 &&
		!c.SetPublicMeta && !c.SetPrivateMeta && !c.SetPolicy && !c.NewEpoch && c.Policy == (Policy{}) && c.Target.IsZero()
}

func compareKeys(a, b *WrappedKey) int {
	if c := bytes.Compare(a.User[:], b.User[:]); c != 0 {
		return c
	}
	if a.Epoch != b.Epoch {
		if a.Epoch < b.Epoch {
			return -1
		}
		return 1
	}
	return bytes.Compare(a.Source[:], b.Source[:])
}

// reader decodes canonical fields; the first failure sticks.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(why string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s at byte %d", ErrMalformed, why, r.off)
	}
}

func (r *reader) byte() byte {
	if r.err != nil || r.off >= len(r.b) {
		r.fail("truncated")
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) fixed(dst []byte) {
	if r.err != nil || len(r.b)-r.off < len(dst) {
		r.fail("truncated")
		return
	}
	copy(dst, r.b[r.off:])
	r.off += len(dst)
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil || len(r.b)-r.off < n {
		r.fail("truncated")
		return nil
	}
	out := bytes.Clone(r.b[r.off : r.off+n])
	r.off += n
	return out
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	if n != uvarintLen(v) {
		r.fail("non-minimal varint")
		return 0
	}
	r.off += n
	return v
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// count reads a list length and checks that the remaining input could hold
// that many items of at least itemSize bytes, so a forged length cannot make
// the decoder allocate.
func (r *reader) count(itemSize, max int) int {
	n := r.uvarint()
	if r.err != nil {
		return 0
	}
	if (max > 0 && n > uint64(max)) || n > uint64(len(r.b)-r.off)/uint64(itemSize) {
		r.fail("list too long")
		return 0
	}
	return int(n)
}

func (r *reader) lenBytes() []byte {
	n := r.count(1, 0)
	if n == 0 {
		return nil
	}
	return r.bytes(n)
}

func (r *reader) users() []crypto.UserID {
	n := r.count(32, 0)
	if n == 0 {
		return nil
	}
	us := make([]crypto.UserID, n)
	for i := range us {
		var raw [32]byte
		r.fixed(raw[:])
		if r.err != nil {
			return nil
		}
		u, err := crypto.UserIDFromBytes(raw[:])
		if err != nil {
			r.fail(err.Error())
			return nil
		}
		us[i] = u
	}
	return us
}

func (r *reader) keys() []WrappedKey {
	n := r.count(32+1+32+crypto.WrappedKeySize, 0)
	if n == 0 {
		return nil
	}
	ks := make([]WrappedKey, n)
	for i := range ks {
		r.fixed(ks[i].User[:])
		ep := r.uvarint()
		if ep > 1<<32-1 {
			r.fail("epoch out of range")
		}
		ks[i].Epoch = uint32(ep)
		r.fixed(ks[i].Source[:])
		ks[i].Wrapped = r.bytes(crypto.WrappedKeySize)
	}
	return ks
}

func (r *reader) policy() Policy {
	var b [policySize]byte
	r.fixed(b[:])
	if b[3] > 1 {
		r.fail("unknown policy flags")
	}
	return Policy{Post: Role(b[0]), EditMessage: Role(b[1]), DeleteMessage: Role(b[2]), ShareHistory: b[3] == 1}
}
