package protocol

import "fmt"

// Role names who may do something in a thread.
type Role uint8

// Roles. Their numbers are part of the wire format.
const (
	RoleMember          Role = 1 // any member (managers are members)
	RoleManager         Role = 2 // managers only
	RoleAuthor          Role = 3 // the message's author, if still a member
	RoleAuthorOrManager Role = 4 // the author (if still a member) or a manager
	RoleNobody          Role = 5
)

var roleNames = [...]string{"", "member", "manager", "author", "authorOrManager", "nobody"}

func (r Role) String() string {
	if r >= RoleMember && r <= RoleNobody {
		return roleNames[r]
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// MarshalText implements encoding.TextMarshaler.
func (r Role) MarshalText() ([]byte, error) {
	if r < RoleMember || r > RoleNobody {
		return nil, fmt.Errorf("unknown role %d", uint8(r))
	}
	return []byte(r.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Role) UnmarshalText(b []byte) error {
	v, err := ParseRole(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// ParseRole parses a role's String form.
func ParseRole(s string) (Role, error) {
	for i, n := range roleNames {
		if i > 0 && n == s {
			return Role(i), nil
		}
	}
	return 0, fmt.Errorf("unknown role %q (want member, manager, author, authorOrManager or nobody)", s)
}

// Policy is a thread's set of rules, enforced by every replica. Thread
// updates and deletion are always for managers.
type Policy struct {
	Post          Role `json:"post"`          // who may post messages: member or manager
	EditMessage   Role `json:"editMessage"`   // who may update a message
	DeleteMessage Role `json:"deleteMessage"` // who may delete a message
	// ShareHistory gives members added later the keys of earlier epochs, so
	// they can read what was posted before they joined.
	ShareHistory bool `json:"shareHistory"`
	// MaxRun bounds a user's events in a row that have seen nothing new of
	// anyone else (EventMeta.Run); 0 means DefaultMaxRun. It is part of
	// the thread so that every replica applies the same bound. It is what
	// bounds how much a removed member that ignores its removal can still
	// add: its run restarts only on events of others it has not seen, and
	// those it may name without naming the removal run out.
	MaxRun uint32 `json:"maxRun,omitempty"`
}

// DefaultMaxRun is the run bound of a policy that sets none: far more
// than any conversation writes without a reply.
const DefaultMaxRun = 10_000

// RunBound returns the policy's run bound.
func (p Policy) RunBound() uint64 {
	if p.MaxRun == 0 {
		return DefaultMaxRun
	}
	return uint64(p.MaxRun)
}

// DefaultPolicy is PrivMX's default: members post, a message's author or a
// manager edits or deletes it, new members read the history.
func DefaultPolicy() Policy {
	return Policy{Post: RoleMember, EditMessage: RoleAuthorOrManager, DeleteMessage: RoleAuthorOrManager, ShareHistory: true}
}

const policySize = 4

func (p Policy) appendTo(dst []byte) []byte {
	var f byte
	if p.ShareHistory {
		f = 1
	}
	return append(dst, byte(p.Post), byte(p.EditMessage), byte(p.DeleteMessage), f)
}

func (p Policy) check() error {
	if p.Post != RoleMember && p.Post != RoleManager && p.Post != RoleNobody {
		return fmt.Errorf("post role must be member, manager or nobody, not %s", p.Post)
	}
	for _, r := range []Role{p.EditMessage, p.DeleteMessage} {
		if r < RoleMember || r > RoleNobody {
			return fmt.Errorf("unknown role %s", r)
		}
	}
	return nil
}

// allows reports whether a writer may act under role r, given its
// membership and (for message edits) whether it wrote the message.
func (r Role) allows(member, manager, author bool) bool {
	switch r {
	case RoleMember:
		return member
	case RoleManager:
		return manager
	case RoleAuthor:
		return author && member
	case RoleAuthorOrManager:
		return (author && member) || manager
	}
	return false
}

// Check reports whether every role of p is one the rules know.
func (p Policy) Check() error { return p.check() }
