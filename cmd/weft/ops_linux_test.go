package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal: the master, to type into, and the
// slave, to give a process as its stdin.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("ptsname: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("opening the pty slave: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// TestSendAtTerminal: `weft send T` with no --data at a terminal says
// that it reads the message from the terminal and how to end it, then
// sends what was typed.
func TestSendAtTerminal(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	master, slave := openPTY(t)
	home := filepath.Join(t.TempDir(), "home")
	c.startDaemon(home, loopback...)
	var th struct{ ThreadID string }
	c.okJSON(&th, "thread", "create", "--json", "--home", home)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := c.command(ctx, "send", th.ThreadID, "--json", "--home", home)
	cmd.Env = c.env
	cmd.Stdin = slave
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = dieWithTest()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if !eventually(10*time.Second, func() bool { return strings.Contains(errb.String(), "Ctrl-D") }) {
		cancel()
		cmd.Wait()
		t.Fatalf("send at a terminal said nothing about what it waits for; stderr %q", errb.String())
	}
	if _, err := master.Write([]byte("typed\n\x04")); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("send: %v\nstderr: %s", err, errb.String())
	}
	var sent struct{ MessageID string }
	if err := json.Unmarshal([]byte(out.String()), &sent); err != nil {
		t.Fatalf("send --json printed %q: %v", out.String(), err)
	}
	if !c.waitMessage(home, th.ThreadID, sent.MessageID, "typed\n", 5*time.Second) {
		t.Fatal("the typed message was not sent")
	}
}
