package main

// The small internet the TestInternet* tests build out of network
// namespaces, and what they measure it with.
//
//	           public segment 11.0.0.0/24 (bridge br0 in "pub")
//	   boot 11.0.0.1 (bootstrap, DHT server, relay)   boot2 11.0.0.10 (the same,
//	      |                     |                |     started when Bob moves)
//	  routerA wan 11.0.0.2   routerB 11.0.0.3   routerC 11.0.0.4 (refuses boot)
//	  lan 192.168.1.1/24     192.168.2.1/24     192.168.3.1/24
//	      |                     |                |
//	  alice 192.168.1.2      bob eth0 .2.2      bob eth1 .3.2 (down until Bob
//	                                                   moves)
//
// Every router masquerades out of wan (port-preserving by default, or
// with randomised ports) and lets in only what belongs to connections
// its inside opened. No route joins two private segments. Counters on
// the public bridge count the bytes between the relay (boot) and each
// router, and the bytes bridged from one router to another (direct
// home-to-home traffic, which never touches the relay).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/api"
)

// netns is a network namespace held open by a sleeping process.
type netns struct {
	name string
	pid  int
}

func (n netns) path() string { return "/proc/" + strconv.Itoa(n.pid) + "/ns/net" }

// newNetns creates a namespace with its loopback up; it dies with the test.
func newNetns(t *testing.T, name string) netns {
	t.Helper()
	holder := exec.Command("unshare", "--net", "sh", "-c", "ip link set lo up || exit 3; echo ready; exec sleep 3600")
	holder.SysProcAttr = dieWithTest()
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Skipf("cannot create a network namespace: %v", err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Skipf("network namespace %s did not come up: %v %q", name, err, line)
	}
	return netns{name: name, pid: holder.Process.Pid}
}

// sh runs a shell command line inside the namespace.
func (n netns) sh(t *testing.T, cmdline string) string {
	t.Helper()
	out, err := exec.Command("nsenter", "--net="+n.path(), "sh", "-ec", cmdline).CombinedOutput()
	if err != nil {
		t.Fatalf("in %s: %s: %v\n%s", n.name, cmdline, err, out)
	}
	return string(out)
}

