package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
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

// readmeWalkthrough returns the shell block of README.md's walkthrough.
func readmeWalkthrough(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)\n## Walkthrough[^\n]*\n.*?```sh\n(.*?)```\n").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md has no \"## Walkthrough\" section with a ```sh block")
	}
	return string(m[1])
}

// TestReadmeWalkthrough runs README.md's walkthrough exactly as written,
// as one block pasted into bash (with -e: any failing command fails the
// test) at the root of the checkout, with TMPDIR in the test's temp dir.
func TestReadmeWalkthrough(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"bash", "jq", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the walkthrough needs %s", tool)
		}
	}
	c := newCLI(t) // for its environment
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	script := readmeWalkthrough(t, root)
	// The block builds ./weft in the checkout, as a reader's would (it is
	// git-ignored); remove it afterwards unless it was there before.
	if _, err := os.Stat(filepath.Join(root, "weft")); errors.Is(err, os.ErrNotExist) {
		t.Cleanup(func() { os.Remove(filepath.Join(root, "weft")) })
	}
	tmp := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-c", script)
	cmd.Dir = root
	// The go caches of the user, not of the test's HOME.
	goenv, err := exec.Command("go", "env", "GOPATH", "GOMODCACHE", "GOCACHE").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	cache := strings.Fields(string(goenv))
	if len(cache) != 3 {
		t.Fatalf("go env printed %q", goenv)
	}
	cmd.Env = append(envWithout(c.env, "WEFT_PASSPHRASE"), "TMPDIR="+tmp, "GOPATH="+cache[0], "GOMODCACHE="+cache[1], "GOCACHE="+cache[2])
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	err = cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // anything the block left running
	}
	logs := func() string {
		var b bytes.Buffer
		matches, _ := filepath.Glob(filepath.Join(tmp, "*", "*.log"))
		for _, f := range matches {
			l, _ := os.ReadFile(f)
			b.WriteString("--- " + filepath.Base(f) + "\n" + string(l))
		}
		return b.String()
	}
	if err != nil {
		t.Fatalf("the walkthrough failed (%v)\nstdout:\n%s\nstderr:\n%s\ndaemon logs:\n%s", err, out.String(), errb.String(), logs())
	}
	for _, want := range []string{"hello bob", "threadCreated", "threadNewMessage", "user  weft1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the walkthrough printed no %q\nstdout:\n%s\nstderr:\n%s", want, out.String(), errb.String())
		}
	}
	homes, _ := filepath.Glob(filepath.Join(tmp, "*", "alice"))
	if len(homes) != 1 {
		t.Errorf("the walkthrough's homes are not under TMPDIR: %v", homes)
	}
}

func envWithout(env []string, key string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}
