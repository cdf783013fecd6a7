package protocol_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/weftnet/weft/protocol"
)

// FuzzReadSyncMsg checks that ReadSyncMsg never panics, fails only with
// its documented errors, and is canonical: a frame it accepts re-encodes to
// the same bytes.
func FuzzReadSyncMsg(f *testing.F) {
	for _, m := range syncSamples(f) {
		var buf bytes.Buffer
		if err := protocol.WriteSyncMsg(&buf, m); err != nil {
			f.Fatal(err)
		}
		b := buf.Bytes()
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add([]byte{0x81, 0x00, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		m, err := protocol.ReadSyncMsg(bufio.NewReader(r), 0)
		if err != nil {
			if m != nil {
				t.Fatalf("ReadSyncMsg returned %#v and %v", m, err)
			}
			if !errors.Is(err, protocol.ErrSyncMalformed) && !errors.Is(err, protocol.ErrSyncTooLarge) &&
				err != io.EOF && err != io.ErrUnexpectedEOF {
				t.Fatalf("undocumented error %v", err)
			}
			return
		}
		var buf bytes.Buffer
		if err := protocol.WriteSyncMsg(&buf, m); err != nil {
			t.Fatalf("WriteSyncMsg(ReadSyncMsg(b)): %v", err)
		}
		// The frame read is the input's prefix (the rest would be the next
		// frame); it re-encodes exactly.
		if !bytes.HasPrefix(b, buf.Bytes()) {
			t.Fatalf("re-encoding differs\n  in %x\n out %x", b, buf.Bytes())
		}
		if h, ok := m.(*protocol.Hello); ok && h.Version == protocol.SyncVersion {
			if err := h.CheckVersion(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