// dial opens a connection from inside the namespace: the socket is made
// on a thread that entered the namespace, and stays in that namespace
// afterwards; the thread then returns to the test's own namespace. (It
// must not die instead: a daemon forked from it earlier would get its
// parent-death signal.)
func (n netns) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- res{nil, err}
			return
		}
		defer home.Close()
		f, err := os.Open(n.path())
		if err != nil {
			runtime.UnlockOSThread()
			ch <- res{nil, err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- res{nil, fmt.Errorf("setns %s: %w", n.name, err)}
			return
		}
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err != nil {
			panic("cannot return a thread to the test's network namespace: " + err.Error())
		}
		runtime.UnlockOSThread()
		ch <- res{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// veth links two namespaces with a veth pair, a's end named an, b's bn.
func veth(t *testing.T, a netns, an string, b netns, bn string) {
	t.Helper()
	a.sh(t, fmt.Sprintf("ip link add %s type veth peer name %s netns %d", an, bn, b.pid))
}

// router makes ns a NAT router: masquerade out of wan (with flags, e.g.
// "random,fully-random" for randomised source ports), and let in only
// what belongs to connections opened from lan.
func router(t *testing.T, r netns, flags string) {
	t.Helper()
	r.sh(t, "echo 1 > /proc/sys/net/ipv4/ip_forward")
	r.sh(t, fmt.Sprintf(`nft -f - <<'EOF'
table ip nat {
	chain outgoing {
		type nat hook postrouting priority srcnat;
		oifname "wan" masquerade %s
	}
}
table ip filter {
	chain forwarding {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "lan" oifname "wan" accept
	}
	chain incoming {
		type filter hook input priority filter; policy accept;
		iifname "wan" ct state new drop
	}
}
EOF`, flags))
}

// internet is the topology above with its daemons.
type internet struct {
	t                       *testing.T
	pub, ra, rb, rc         netns
	aliceNS, bobNS          netns
	base                    *cli
	boot, boot2, alice, bob *daemon
	bootAddr                string
	randomPorts             bool
	daemonsAt               time.Time
}

// newInternet builds the namespaces, links and NATs (randomPorts: the
// routers randomise source ports, which defeats hole punching) and
// checks that the topology holds. It starts no daemon.
func newInternet(t *testing.T, randomPorts bool) *internet {
	t.Helper()
	if os.Getenv("WEFT_NETNS_TEST") == "" {
		t.Skip("set WEFT_NETNS_TEST=1 to run (needs root, ip, nft; a few minutes; .ci/run does)")
	}
	for _, tool := range []string{"unshare", "nsenter", "ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	start := time.Now()
	in := &internet{t: t, randomPorts: randomPorts}
	in.pub, in.ra, in.rb, in.rc = newNetns(t, "pub"), newNetns(t, "routerA"), newNetns(t, "routerB"), newNetns(t, "routerC")
	in.aliceNS, in.bobNS = newNetns(t, "alice"), newNetns(t, "bob")
	flags := ""
	if randomPorts {
		flags = "random,fully-random"
	}
	in.pub.sh(t, "ip link add br0 type bridge && ip addr add 11.0.0.1/24 dev br0 && ip link set br0 up")
	for i, r := range []netns{in.ra, in.rb, in.rc} {
		port := fmt.Sprintf("p%d", i)
		veth(t, in.pub, port, r, "wan")
		in.pub.sh(t, fmt.Sprintf("ip link set %s master br0 && ip link set %s up", port, port))
		r.sh(t, fmt.Sprintf("ip addr add 11.0.0.%d/24 dev wan && ip link set wan up", i+2))
	}
	for i, pair := range [][2]netns{{in.ra, in.aliceNS}, {in.rb, in.bobNS}} {
		r, h := pair[0], pair[1]
		veth(t, r, "lan", h, "eth0")
		r.sh(t, fmt.Sprintf("ip addr add 192.168.%d.1/24 dev lan && ip link set lan up", i+1))
		h.sh(t, fmt.Sprintf("ip addr add 192.168.%d.2/24 dev eth0 && ip link set eth0 up && ip route add default via 192.168.%d.1", i+1, i+1))
	}
	// Bob's second home: linked now, used when he moves.
	veth(t, in.rc, "lan", in.bobNS, "eth1")
	in.rc.sh(t, "ip addr add 192.168.3.1/24 dev lan && ip link set lan up")
	for _, r := range []netns{in.ra, in.rb, in.rc} {
		router(t, r, flags)
	}
	// Bob's second home does not let its inside reach the first relay
	// (11.0.0.1); the second relay (pub2, 11.0.0.10, started when Bob
	// moves) is the only one it can use.
	in.rc.sh(t, "nft insert rule ip filter forwarding ip daddr 11.0.0.1 reject")
	// Byte counters on the public bridge: relay_X counts both ways
	// between boot and router X; homes counts what the bridge forwards
	// from one router to another.
	in.pub.sh(t, `nft -f - <<'EOF'
table bridge acct {
	counter relay_a {}
	counter relay_b {}
	counter relay_c {}
	counter homes {}
	counter relay2 {}
	chain forwarded {
		type filter hook forward priority 0;
		ip saddr 11.0.0.2-11.0.0.4 ip daddr 11.0.0.2-11.0.0.4 counter name homes
		ip saddr 11.0.0.10 counter name relay2
		ip daddr 11.0.0.10 counter name relay2
	}
	chain toboot {
		type filter hook input priority 0;
		ip saddr 11.0.0.2 counter name relay_a
		ip saddr 11.0.0.3 counter name relay_b
		ip saddr 11.0.0.4 counter name relay_c
	}
	chain fromboot {
		type filter hook output priority 0;
		ip daddr 11.0.0.2 counter name relay_a
		ip daddr 11.0.0.3 counter name relay_b
		ip daddr 11.0.0.4 counter name relay_c
	}
}
EOF`)
	t.Logf("internet built in %v (NATs: masquerade %s)", time.Since(start).Round(time.Millisecond), map[bool]string{false: "port-preserving", true: "random,fully-random"}[randomPorts])
	in.base = newCLI(t)
	return in
}

// tcpReach reports whether a TCP connection from ns to host/port opens.
func tcpReach(from netns, to string) bool {
	return exec.Command("nsenter", "--net="+from.path(), "timeout", "3", "bash", "-c", "echo > /dev/tcp/"+to).Run() == nil
}

// counters reads the public bridge's byte counters.
func (in *internet) counters() map[string]uint64 {
	in.t.Helper()
	out := in.pub.sh(in.t, "nft -j list counters table bridge acct")
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Name  string
				Bytes uint64
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		in.t.Fatalf("nft -j list counters: %v\n%s", err, out)
	}
	m := map[string]uint64{}
	for _, e := range doc.Nftables {
		if e.Counter != nil {
			m[e.Counter.Name] = e.Counter.Bytes
		}
	}
	if len(m) != 5 {
		in.t.Fatalf("nft counters: %v\n%s", m, out)
	}
	return m
}

// relayBytes is what crossed the relay's links to every home.
func relayBytes(c map[string]uint64) uint64 { return c["relay_a"] + c["relay_b"] + c["relay_c"] }

// startBoot starts the public bootstrap + relay node.
func (in *internet) startBoot() {
	in.boot = &daemon{in: in, name: "boot", ns: in.pub, home: filepath.Join(in.t.TempDir(), "boot"),
		args: []string{"--listen", "/ip4/11.0.0.1/tcp/4001", "--listen", "/ip4/11.0.0.1/udp/4001/quic-v1",
			"--no-mdns", "--relay-service", "on", "--api", "127.0.0.1:0", "--log-format", "json", "--log-level", "debug"}}
	in.boot.start()
	in.bootAddr = "/ip4/11.0.0.1/tcp/4001/p2p/" + in.boot.id.PeerID
}

// startSecondRelay starts a second public bootstrap + relay node on the
// public segment (11.0.0.10), bootstrapped from the first.
func (in *internet) startSecondRelay() string {
	t := in.t
	pub2 := newNetns(t, "pub2")
	veth(t, in.pub, "p3", pub2, "eth0")
	in.pub.sh(t, "ip link set p3 master br0 && ip link set p3 up")
	pub2.sh(t, "ip addr add 11.0.0.10/24 dev eth0 && ip link set eth0 up")
	in.boot2 = &daemon{in: in, name: "boot2", ns: pub2, home: filepath.Join(t.TempDir(), "boot2"),
		args: []string{"--listen", "/ip4/11.0.0.10/tcp/4001", "--listen", "/ip4/11.0.0.10/udp/4001/quic-v1",
			"--no-mdns", "--relay-service", "on", "--bootstrap", in.bootAddr, "--api", "127.0.0.1:0", "--log-format", "json", "--log-level", "debug"}}
	in.boot2.start()
	return "/ip4/11.0.0.10/tcp/4001/p2p/" + in.boot2.id.PeerID
}

// startHomes starts Alice's and Bob's nodes, which know only the
// bootstrap address, and checks the topology.
func (in *internet) startHomes() {
	t := in.t
	home := []string{"--listen", "/ip4/0.0.0.0/tcp/4001", "--listen", "/ip4/0.0.0.0/udp/4001/quic-v1", "--no-mdns",
		"--bootstrap", in.bootAddr, "--api", "127.0.0.1:0", "--log-format", "json", "--log-level", "debug"}
	dir := t.TempDir()
	in.alice = &daemon{in: in, name: "alice", ns: in.aliceNS, home: filepath.Join(dir, "alice"), args: home}
	in.bob = &daemon{in: in, name: "bob", ns: in.bobNS, home: filepath.Join(dir, "bob"), args: home}
	in.daemonsAt = time.Now()
	in.alice.start()
	in.bob.start()
	// The topology holds: a home reaches the public node, not the other
	// home, and the public segment reaches neither home.
	if !tcpReach(in.aliceNS, "11.0.0.1/4001") || !tcpReach(in.bobNS, "11.0.0.1/4001") {
		t.Fatal("a home does not reach the public node: the test's internet is wrong")
	}
	if tcpReach(in.aliceNS, "192.168.2.2/4001") || tcpReach(in.pub, "192.168.1.2/4001") || tcpReach(in.pub, "11.0.0.2/4001") || tcpReach(in.pub, "11.0.0.3/4001") {
		t.Fatal("a home is reachable from outside its NAT: the test's internet is wrong")
	}
}

// dumpLogs logs what helps when a step fails.
func (in *internet) dumpLogs() {
	for _, d := range []*daemon{in.alice, in.bob, in.boot, in.boot2} {
		if d != nil {
			logStatus(in.t, d.cli(), d.home, d.name)
			in.t.Logf("%s stderr (tail):\n%s", d.name, tail(d.p.stderr.String(), 40))
		}
	}
}

// daemon is one weft node of the internet.
type daemon struct {
	in   *internet
	name string
	ns   netns
	home string
	args []string
	p    *proc
	id   idInfo
	hc   *http.Client
	ep   api.Endpoint
	// logs of earlier runs of this home (before a restart)
	before string
}

func (d *daemon) cli() *cli {
	c := *d.in.base
	c.prefix = []string{"nsenter", "--net=" + d.ns.path()}
	return &c
}

func (d *daemon) start() {
	d.in.t.Helper()
	d.p, d.id = d.cli().startDaemon(d.home, d.args...)
	ep, err := api.ReadEndpoint(d.home)
	if err != nil {
		d.in.t.Fatalf("%s: %v", d.name, err)
	}
	d.ep = ep
	d.hc = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.ns.dial}}
}

