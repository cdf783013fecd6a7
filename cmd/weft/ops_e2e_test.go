package main

// End-to-end tests of what operators and scripts expect of the CLI, in
// the style of e2e_test.go (the built binary, real daemons on 127.0.0.1).

import (
	"encoding/base64"
	"encoding/json"
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
	for _, tc := range []struct {
		args []string
		last string
	}{
		{[]string{"watch", "--home", home}, "weft: the daemon stopped: watch ended"},
		{[]string{"watch", "--json", "--home", home}, `{"error":{"code":"daemon_stopped","message":"the daemon stopped: watch ended"}}`},
	} {
		args, want := tc.args, tc.last
		w := c.start(strings.Join(args, " "), args...)
		if !eventually(10*time.Second, func() bool { return strings.Contains(w.stderr.String(), "watching all threads") }) {
			t.Fatalf("%s printed no ready line; stderr %q", args, w.stderr.String())
		}
		defer func() {
			code := w.wait(15 * time.Second)
			msg := strings.TrimSpace(w.stderr.String())
			last := msg[strings.LastIndex(msg, "\n")+1:]
			if code != 1 || last != want {
				t.Errorf("%s when the daemon stopped: exit %d, last stderr line %q; want exit 1 and %q", args, code, last, want)
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

// TestJSONErrors: with --json, a failed command writes exactly one line on
// stderr, {"error":{"code","message"}} as the API does, with the usual
// exit status; without it, the one-line text stays.
func TestJSONErrors(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	home := filepath.Join(t.TempDir(), "home")
	none := filepath.Join(t.TempDir(), "none")
	zeros := strings.Repeat("0", 64)
	check := func(what string, r result, status int, code string, msgPart string) {
		t.Helper()
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		dec := json.NewDecoder(strings.NewReader(r.stderr))
		dec.DisallowUnknownFields()
		switch {
		case r.code != status:
			t.Errorf("%s: exit %d, want %d\n%s", what, r.code, status, r)
		case strings.Count(r.stderr, "\n") != 1 || dec.Decode(&body) != nil:
			t.Errorf("%s: stderr is not one JSON error line: %q", what, r.stderr)
		case body.Error.Code != code || !strings.Contains(body.Error.Message, msgPart):
			t.Errorf("%s: error %+v, want code %s and a message with %q", what, body.Error, code, msgPart)
		}
	}
	check("no daemon", c.run("messages", zeros, "--json", "--home", none), 1, "no_daemon", "no daemon running for home "+none)
	check("unknown flag", c.run("messages", zeros, "--bogus", "--json", "--home", none), 2, "usage", "bogus")
	check("malformed thread ID", c.run("messages", "abc", "--json", "--home", none), 2, "usage", "thread ID")
	check("unknown command", c.run("frobnicate", "--json"), 2, "usage", "unknown command")
	c.startDaemon(home, loopback...)
	check("unknown thread", c.run("messages", zeros, "--json", "--home", home), 1, "not_found", "not found")
	check("member typo", c.run("thread", "create", "--member", "weft1abc", "--json", "--home", home), 1, "failed", "malformed user ID")
	// --help with --json still shows the help.
	if r := c.run("messages", "--help", "--json"); r.code != 0 || !strings.Contains(r.stderr, "Usage: weft messages") {
		t.Errorf("--help --json: %s", r)
	}
	// Without --json: text, as before.
	oneLineFailure(t, "no daemon, text", c.run("messages", zeros, "--home", none), 1, "weft: no daemon running")
}

// TestHumanOutputAndUsage: a negative --limit or --skip is a usage error
// (exit 2); message get and delete refuse the update flags; thread list
// shows the private title.
func TestHumanOutputAndUsage(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	home := filepath.Join(t.TempDir(), "home")
	c.startDaemon(home, loopback...)
	var th struct{ ThreadID string }
	c.okJSON(&th, "thread", "create", "--private-meta", "our plans", "--public-meta", "open", "--json", "--home", home)
	var sent struct{ MessageID string }
	c.okJSON(&sent, "send", th.ThreadID, "--data", "kept", "--json", "--home", home)

	oneLineFailure(t, "messages --limit -1", c.run("messages", th.ThreadID, "--limit", "-1", "--home", home), 2, "negative")
	oneLineFailure(t, "thread list --skip -2", c.run("thread", "list", "--skip", "-2", "--home", home), 2, "negative")
	oneLineFailure(t, "messages --last-id x", c.run("messages", th.ThreadID, "--last-id", "x", "--home", home), 2, "--last-id")
	for _, sub := range []string{"get", "delete"} {
		r := c.run("message", sub, sent.MessageID, "--data", "x", "--home", home)
		if r.code != 2 || !strings.Contains(r.stderr, "--data is for message update") {
			t.Errorf("message %s --data x: %s\nwant exit 2 saying --data is for message update", sub, r)
		}
	}
	var m jsonMessage
	c.okJSON(&m, "message", "get", sent.MessageID, "--json", "--home", home)
	if m.text(t) != "kept" {
		t.Errorf("message after the refused commands: %q, want kept", m.text(t))
	}
	out := c.ok("thread", "list", "--home", home)
	if !strings.Contains(out, "PRIVATE META") || !strings.Contains(out, "our plans") || !strings.Contains(out, "open") {
		t.Errorf("thread list does not show the private title:\n%s", out)
	}
}

// TestQuietLogs: at the default level, two connected daemons that sync
// every second log nothing per sync: INFO is for what an operator wants
// to read. (A guard: main already logs syncs at debug.)
func TestQuietLogs(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	var ids []idInfo
	var daemons []*proc
	var homes []string
	for _, name := range []string{"one", "two"} {
		home := filepath.Join(t.TempDir(), name)
		c.ok("init", "--home", home)
		conf := filepath.Join(home, "weft.conf")
		b, err := os.ReadFile(conf)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(conf, append(b, "\nsync_interval = 1s\n"...), 0o600); err != nil {
			t.Fatal(err)
		}
		d, id := c.startDaemon(home, append(loopback, "--no-dht")...)
		daemons, ids, homes = append(daemons, d), append(ids, id), append(homes, home)
	}
	c.ok("connect", ids[1].Addrs[0], "--home", homes[0])
	var th struct{ ThreadID string }
	c.okJSON(&th, "thread", "create", "--member", ids[1].UserID, "--json", "--home", homes[0])
	before := []int{strings.Count(daemons[0].stderr.String(), "level=INFO"), strings.Count(daemons[1].stderr.String(), "level=INFO")}
	time.Sleep(5 * time.Second) // about five syncs each
	var st struct{ LastSync int64 }
	c.okJSON(&st, "status", "--json", "--home", homes[1])
	if st.LastSync == 0 || time.Since(time.UnixMilli(st.LastSync)) > 3*time.Second {
		t.Fatalf("daemon 2 has not synced in the last 3 s (last sync %d): the test saw no syncing", st.LastSync)
	}
	for i, d := range daemons {
		logs := d.stderr.String()
		if n := strings.Count(logs, "level=INFO") - before[i]; n > 1 || strings.Contains(logs, `level=INFO msg=synced`) {
			t.Errorf("daemon %d logged %d INFO lines in 5 s of idle syncing:\n%s", i+1, n, logs)
		}
	}
}

// TestEndpointRewritten (issue 13 item 7): api.json deleted while the
// daemon runs is written again, so the daemon can still be reached and
// stopped; a clean stop still removes it.
func TestEndpointRewritten(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	home := filepath.Join(t.TempDir(), "home")
	d, _ := c.startDaemon(home, loopback...)
	ep := filepath.Join(home, "api.json")
	if err := os.Remove(ep); err != nil {
		t.Fatal(err)
	}
	if !eventually(10*time.Second, func() bool { _, err := os.Stat(ep); return err == nil }) {
		t.Fatal("api.json was not written again")
	}
	c.ok("status", "--home", home)
	if code, _ := d.stop(syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Fatalf("daemon exited %d", code)
	}
	if _, err := os.Stat(ep); !os.IsNotExist(err) {
		t.Fatalf("api.json left behind after a clean stop (stat: %v)", err)
	}
}
