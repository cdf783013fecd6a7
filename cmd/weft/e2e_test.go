package main

// End-to-end tests: they build the weft binary once and drive real daemon
// and client processes through it. Every network address is on 127.0.0.1
// (except TestDaemonFreshHomeAndLock, which runs a daemon with no flags at
// all), every wait is bounded, and every process is killed in t.Cleanup.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const e2ePassphrase = "correct horse battery staple"

// loopback are the daemon flags that keep a test node on 127.0.0.1.
var loopback = []string{"--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--api", "127.0.0.1:0", "--json"}

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// weftBinary builds the command once per test binary run.
func weftBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "weft-e2e-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "weft")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// cli runs weft processes for one test, in a sandboxed environment.
type cli struct {
	t   *testing.T
	bin string
	env []string
	// prefix runs every command through another (nsenter into a
	// network namespace of the test's own).
	prefix []string
}

// command builds the exec.Cmd for one weft invocation.
func (c *cli) command(ctx context.Context, args ...string) *exec.Cmd {
	if len(c.prefix) == 0 {
		return exec.CommandContext(ctx, c.bin, args...)
	}
	full := append(append(append([]string{}, c.prefix[1:]...), c.bin), args...)
	return exec.CommandContext(ctx, c.prefix[0], full...)
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	bin := weftBinary(t)
	// HOME and XDG_CONFIG_HOME point into the test's temp dir so that
	// os.UserConfigDir (the default home) never reaches the real one.
	user := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "WEFT_HOME", "WEFT_PASSPHRASE", "HOME", "XDG_CONFIG_HOME":
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+user, "XDG_CONFIG_HOME="+filepath.Join(user, ".config"), "WEFT_PASSPHRASE="+e2ePassphrase)
	return &cli{t: t, bin: bin, env: env}
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

// runIn runs one short-lived weft command with stdin (nil: /dev/null).
func (c *cli) runIn(stdin io.Reader, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := c.command(ctx, args...)
	cmd.Env = c.env
	cmd.Stdin = stdin
	cmd.WaitDelay = 5 * time.Second
	cmd.SysProcAttr = dieWithTest()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		c.t.Fatalf("weft %s: timed out after 30s\nstderr: %s", strings.Join(args, " "), errb.String())
	}
	r := result{stdout: out.String(), stderr: errb.String(), code: cmd.ProcessState.ExitCode()}
	if err != nil && r.code <= 0 {
		c.t.Fatalf("weft %s: %v", strings.Join(args, " "), err)
	}
	return r
}

func (c *cli) run(args ...string) result {
	c.t.Helper()
	return c.runIn(nil, args...)
}

// ok runs a command that must succeed and returns its stdout.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("weft %s: %s", strings.Join(args, " "), r)
	}
	return r.stdout
}

