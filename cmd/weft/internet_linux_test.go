package main

// TestInternet builds a small internet out of network namespaces and
// checks that two users behind NAT, who know only each other's user ID
// and a bootstrap node's address, exchange messages: the DHT finds each
// user's node, AutoNAT finds them private, AutoRelay reserves a slot on
// the bootstrap node, and sync runs over the relayed connection.
//
//	           public segment 11.0.0.0/24 (bridge in "pub")
//	   boot 11.0.0.1 (bootstrap, DHT server, relay)
//	      |                              |
//	  routerA wan 11.0.0.2          routerB wan 11.0.0.3
//	  masquerade, stateful          masquerade, stateful
//	  lan 192.168.1.1/24            lan 192.168.2.1/24
//	      |                              |
//	  alice 192.168.1.2             bob 192.168.2.2
//
// No route joins the two private segments, and neither router lets in a
// connection that its inside did not open.

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
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
func (n netns) sh(t *testing.T, cmdline string) {
	t.Helper()
	out, err := exec.Command("nsenter", "--net="+n.path(), "sh", "-ec", cmdline).CombinedOutput()
	if err != nil {
		t.Fatalf("in %s: %s: %v\n%s", n.name, cmdline, err, out)
	}
}

// veth links two namespaces with a veth pair, a's end named an, b's bn.
func veth(t *testing.T, a netns, an string, b netns, bn string) {
	t.Helper()
	a.sh(t, fmt.Sprintf("ip link add %s type veth peer name %s netns %d", an, bn, b.pid))
}

// router makes ns a NAT router: masquerade out of wan, and let in only
// what belongs to connections opened from lan.
func router(t *testing.T, r netns) {
	t.Helper()
	r.sh(t, "echo 1 > /proc/sys/net/ipv4/ip_forward")
	r.sh(t, `nft -f - <<'EOF'
table ip nat {
	chain outgoing { type nat hook postrouting priority srcnat; oifname "wan" masquerade; }
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
EOF`)
}

