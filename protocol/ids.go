package protocol

import (
	"bytes"
	"encoding/hex"
	"fmt"
)

// EventID is the SHA-256 of an event's signed bytes.
type EventID [32]byte

// ThreadID is the EventID of a thread's ThreadCreate event.
type ThreadID [32]byte

// ParseEventID parses the 64-character lower-case hex form of an event ID.
func ParseEventID(s string) (EventID, error) {
	var id EventID
	if err := parseHexID(s, id[:]); err != nil {
		return EventID{}, fmt.Errorf("%w: event ID %q: %v", ErrMalformedID, s, err)
	}
	return id, nil
}

// ParseThreadID parses the 64-character lower-case hex form of a thread ID.
func ParseThreadID(s string) (ThreadID, error) {
	var id ThreadID
	if err := parseHexID(s, id[:]); err != nil {
		return ThreadID{}, fmt.Errorf("%w: thread ID %q: %v", ErrMalformedID, s, err)
	}
	return id, nil
}

func parseHexID(s string, dst []byte) error {
	if len(s) != 2*len(dst) {
		return fmt.Errorf("want %d hex characters, got %d", 2*len(dst), len(s))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'F' {
			return fmt.Errorf("upper-case hex is not canonical")
		}
	}
	_, err := hex.Decode(dst, []byte(s))
	return err
}

func (id EventID) String() string  { return hex.EncodeToString(id[:]) }
func (id ThreadID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is all zeros (no event).
func (id EventID) IsZero() bool { return id == EventID{} }

// IsZero reports whether id is all zeros (no thread).
func (id ThreadID) IsZero() bool { return id == ThreadID{} }

// Compare orders event IDs bytewise.
func (id EventID) Compare(o EventID) int { return bytes.Compare(id[:], o[:]) }

// MarshalText implements encoding.TextMarshaler.
func (id EventID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *EventID) UnmarshalText(b []byte) error {
	v, err := ParseEventID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (id ThreadID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ThreadID) UnmarshalText(b []byte) error {
	v, err := ParseThreadID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}
