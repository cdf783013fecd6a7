package protocol

import "errors"

// Errors returned by Decode and by the validity rules. Each names the rule
// an event broke; they are wrapped with detail, so test with errors.Is.
//
// ErrMissingParents, ErrSeqGap and ErrUnknownThread mean "not yet": the event
// may become valid once the events it depends on arrive, so a replica holds
// it instead of dropping it (see IsHold). Every other rule error is final.
var (
	ErrUnknownVersion = errors.New("unknown wire version")
	ErrMalformed      = errors.New("malformed event")
	ErrMalformedID    = errors.New("malformed ID")
	ErrTooLarge       = errors.New("too large")
	ErrBadSignature   = errors.New("bad signature")
	ErrBadDevice      = errors.New("invalid device certificate")

	ErrUnknownThread  = errors.New("unknown thread")
	ErrMissingParents = errors.New("parents not known")
	ErrSeqGap         = errors.New("gap in sequence") // no longer returned: a gap is ErrMissingParents

	ErrWrongThread   = errors.New("event belongs to another thread")
	ErrBadGenesis    = errors.New("invalid thread creation")
	ErrBadParents    = errors.New("invalid parents")
	ErrBadLamport    = errors.New("wrong Lamport time")
	ErrEquivocation  = errors.New("equivocation") // not a rejection: counted when a fork is found (see ThreadState.RecordFork)
	ErrNotMember     = errors.New("not a member")
	ErrNotManager    = errors.New("not a manager")
	ErrNotPermitted  = errors.New("not permitted by the thread policy")
	ErrNotAuthor     = errors.New("not the author")
	ErrThreadDeleted = errors.New("thread deleted")
	ErrUnknownEpoch  = errors.New("unknown key epoch")
	ErrBadKeys       = errors.New("invalid key distribution")
	ErrBadTarget     = errors.New("invalid target message")
	ErrBadUpdate     = errors.New("invalid thread update")
	ErrRunTooLong    = errors.New("too many events in a row")
)

// IsHold reports whether err means the event cannot be judged yet because
// events it depends on are missing; such events are held, not dropped.
func IsHold(err error) bool {
	return errors.Is(err, ErrMissingParents) || errors.Is(err, ErrSeqGap) || errors.Is(err, ErrUnknownThread)
}