func TestInternet(t *testing.T) {
	if os.Getenv("WEFT_NETNS_TEST") == "" {
		t.Skip("set WEFT_NETNS_TEST=1 to run (needs root, ip, nft; about a minute; .ci/run does)")
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
	pub, ra, rb := newNetns(t, "pub"), newNetns(t, "routerA"), newNetns(t, "routerB")
	alice, bob := newNetns(t, "alice"), newNetns(t, "bob")

	pub.sh(t, "ip link add br0 type bridge && ip addr add 11.0.0.1/24 dev br0 && ip link set br0 up")
	for i, r := range []netns{ra, rb} {
		port := fmt.Sprintf("p%d", i)
		veth(t, pub, port, r, "wan")
		pub.sh(t, fmt.Sprintf("ip link set %s master br0 && ip link set %s up", port, port))
		r.sh(t, fmt.Sprintf("ip addr add 11.0.0.%d/24 dev wan && ip link set wan up", i+2))
	}
	for i, pair := range [][2]netns{{ra, alice}, {rb, bob}} {
		r, h := pair[0], pair[1]
		veth(t, r, "lan", h, "eth0")
		r.sh(t, fmt.Sprintf("ip addr add 192.168.%d.1/24 dev lan && ip link set lan up", i+1))
		h.sh(t, fmt.Sprintf("ip addr add 192.168.%d.2/24 dev eth0 && ip link set eth0 up && ip route add default via 192.168.%d.1", i+1, i+1))
		router(t, r)
	}
	t.Logf("internet built in %v", time.Since(start).Round(time.Millisecond))

	base := newCLI(t)
	in := func(n netns) *cli {
		c := *base
		c.prefix = []string{"nsenter", "--net=" + n.path()}
		return &c
	}
	cBoot, cAlice, cBob := in(pub), in(alice), in(bob)
	dir := t.TempDir()
	hBoot, hAlice, hBob := filepath.Join(dir, "boot"), filepath.Join(dir, "alice"), filepath.Join(dir, "bob")
	bootD, bootID := cBoot.startDaemon(hBoot, "--listen", "/ip4/11.0.0.1/tcp/4001", "--listen", "/ip4/11.0.0.1/udp/4001/quic-v1",
		"--no-mdns", "--relay-service", "on", "--api", "127.0.0.1:0", "--json", "--log-level", "debug")
	bootAddr := "/ip4/11.0.0.1/tcp/4001/p2p/" + bootID.PeerID
	home := []string{"--listen", "/ip4/0.0.0.0/tcp/4001", "--listen", "/ip4/0.0.0.0/udp/4001/quic-v1", "--no-mdns",
		"--bootstrap", bootAddr, "--api", "127.0.0.1:0", "--json", "--log-level", "debug"}
	daemonsAt := time.Now()
	aliceD, aliceID := cAlice.startDaemon(hAlice, home...)
	bobD, bobID := cBob.startDaemon(hBob, home...)
	_ = bootD
	// The topology holds: a home reaches the public node, not the other
	// home, and the public segment reaches neither home.
	tcp := func(from netns, to string) bool {
		return exec.Command("nsenter", "--net="+from.path(), "timeout", "3", "bash", "-c", "echo > /dev/tcp/"+to).Run() == nil
	}
	if !tcp(alice, "11.0.0.1/4001") || !tcp(bob, "11.0.0.1/4001") {
		t.Fatal("a home does not reach the public node: the test's internet is wrong")
	}
	if tcp(alice, "192.168.2.2/4001") || tcp(pub, "192.168.1.2/4001") || tcp(pub, "11.0.0.2/4001") {
		t.Fatal("a home is reachable from outside its NAT: the test's internet is wrong")
	}

	// Alice knows only Bob's user ID (and the bootstrap address).
	var created struct{ ThreadID string }
	cAlice.okJSON(&created, "thread", "create", "--member", bobID.UserID, "--json", "--home", hAlice)
	var sent struct{ MessageID string }
	cAlice.okJSON(&sent, "send", created.ThreadID, "--data", "hello bob, across two NATs", "--json", "--home", hAlice)
	if !cBob.waitMessage(hBob, created.ThreadID, sent.MessageID, "hello bob, across two NATs", 150*time.Second) {
		logStatus(t, cAlice, hAlice, "alice")
		logStatus(t, cBob, hBob, "bob")
		logStatus(t, cBoot, hBoot, "boot")
		t.Logf("alice stderr:\n%s", tail(aliceD.stderr.String(), 60))
		t.Logf("bob stderr:\n%s", tail(bobD.stderr.String(), 60))
		t.Fatal("Bob's node did not receive Alice's message")
	}
	first := time.Since(daemonsAt)
	t.Logf("Bob read Alice's message %v after the daemons started", first.Round(100*time.Millisecond))

	var reply struct{ MessageID string }
	replyAt := time.Now()
	cBob.okJSON(&reply, "send", created.ThreadID, "--data", "hi alice, got it", "--json", "--home", hBob)
	if !cAlice.waitMessage(hAlice, created.ThreadID, reply.MessageID, "hi alice, got it", 30*time.Second) {
		t.Fatal("Alice's node did not receive Bob's reply")
	}
	t.Logf("Bob's reply reached Alice in %v", time.Since(replyAt).Round(100*time.Millisecond))

	// What the nodes report: both private with a reservation on the
	// bootstrap node, the bootstrap public and relaying, and Alice's
	// connection to Bob's node relayed (no route joins their segments).
	var st struct {
		Network struct {
			Reachability string
			Relays       []string
			RelayService bool
			DHT          string
		}
	}
	for _, c := range []struct {
		cli  *cli
		home string
		want string
	}{{cAlice, hAlice, "private"}, {cBob, hBob, "private"}, {cBoot, hBoot, "public"}} {
		c.cli.okJSON(&st, "status", "--json", "--home", c.home)
		if st.Network.Reachability != c.want {
			t.Errorf("%s: reachability %q, want %q", filepath.Base(c.home), st.Network.Reachability, c.want)
		}
		if c.want == "private" && (len(st.Network.Relays) != 1 || st.Network.Relays[0] != bootID.PeerID || st.Network.DHT != "client") {
			t.Errorf("%s: relays %v, DHT %s; want a reservation on the bootstrap node, client", filepath.Base(c.home), st.Network.Relays, st.Network.DHT)
		}
		if c.want == "public" && (!st.Network.RelayService || st.Network.DHT != "server") {
			t.Errorf("boot: relay service %v, DHT %s; want true, server", st.Network.RelayService, st.Network.DHT)
		}
	}
	var peers []struct {
		PeerID  string
		Relayed bool
		Addr    string
	}
	cAlice.okJSON(&peers, "peers", "--json", "--home", hAlice)
	found := false
	for _, p := range peers {
		if p.PeerID == bobID.PeerID {
			found = true
			t.Logf("alice -> bob: relayed %v via %s", p.Relayed, p.Addr)
			if !p.Relayed {
				t.Logf("the connection is direct: hole punching succeeded")
			}
		}
	}
	if !found {
		t.Errorf("Alice's peers do not list Bob's node: %+v", peers)
	}
	_ = aliceID
	t.Logf("whole test %v", time.Since(start).Round(100*time.Millisecond))
	for name, d := range map[string]*proc{"alice": aliceD, "bob": bobD} {
		t.Logf("%s's network log:\n%s", name, grepLines(d.stderr.String(), "reachability", "published user record", "reached member", "relay", "sync", "connectedness"))
	}
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

// grepLines keeps the lines of s that contain one of words.
func grepLines(s string, words ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, w := range words {
			if strings.Contains(l, w) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
