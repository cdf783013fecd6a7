package node_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/storage"
)

// TestBackupRestore: a backup taken from a running node restores into a
// new home that opens with the same passphrase and holds the same
// identities, threads, messages (deleted ones stay deleted) and keys, and
// writing continues there. A damaged backup or an occupied home leaves
// nothing behind.
func TestBackupRestore(t *testing.T) {
	ctx := context.Background()
	n := openNode(t, t.TempDir(), "pw")
	aid, _ := n.CreateIdentity(ctx, "alice")
	bid, _ := n.CreateIdentity(ctx, "bob")
	a := n.As(aid)
	th, err := a.CreateThread(ctx, []crypto.UserID{bid}, nil, []byte("pub"), []byte("priv"), nil)
	if err != nil {
		t.Fatal(err)
	}
	m1 := mustSend(t, a, th, "one")
	gone := mustSend(t, a, th, "gone")
	if err := a.DeleteMessage(ctx, gone); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := n.Backup(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	m2 := mustSend(t, a, th, "after the backup") // not in it
	n.Close()

	home := filepath.Join(t.TempDir(), "restored")
	if err := node.Restore(home, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(home, "keystore.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("restored keystore: %v %v", fi, err)
	}
	r := openNode(t, home, "pw")
	defer r.Close()
	if ids := r.Identities(); len(ids) != 2 || ids[0].UserID != aid || ids[1].UserID != bid {
		t.Fatalf("restored identities: %+v", ids)
	}
	ra, rb := r.As(aid), r.As(bid)
	mustRead(t, rb, m1, "one")
	l, err := ra.ListMessages(ctx, th, node.Page{})
	if err != nil || l.TotalAvailable != 1 || l.Items[0].MessageID != m1 {
		t.Fatalf("restored messages: %+v %v", l, err)
	}
	if _, err := ra.GetMessage(ctx, m2); !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("a message sent after the backup: %v", err)
	}
	mustRead(t, rb, mustSend(t, ra, th, "after the restore"), "after the restore")

	// An occupied home is refused and left as it was.
	if err := node.Restore(home, bytes.NewReader(buf.Bytes())); !errors.Is(err, storage.ErrNotEmpty) {
		t.Fatalf("restore into an occupied home: %v", err)
	}
	// A path that is a file is not a home to restore into, and stays.
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := node.Restore(file, bytes.NewReader(buf.Bytes())); !errors.Is(err, storage.ErrNotEmpty) {
		t.Fatalf("restore onto a file: %v", err)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "mine" {
		t.Fatalf("the file was changed: %q %v", b, err)
	}
	// A damaged backup restores nothing and leaves no home behind.
	for name, data := range map[string][]byte{
		"truncated": buf.Bytes()[:buf.Len()/2],
		"garbage":   []byte("not a tar stream at all"),
	} {
		dst := filepath.Join(t.TempDir(), "broken")
		err := node.Restore(dst, bytes.NewReader(data))
		if err == nil {
			t.Fatalf("%s backup restored", name)
		}
		if _, serr := os.Stat(dst); !errors.Is(serr, os.ErrNotExist) {
			t.Errorf("%s backup left %s behind (%v)", name, dst, err)
		}
		if _, serr := os.Stat(dst + ".restoring"); !errors.Is(serr, os.ErrNotExist) {
			t.Errorf("%s backup left its staging directory", name)
		}
	}
}
