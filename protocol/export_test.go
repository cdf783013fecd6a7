package protocol

import "encoding/binary"

// Hooks for the external tests.

// ControlClosure exposes ThreadState.closure.
func ControlClosure(ts *ThreadState, heads []EventID) map[EventID]bool { return ts.closure(heads) }

// LegacyMetaBytes encodes m as version 1 metadata did, with cv as its
// control vector (the event itself included).
func LegacyMetaBytes(m *EventMeta, cv VersionVector) []byte {
	dst := []byte{1, byte(m.Kind)}
	dst = append(dst, m.ID[:]...)
	dst = append(dst, m.Writer[:]...)
	dst = binary.AppendUvarint(dst, m.Seq)
	dst = binary.AppendUvarint(dst, m.Lamport)
	dst = binary.AppendUvarint(dst, uint64(m.Time))
	dst = binary.AppendUvarint(dst, uint64(m.Epoch))
	dst = append(dst, m.KeyRef[:]...)
	dst = append(dst, m.Target[:]...)
	return cv.AppendBinary(dst)
}