// okJSON runs a command that must succeed and decodes its JSON output.
func (c *cli) okJSON(v any, args ...string) {
	c.t.Helper()
	out := c.ok(args...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("weft %s: output is not the expected JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// syncBuffer is a bytes.Buffer safe for a process's copier goroutine and
// the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a long-running weft process (daemon or watch).
type proc struct {
	t              *testing.T
	name           string
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
	waitErr        error
}

func (c *cli) start(name string, args ...string) *proc {
	c.t.Helper()
	p := &proc{t: c.t, name: name, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = c.command(context.Background(), args...)
	p.cmd.Env = c.env
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.WaitDelay = 5 * time.Second
	p.cmd.SysProcAttr = dieWithTest()
	if err := p.cmd.Start(); err != nil {
		c.t.Fatalf("starting %s: %v", name, err)
	}
	go func() { p.waitErr = p.cmd.Wait(); close(p.done) }()
	c.t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				c.t.Errorf("%s (pid %d) did not die after SIGKILL", name, p.cmd.Process.Pid)
			}
		}
		if c.t.Failed() {
			c.t.Logf("%s stderr:\n%s", name, p.stderr.String())
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop signals the process and waits (bounded) for it to exit; it returns
// the exit code and how long the exit took.
func (p *proc) stop(sig os.Signal, timeout time.Duration) (int, time.Duration) {
	p.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil && !p.exited() {
		p.t.Fatalf("signalling %s: %v", p.name, err)
	}
	return p.wait(timeout), time.Since(start)
}

func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		p.t.Fatalf("%s did not exit within %v\nstderr: %s", p.name, timeout, p.stderr.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

// idInfo is `weft id --json`.
type idInfo struct {
	UserID string   `json:"userId"`
	PeerID string   `json:"peerId"`
	Addrs  []string `json:"addrs"`
}

// startDaemon runs `weft daemon --home home extra...` and waits until
// `weft id` answers for the home.
func (c *cli) startDaemon(home string, extra ...string) (*proc, idInfo) {
	c.t.Helper()
	args := append([]string{"daemon", "--home", home}, extra...)
	p := c.start("daemon "+filepath.Base(home), args...)
	return p, c.waitReady(p, home)
}

func (c *cli) waitReady(p *proc, home string) idInfo {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := c.run("id", "--json", "--home", home)
		if r.code == 0 {
			var id idInfo
			if err := json.Unmarshal([]byte(r.stdout), &id); err != nil {
				c.t.Fatalf("id --json: %v\n%s", err, r.stdout)
			}
			return id
		}
		if p.exited() {
			c.t.Fatalf("%s exited (%v) before it was ready\nstderr: %s", p.name, p.waitErr, p.stderr.String())
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s not ready after 30s; last id: %s", p.name, r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// eventually polls cond every 100ms until it holds or timeout passes.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// jsonMessage is a message as the CLI prints it with --json; binary fields
// are standard base64.
type jsonMessage struct {
	ThreadID   string `json:"threadId"`
	MessageID  string `json:"messageId"`
	Author     string `json:"author"`
	PublicMeta string `json:"publicMeta"`
	Data       string `json:"data"`
	StatusCode int    `json:"statusCode"`
	Status     string `json:"status"`
}

func (m jsonMessage) text(t *testing.T) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(m.Data)
	if err != nil {
		t.Fatalf("message %s: data %q is not base64: %v", m.MessageID, m.Data, err)
	}
	return string(b)
}

type jsonMessages struct {
	TotalAvailable int           `json:"totalAvailable"`
	Items          []jsonMessage `json:"items"`
}

type watchEvent struct {
	Type      string       `json:"type"`
	ThreadID  string       `json:"threadId"`
	MessageID string       `json:"messageId"`
	Message   *jsonMessage `json:"message"`
}

// watchEvents parses the complete lines a `watch --json` printed so far;
// each must be one JSON object.
func watchEvents(t *testing.T, p *proc) []watchEvent {
	t.Helper()
	out := p.stdout.String()
	lines := strings.Split(out, "\n")
	lines = lines[:len(lines)-1] // the last one is incomplete (or empty)
	var evs []watchEvent
	for _, l := range lines {
		var ev watchEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Type == "" {
			t.Fatalf("watch --json printed a line that is not one JSON event: %q (%v)", l, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func waitEvent(t *testing.T, p *proc, timeout time.Duration, what string, match func(watchEvent) bool) {
	t.Helper()
	ok := eventually(timeout, func() bool {
		for _, ev := range watchEvents(t, p) {
			if match(ev) {
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("watch did not print %s within %v; it printed:\n%s\nstderr: %s", what, timeout, p.stdout.String(), p.stderr.String())
	}
}

// findMessage returns the message with id in a listing.
func findMessage(l jsonMessages, id string) (jsonMessage, bool) {
	for _, m := range l.Items {
		if m.MessageID == id {
			return m, true
		}
	}
	return jsonMessage{}, false
}

// waitMessage polls `weft messages thread --json` on home until message id
// is there and decrypted; it reports whether it arrived in time.
func (c *cli) waitMessage(home, thread, id, want string, timeout time.Duration) bool {
	c.t.Helper()
	var last result
	got := eventually(timeout, func() bool {
		last = c.run("messages", thread, "--json", "--home", home)
		if last.code != 0 {
			return false // e.g. the thread has not arrived yet
		}
		var l jsonMessages
		if err := json.Unmarshal([]byte(last.stdout), &l); err != nil {
			c.t.Fatalf("messages --json: %v\n%s", err, last.stdout)
		}
		m, ok := findMessage(l, id)
		return ok && m.StatusCode == 0 && m.text(c.t) == want
	})
	if !got {
		c.t.Logf("message %s (%q) not on %s after %v; last listing: %s", id, want, home, timeout, last)
	}
	return got
}

func TestCLIEndToEnd(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	h1, h2 := filepath.Join(t.TempDir(), "one"), filepath.Join(t.TempDir(), "two")
	_, id1 := c.startDaemon(h1, loopback...)
	d2, id2 := c.startDaemon(h2, loopback...)
	for _, id := range []idInfo{id1, id2} {
		if !strings.HasPrefix(id.UserID, "weft1") || id.PeerID == "" || len(id.Addrs) == 0 {
			t.Fatalf("id --json: %+v", id)
		}
		for _, a := range id.Addrs {
			if !strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") || !strings.HasSuffix(a, "/p2p/"+id.PeerID) {
				t.Fatalf("address %q is not a loopback TCP address ending in /p2p/%s", a, id.PeerID)
			}
		}
	}
	if id1.UserID == id2.UserID || id1.PeerID == id2.PeerID {
		t.Fatal("the two homes have the same identity")
	}
	// The daemon's own --json banner agrees with `weft id`.
	var banner struct {
		Home, UserID, PeerID, API string
	}
	if !eventually(5*time.Second, func() bool { return json.Unmarshal([]byte(d2.stdout.String()), &banner) == nil }) {
		t.Fatalf("daemon --json printed %q", d2.stdout.String())
	}
	if banner.Home != h2 || banner.UserID != id2.UserID || banner.PeerID != id2.PeerID || !strings.HasPrefix(banner.API, "127.0.0.1:") {
		t.Fatalf("daemon banner %+v, want home %s and the IDs of `weft id`", banner, h2)
	}

	var conn struct{ Connected string }
	c.okJSON(&conn, "connect", id2.Addrs[0], "--json", "--home", h1)
	if conn.Connected != id2.Addrs[0] {
		t.Fatalf("connect --json: %+v", conn)
	}
	if !eventually(10*time.Second, func() bool { return strings.Contains(c.ok("peers", "--home", h2), id1.PeerID) }) {
		t.Fatalf("daemon 2 does not list daemon 1 among its peers: %s", c.ok("peers", "--home", h2))
	}

	// watch on daemon 2: it says on stderr when it is subscribed, and a
	// local thread created after that must show up on stdout.
	watch := c.start("watch two", "watch", "--json", "--home", h2)
	if !eventually(10*time.Second, func() bool { return strings.Contains(watch.stderr.String(), "watching all threads") }) {
		t.Fatalf("watch printed no ready line in 10s; stdout %q stderr %q", watch.stdout.String(), watch.stderr.String())
	}
	var local struct{ ThreadID string }
	c.okJSON(&local, "thread", "create", "--json", "--home", h2)
	waitEvent(t, watch, 10*time.Second, "threadCreated for a thread created after the ready line", func(ev watchEvent) bool {
		return ev.Type == "threadCreated" && ev.ThreadID == local.ThreadID
	})

	var created struct{ ThreadID string }
	c.okJSON(&created, "thread", "create", "--member", id2.UserID, "--private-meta", "secret", "--json", "--home", h1)
	th := created.ThreadID
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(th) {
		t.Fatalf("thread create --json gave thread ID %q", th)
	}
	var sent struct{ MessageID, ThreadID string }
	c.okJSON(&sent, "send", th, "--data", "hello", "--json", "--home", h1)
	if sent.ThreadID != th || sent.MessageID == "" {
		t.Fatalf("send --json: %+v", sent)
	}
	if !c.waitMessage(h2, th, sent.MessageID, "hello", 15*time.Second) {
		t.Fatal("daemon 2 never showed the message decrypted")
	}
	var got jsonMessage
	c.okJSON(&got, "message", "get", sent.MessageID, "--json", "--home", h2)
	if got.StatusCode != 0 || got.text(t) != "hello" || got.ThreadID != th || got.Author != id1.UserID {
		t.Fatalf("message get on daemon 2: %+v", got)
	}
	// status: the daemon's health, for scripts and for people.
	var st struct {
		Peers, Threads int
		EventsStored   uint64
		LastSync       int64
	}
	eventually(10*time.Second, func() bool { c.okJSON(&st, "status", "--json", "--home", h2); return st.LastSync != 0 })
	if st.Peers < 1 || st.Threads != 2 || st.EventsStored < 2 || st.LastSync == 0 {
		t.Fatalf("status --json on daemon 2: %+v (want a peer, 2 threads, events stored, a sync done)", st)
	}
	if out := c.ok("status", "--home", h2); !strings.Contains(out, "threads        2") || !strings.Contains(out, " ago") {
		t.Fatalf("status on daemon 2:\n%s", out)
	}

	// An update changes only the fields it is given.
	var edited jsonMessage
	c.okJSON(&edited, "message", "update", sent.MessageID, "--public-meta", "tagged", "--json", "--home", h1)
	if pub, _ := base64.StdEncoding.DecodeString(edited.PublicMeta); string(pub) != "tagged" || edited.text(t) != "hello" {
		t.Fatalf("message update --public-meta: public meta %q, data %q (want tagged, hello)", pub, edited.text(t))
	}
	var thread struct {
		ThreadID    string
		PrivateMeta string
		Users       []string
	}
	c.okJSON(&thread, "thread", "get", th, "--json", "--home", h2)
	if pm, _ := base64.StdEncoding.DecodeString(thread.PrivateMeta); thread.ThreadID != th || string(pm) != "secret" {
		t.Fatalf("thread get on daemon 2: %+v (private meta %q)", thread, pm)
	}
	waitEvent(t, watch, 10*time.Second, "threadCreated for the thread", func(ev watchEvent) bool {
		return ev.Type == "threadCreated" && ev.ThreadID == th
	})
	waitEvent(t, watch, 10*time.Second, "threadNewMessage for the message", func(ev watchEvent) bool {
		return ev.Type == "threadNewMessage" && ev.ThreadID == th && ev.MessageID == sent.MessageID &&
			ev.Message != nil && ev.Message.StatusCode == 0 && ev.Message.text(t) == "hello"
	})

	// Data on stdin.
	r := c.runIn(strings.NewReader("from stdin"), "send", th, "--home", h1)
	stdinID := strings.TrimSpace(r.stdout)
	if r.code != 0 || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(stdinID) {
		t.Fatalf("send with data on stdin: %s", r)
	}
	if !c.waitMessage(h2, th, stdinID, "from stdin", 15*time.Second) {
		t.Fatal("the message sent from stdin never arrived")
	}

	// Human output names the thread.
	for _, h := range []string{h1, h2} {
		if out := c.ok("thread", "get", th, "--home", h); !strings.Contains(out, th) || !strings.Contains(out, "secret") {
			t.Fatalf("thread get on %s:\n%s", h, out)
		}
		if out := c.ok("thread", "list", "--home", h); !strings.Contains(out, th) {
			t.Fatalf("thread list on %s:\n%s", h, out)
		}
	}
	if out := c.ok("messages", th, "--home", h2); !strings.Contains(out, "hello") || !strings.Contains(out, "from stdin") {
		t.Fatalf("messages on daemon 2:\n%s", out)
	}

	// Daemon 2 records daemon 1 as a known peer (written every few
	// seconds), which is what lets it find daemon 1 again after a restart.
	known := eventually(10*time.Second, func() bool {
		b, err := os.ReadFile(filepath.Join(h2, "peers.json"))
		return err == nil && bytes.Contains(b, []byte(id1.PeerID))
	})
	if !known {
		t.Logf("NOTE: %s/peers.json does not name daemon 1 after 10s", h2)
	}

	// Restart daemon 2 (the watch stays attached, as a user's would).
	code, took := d2.stop(syscall.SIGTERM, 20*time.Second)
	t.Logf("daemon 2 exited with status %d %v after SIGTERM (a watch stream was open)", code, took.Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("daemon 2 exit status %d after SIGTERM\nstderr: %s", code, d2.stderr.String())
	}
	if _, err := os.Stat(filepath.Join(h2, "api.json")); !os.IsNotExist(err) {
		t.Fatalf("api.json left behind after a clean stop (stat: %v)", err)
	}
	wcode := watch.wait(10 * time.Second)
	t.Logf("watch exited with status %d when its daemon stopped; stderr: %q", wcode, strings.TrimSpace(watch.stderr.String()))
	if r := c.run("id", "--home", h2); r.code == 0 || strings.TrimSpace(r.stderr) != "weft: no daemon running for home "+h2+"; start it with weft daemon" {
		t.Fatalf("id while daemon 2 is stopped: %s", r)
	}

	var away struct{ MessageID string }
	c.okJSON(&away, "send", th, "--data", "while you were away", "--json", "--home", h1)

	d2, id2b := c.startDaemon(h2, loopback...)
	if id2b.UserID != id2.UserID || id2b.PeerID != id2.PeerID {
		t.Fatalf("daemon 2's identity changed across restart: %+v, was %+v", id2b, id2)
	}
	var l jsonMessages
	c.okJSON(&l, "messages", th, "--json", "--home", h2)
	for id, want := range map[string]string{sent.MessageID: "hello", stdinID: "from stdin"} {
		if m, ok := findMessage(l, id); !ok || m.StatusCode != 0 || m.text(t) != want {
			t.Fatalf("after restart, message %s (%q) is missing or unreadable: %+v", id, want, l)
		}
	}
	var threads struct {
		Items []struct{ ThreadID string }
	}
	c.okJSON(&threads, "thread", "list", "--json", "--home", h2)
	if len(threads.Items) != 2 { // the shared thread and the local one
		t.Fatalf("after restart, daemon 2 lists %d threads, want %d: %+v", len(threads.Items), 2, threads)
	}
	start := time.Now()
	if c.waitMessage(h2, th, away.MessageID, "while you were away", 20*time.Second) {
		t.Logf("daemon 2 caught up by itself %v after it was ready", time.Since(start).Round(time.Millisecond))
	} else {
		t.Logf("NOTE: automatic reconnection did not happen: daemon 2 had not caught up 20s after restart; connecting by hand")
		c.ok("connect", id1.Addrs[0], "--home", h2)
		if !c.waitMessage(h2, th, away.MessageID, "while you were away", 15*time.Second) {
			t.Fatal("daemon 2 never caught up with the message sent while it was stopped")
		}
	}
	code, took = d2.stop(syscall.SIGTERM, 20*time.Second)
	t.Logf("daemon 2 exited with status %d %v after SIGTERM (no watch stream open)", code, took.Round(time.Millisecond))
	if code != 0 {
		t.Errorf("daemon 2 exit status %d after the second SIGTERM", code)
	}
}

// oneLineFailure checks a failed command: non-zero status and a single stderr line
// containing one of the substrings.
func oneLineFailure(t *testing.T, what string, r result, wantCode int, subs ...string) {
	t.Helper()
	msg := strings.TrimRight(r.stderr, "\n")
	switch {
	case r.code == 0:
		t.Errorf("%s: succeeded, want a failure\n%s", what, r)
		return
	case wantCode != 0 && r.code != wantCode:
		t.Errorf("%s: exit status %d, want %d\n%s", what, r.code, wantCode, r)
	case msg == "" || strings.Contains(msg, "\n"):
		t.Errorf("%s: want one line on stderr, got %q", what, r.stderr)
	}
	for _, s := range subs {
		if strings.Contains(msg, s) {
			return
		}
	}
	t.Errorf("%s: stderr %q names none of %q", what, msg, subs)
}

func TestCLIBadInput(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	home := filepath.Join(t.TempDir(), "home")
	var ini struct{ Home, UserID string }
	c.okJSON(&ini, "init", "--home", home, "--json")
	if ini.Home != home || !strings.HasPrefix(ini.UserID, "weft1") {
		t.Fatalf("init --json: %+v", ini)
	}
	conf := filepath.Join(home, "weft.conf")
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^max_data = \d+$`)
	if !re.Match(b) {
		t.Fatalf("weft.conf has no max_data line:\n%s", b)
	}
	if err := os.WriteFile(conf, re.ReplaceAll(b, []byte("max_data = 1000")), 0o600); err != nil {
		t.Fatal(err)
	}
	_, id := c.startDaemon(home, loopback...)
	if id.UserID != ini.UserID {
		t.Fatalf("daemon runs user %s, init made %s", id.UserID, ini.UserID)
	}

	// A one-character typo in a real user ID fails its checksum.
	last := id.UserID[len(id.UserID)-1]
	typo := id.UserID[:len(id.UserID)-1] + map[bool]string{true: "q", false: "p"}[last != 'q']
	oneLineFailure(t, "member with a typo", c.run("thread", "create", "--member", typo, "--home", home), 1, "checksum")
	oneLineFailure(t, "truncated member", c.run("thread", "create", "--member", id.UserID[:20]+"typo", "--home", home), 1, "checksum", "malformed user ID")

	zeros := strings.Repeat("0", 64)
	oneLineFailure(t, "unknown thread", c.run("messages", zeros, "--home", home), 1, "not found")
	oneLineFailure(t, "unknown message", c.run("message", "get", zeros, "--home", home), 1, "not found")
	oneLineFailure(t, "malformed thread ID", c.run("messages", "abc", "--home", home), 2, "thread ID")

	var th struct{ ThreadID string }
	c.okJSON(&th, "thread", "create", "--json", "--home", home)
	oneLineFailure(t, "1001 bytes of data", c.run("send", th.ThreadID, "--data", strings.Repeat("x", 1001), "--home", home), 1, "too large", "exceeds")
	if r := c.run("send", th.ThreadID, "--data", strings.Repeat("x", 1000), "--home", home); r.code != 0 {
		t.Errorf("1000 bytes (the limit) refused: %s", r)
	}

	// No daemon: a home that does not exist, and one whose api.json names a
	// closed port (a daemon that was killed).
	none := filepath.Join(t.TempDir(), "none")
	want := "weft: no daemon running for home " + none + "; start it with weft daemon\n"
	if r := c.run("messages", zeros, "--home", none); r.code != 1 || r.stderr != want {
		t.Errorf("command without a daemon: %s\nwant stderr %q", r, want)
	}
	stale := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := os.WriteFile(filepath.Join(stale, "api.json"), []byte(`{"addr":"`+addr+`","token":"x","pid":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	want = "weft: no daemon running for home " + stale + "; start it with weft daemon\n"
	if r := c.run("thread", "list", "--home", stale); r.code != 1 || r.stderr != want {
		t.Errorf("command with a stale api.json: %s\nwant stderr %q", r, want)
	}

	oneLineFailure(t, "unknown command", c.run("frobnicate", "--home", home), 2, "unknown command")
}

// inNetns makes c run its commands in a network namespace that the test
// creates (only a loopback interface), so that a daemon with default flags
// (all interfaces, mDNS multicast) reaches nothing outside the test.
func inNetns(t *testing.T, c *cli) {
	t.Helper()
	unshare, err1 := exec.LookPath("unshare")
	nsenter, err2 := exec.LookPath("nsenter")
	if err1 != nil || err2 != nil || os.Geteuid() != 0 {
		t.Skip("needs root with unshare and nsenter to run default-flag daemons in a private network namespace")
	}
	holder := exec.Command(unshare, "--net", "sh", "-c", "(ip link set lo up || ifconfig lo up) 2>/dev/null || exit 3; echo ready; exec sleep 600")
	holder.SysProcAttr = dieWithTest()
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Skipf("cannot create a network namespace: %v", err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	buf := make([]byte, 6)
	if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "ready\n" {
		t.Skipf("network namespace did not come up: %v %q", err, buf)
	}
	c.prefix = []string{nsenter, "--net=/proc/" + strconv.Itoa(holder.Process.Pid) + "/ns/net"}
}

func TestDaemonFreshHomeAndLock(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	inNetns(t, c)
	home := filepath.Join(t.TempDir(), "fresh")
	d, id := c.startDaemon(home)
	if !strings.HasPrefix(id.UserID, "weft1") || id.PeerID == "" {
		t.Fatalf("id on a fresh home: %+v", id)
	}
	if strings.Contains(d.stderr.String(), "[zeroconf]") {
		t.Errorf("a dependency's raw log lines reached the daemon's stderr at the default level:\n%s", d.stderr.String())
	}
	if !strings.Contains(d.stderr.String(), "initialised "+home) {
		t.Errorf("daemon on a fresh home did not say it initialised it; stderr:\n%s", d.stderr.String())
	}
	fi, err := os.Stat(home)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("home mode %v, want no group or other access", fi.Mode().Perm())
	}
	for _, f := range []string{"api.json", "weft.conf", "keystore.json", "peer.key"} {
		fi, err := os.Stat(filepath.Join(home, f))
		if err != nil {
			t.Errorf("fresh home: %v", err)
			continue
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	ep, err := os.ReadFile(filepath.Join(home, "api.json"))
	if err != nil {
		t.Fatal(err)
	}

	r := c.run("daemon", "--home", home)
	if r.code == 0 {
		t.Fatalf("a second daemon on the same home succeeded: %s", r)
	}
	msg := strings.TrimSpace(r.stderr)
	if !strings.Contains(msg, "in use by another weft daemon") || !strings.Contains(msg, "locked") {
		t.Errorf("second daemon's message %q does not say the home is in use and locked", msg)
	}
	if d.exited() {
		t.Fatalf("the first daemon died: %v\n%s", d.waitErr, d.stderr.String())
	}
	if ep2, err := os.ReadFile(filepath.Join(home, "api.json")); err != nil || !bytes.Equal(ep, ep2) {
		t.Fatalf("the second daemon changed api.json: %v\n%s\nwas\n%s", err, ep2, ep)
	}
	var again idInfo
	c.okJSON(&again, "id", "--json", "--home", home)
	if again.UserID != id.UserID || again.PeerID != id.PeerID {
		t.Fatalf("id after the second daemon failed: %+v, was %+v", again, id)
	}
	c.ok("thread", "create", "--home", home)
}

func TestAPIListensOnLoopbackByDefault(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	home := filepath.Join(t.TempDir(), "home")
	_, id := c.startDaemon(home, "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns") // API from the default config
	b, err := os.ReadFile(filepath.Join(home, "api.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ep struct {
		Addr, Token string
		PID         int
	}
	if err := json.Unmarshal(b, &ep); err != nil {
		t.Fatalf("api.json: %v\n%s", err, b)
	}
	if !strings.HasPrefix(ep.Addr, "127.0.0.1:") || ep.Token == "" || ep.PID <= 0 {
		t.Fatalf("api.json %s: want a 127.0.0.1 address, a token and a pid", b)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	get := func(token string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest("GET", "http://"+ep.Addr+"/v1/id", nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	for name, token := range map[string]string{"no token": "", "wrong token": strings.Repeat("0", len(ep.Token))} {
		status, body := get(token)
		var e struct {
			Error struct{ Code, Message string }
		}
		if status != http.StatusUnauthorized || json.Unmarshal(body, &e) != nil || e.Error.Code != "unauthorized" {
			t.Errorf("%s: HTTP %d %s, want 401 with error code unauthorized", name, status, body)
		}
	}
	status, body := get(ep.Token)
	var got idInfo
	if status != http.StatusOK || json.Unmarshal(body, &got) != nil || got.UserID != id.UserID {
		t.Errorf("right token: HTTP %d %s, want 200 with user %s", status, body, id.UserID)
	}
}

// TestMDNSDiscovery: two daemons with default flags on one LAN (a network
// namespace the test creates, whose loopback carries multicast) find each
// other by mDNS, with no --peer and no connect, and exchange a message.
func TestMDNSDiscovery(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	inNetns(t, c)
	ipCmd := exec.Command(c.prefix[0], append(c.prefix[1:], "ip", "link", "set", "lo", "multicast", "on")...)
	if out, err := ipCmd.CombinedOutput(); err != nil {
		t.Skipf("cannot enable multicast on the namespace's loopback: %v %s", err, out)
	}
	h1, h2, h3 := filepath.Join(t.TempDir(), "one"), filepath.Join(t.TempDir(), "two"), filepath.Join(t.TempDir(), "quiet")
	_, id1 := c.startDaemon(h1)
	_, id2 := c.startDaemon(h2)
	_, id3 := c.startDaemon(h3, "--no-mdns") // on the same LAN, but neither announces nor looks
	if !eventually(30*time.Second, func() bool {
		return strings.Contains(c.ok("peers", "--home", h1), id2.PeerID) && strings.Contains(c.ok("peers", "--home", h2), id1.PeerID)
	}) {
		t.Fatalf("the daemons did not find each other by mDNS in 30s; peers of one: %q, of two: %q",
			c.ok("peers", "--home", h1), c.ok("peers", "--home", h2))
	}
	time.Sleep(3 * time.Second) // more than the two needed to find each other
	if p := c.ok("peers", "--home", h3); p != "" && !strings.Contains(p, "no peers") {
		t.Errorf("the --no-mdns daemon found peers: %q", p)
	}
	for _, h := range []string{h1, h2} {
		if p := c.ok("peers", "--home", h); strings.Contains(p, id3.PeerID) {
			t.Errorf("a daemon found the --no-mdns one: %q", p)
		}
	}
	var created struct{ ThreadID string }
	c.okJSON(&created, "thread", "create", "--member", id2.UserID, "--json", "--home", h1)
	var sent struct{ MessageID string }
	c.okJSON(&sent, "send", created.ThreadID, "--data", "found you", "--json", "--home", h1)
	if !c.waitMessage(h2, created.ThreadID, sent.MessageID, "found you", 20*time.Second) {
		t.Fatal("the message did not reach the daemon found by mDNS")
	}
}

// TestBackupRestoreCLI: `weft backup` of a running daemon writes a 0600
// file; `weft restore` makes a new home from it, on which a daemon starts
// with the same identity and the messages, decrypted. Restoring over an
// existing home, or from a file that is not a backup, fails clearly.
func TestBackupRestoreCLI(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	dir := t.TempDir()
	h1 := filepath.Join(dir, "one")
	d1, id1 := c.startDaemon(h1, loopback...)
	var th struct{ ThreadID string }
	c.okJSON(&th, "thread", "create", "--json", "--home", h1)
	var sent struct{ MessageID string }
	c.okJSON(&sent, "send", th.ThreadID, "--data", "kept safe", "--json", "--home", h1)

	file := filepath.Join(dir, "one.backup")
	c.ok("backup", file, "--home", h1)
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	d1.stop(syscall.SIGTERM, 10*time.Second)

	h2 := filepath.Join(dir, "two")
	if out := c.ok("restore", file, "--home", h2); !strings.Contains(out, "restored into "+h2) {
		t.Fatalf("restore said %q", out)
	}
	_, id2 := c.startDaemon(h2, loopback...)
	// The same user, on a new node (a new peer ID and new devices), so
	// that it can run beside the original.
	if id2.UserID != id1.UserID || id2.PeerID == id1.PeerID {
		t.Fatalf("restored node is %+v, was %+v", id2, id1)
	}
	if !c.waitMessage(h2, th.ThreadID, sent.MessageID, "kept safe", 10*time.Second) {
		t.Fatal("the message is not readable on the restored node")
	}

	oneLineFailure(t, "restore over a home", c.run("restore", file, "--home", h2), 1, "not empty")
	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, []byte("not a backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	oneLineFailure(t, "restore from junk", c.run("restore", junk, "--home", filepath.Join(dir, "three")), 1, "not a weft backup")
	if _, err := os.Stat(filepath.Join(dir, "three")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed restore left a home behind: %v", err)
	}
}