// stop ends the daemon with SIGTERM and keeps its log.
func (d *daemon) stop() {
	d.in.t.Helper()
	if code, took := d.p.stop(syscall.SIGTERM, 30*time.Second); code != 0 {
		d.in.t.Fatalf("%s exited %d after SIGTERM (%v)", d.name, code, took)
	}
	d.before += d.p.stderr.String()
}

// call makes one API request to the daemon from inside its namespace.
func (d *daemon) call(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+d.ep.Addr+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+d.ep.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// send posts a message and returns its ID.
func (d *daemon) send(thread, text string) string {
	d.in.t.Helper()
	var out struct{ MessageID string }
	if err := d.call("POST", "/v1/threads/"+thread+"/messages", api.SendRequest{Data: []byte(text)}, &out); err != nil {
		d.in.t.Fatalf("%s: send: %v", d.name, err)
	}
	return out.MessageID
}

// messages lists a thread's messages (all of them).
func (d *daemon) messages(thread string) (jsonMessages, error) {
	var l jsonMessages
	err := d.call("GET", "/v1/threads/"+thread+"/messages?limit=100000", nil, &l)
	return l, err
}

// count is how many of a thread's messages the node holds decrypted (0
// if it does not have the thread yet).
func (d *daemon) count(thread string) int {
	l, err := d.messages(thread)
	if err != nil {
		return 0
	}
	n := 0
	for _, m := range l.Items {
		if m.StatusCode == 0 {
			n++
		}
	}
	return n
}

// waitCount waits until the node holds at least n decrypted messages of
// the thread, polling every 200 ms; it returns how long that took.
func (d *daemon) waitCount(thread string, n int, timeout time.Duration) (time.Duration, bool) {
	start := time.Now()
	for {
		if d.count(thread) >= n {
			return time.Since(start), true
		}
		if time.Since(start) > timeout {
			return time.Since(start), false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// netStatus is the part of /v1/status the tests read.
type netStatus struct {
	Network struct {
		Reachability          string
		Relays                []string
		RelayService          bool
		DHT                   string
		DHTPeers              int
		Lookups, LookupsFound uint64
		RecordsPublished      uint64
		DirectPeers           int
		RelayedPeers          int
	}
}

func (d *daemon) status() netStatus {
	d.in.t.Helper()
	var st netStatus
	d.cli().okJSON(&st, "status", "--json", "--home", d.home)
	return st
}

type peerEntry struct {
	PeerID  string
	Relayed bool
	Addr    string
	Inbound bool
}

func (d *daemon) peers() []peerEntry {
	d.in.t.Helper()
	var ps []peerEntry
	d.cli().okJSON(&ps, "peers", "--json", "--home", d.home)
	return ps
}

// peer is the entry for peer ID p among d's peers.
func (d *daemon) peer(p string) (peerEntry, bool) {
	for _, e := range d.peers() {
		if e.PeerID == p {
			return e, true
		}
	}
	return peerEntry{}, false
}

// cpuSeconds is the user+system CPU time the daemon process has used.
func (d *daemon) cpuSeconds() float64 {
	d.in.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.p.cmd.Process.Pid))
	if err != nil {
		d.in.t.Fatal(err)
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 (1-based), in clock ticks.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// logLines returns the daemon's JSON log lines (this run and earlier
// ones) whose msg is msg.
func (d *daemon) logLines(msg string) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(d.before+d.p.stderr.String(), "\n") {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func logStatus(t *testing.T, c *cli, home, name string) {
	t.Helper()
	r := c.run("status", "--home", home)
	t.Logf("%s status:\n%s", name, r.stdout)
	r = c.run("peers", "--home", home)
	t.Logf("%s peers:\n%s", name, r.stdout)
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
