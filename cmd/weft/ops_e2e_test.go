package main

// End-to-end tests of what operators and scripts expect of the CLI, in
// the style of e2e_test.go (the built binary, real daemons on 127.0.0.1).

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestWatchDaemonStops: when the daemon stops (SIGTERM), `weft watch`
// says so and exits non-zero, rather than end silently with status 0.
func TestWatchDaemonStops(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	home := filepath.Join(t.TempDir(), "home")
	d, _ := c.startDaemon(home, loopback...)
	for _, args := range [][]string{{"watch", "--home", home}, {"watch", "--json", "--home", home}} {
		w := c.start(strings.Join(args, " "), args...)
		if !eventually(10*time.Second, func() bool { return strings.Contains(w.stderr.String(), "watching all threads") }) {
			t.Fatalf("%s printed no ready line; stderr %q", args, w.stderr.String())
		}
		defer func() {
			code := w.wait(15 * time.Second)
			msg := strings.TrimSpace(w.stderr.String())
			last := msg[strings.LastIndex(msg, "\n")+1:]
			if code != 1 || last != "weft: the daemon stopped: watch ended" {
				t.Errorf("%s when the daemon stopped: exit %d, last stderr line %q; want exit 1 and \"weft: the daemon stopped: watch ended\"", args, code, last)
			}
		}()
	}
	if code, _ := d.stop(syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Errorf("daemon exit status %d after SIGTERM", code)
	}
}

// TestThreadUpdateClearsMeta: `weft thread update T --public-meta ""`
// clears the field; a field not given is kept.
func TestThreadUpdateClearsMeta(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	home := filepath.Join(t.TempDir(), "home")
	c.startDaemon(home, loopback...)
	var th struct{ ThreadID string }
	c.okJSON(&th, "thread", "create", "--public-meta", "pub", "--private-meta", "priv", "--json", "--home", home)
	var got struct{ PublicMeta, PrivateMeta string }
	c.okJSON(&got, "thread", "update", th.ThreadID, "--public-meta", "", "--json", "--home", home)
	if got.PublicMeta != "" || got.PrivateMeta != base64.StdEncoding.EncodeToString([]byte("priv")) {
		t.Fatalf("after --public-meta \"\": publicMeta %q privateMeta %q, want empty and priv kept", got.PublicMeta, got.PrivateMeta)
	}
	c.okJSON(&got, "thread", "update", th.ThreadID, "--private-meta", "", "--json", "--home", home)
	if got.PublicMeta != "" || got.PrivateMeta != "" {
		t.Fatalf("after --private-meta \"\": publicMeta %q privateMeta %q, want both empty", got.PublicMeta, got.PrivateMeta)
	}
}

// TestSendEmpty: an empty message is a usage error (exit 2) unless asked
// for with --empty: stdin at EOF, or --data "".
func TestSendEmpty(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	home := filepath.Join(t.TempDir(), "home")
	c.startDaemon(home, loopback...)
	var th struct{ ThreadID string }
	c.okJSON(&th, "thread", "create", "--json", "--home", home)
	oneLineFailure(t, "send with stdin at EOF", c.run("send", th.ThreadID, "--home", home), 2, "empty message")
	oneLineFailure(t, "send --data \"\"", c.run("send", th.ThreadID, "--data", "", "--home", home), 2, "empty message")
	var l jsonMessages
	c.okJSON(&l, "messages", th.ThreadID, "--json", "--home", home)
	if l.TotalAvailable != 0 {
		t.Fatalf("refused sends stored %d messages", l.TotalAvailable)
	}
	c.ok("send", th.ThreadID, "--empty", "--public-meta", "ping", "--home", home)
	c.ok("send", th.ThreadID, "--empty", "--data", "", "--home", home)
	c.okJSON(&l, "messages", th.ThreadID, "--json", "--home", home)
	if l.TotalAvailable != 2 {
		t.Fatalf("--empty: %d messages, want 2", l.TotalAvailable)
	}
}

// TestPassphraseFlagsConflict: --no-passphrase with --passphrase-file is
// a usage error (exit 2) that creates nothing, for init and daemon.
func TestPassphraseFlagsConflict(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	dir := t.TempDir()
	pf := filepath.Join(dir, "pass")
	if err := os.WriteFile(pf, []byte("a passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"init", "daemon"} {
		home := filepath.Join(dir, cmd)
		oneLineFailure(t, cmd+" with both", c.run(cmd, "--no-passphrase", "--passphrase-file", pf, "--home", home), 2, "conflict")
		if _, err := os.Stat(home); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s with conflicting flags made the home (stat: %v)", cmd, err)
		}
	}
}
