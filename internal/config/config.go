// Package config reads and writes the weft daemon's configuration file: a
// small "key = value" format with # comments, where list settings repeat
// their key. Command-line flags override what the file says.
package config

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// FileName is the configuration file's name in a node's home.
const FileName = "weft.conf"

// Config is the daemon's configuration.
type Config struct {
	Listen       []string
	API          string
	Peers        []string
	Serve        []string
	MDNS         bool
	LogLevel     string // debug, info, warn, error
	LogFormat    string // text or json
	MaxData      int
	MaxMeta      int
	SyncInterval time.Duration
	// Internet reach (see docs/design.md §9).
	Bootstrap    []string
	DHT          bool
	Reachability string // auto, public or private
	RelayService string // auto, on or off
	PortMapping  bool
}

// Default returns the defaults that a missing setting takes.
func Default() Config {
	return Config{
		Listen:       []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"},
		API:          "127.0.0.1:0",
		MDNS:         true,
		LogLevel:     "info",
		LogFormat:    "text",
		MaxData:      512 << 10,
		MaxMeta:      16 << 10,
		SyncInterval: 30 * time.Second,
		DHT:          true,
		Reachability: "auto",
		RelayService: "auto",
		PortMapping:  true,
	}
}

// Template is the commented file `weft init` writes.
const Template = `# weft daemon configuration. Command-line flags override these settings;
# a list setting repeats its key, one value per line.

# libp2p listen addresses. Port 0 lets the system pick a free port; set fixed
# ports (e.g. /ip4/0.0.0.0/tcp/4001) on an always-on node that others dial.
listen = /ip4/0.0.0.0/tcp/0
listen = /ip4/0.0.0.0/udp/0/quic-v1

# The local HTTP/JSON API. It requires the token in api.json; keep it on
# loopback unless you mean to expose it. Port 0 picks a free port.
api = 127.0.0.1:0

# Peers dialled at start and redialled when they drop (full multiaddrs
# ending in /p2p/PEERID).
# peer = /ip4/203.0.113.7/tcp/4001/p2p/12D3KooW...

# Bridge role: replicate every thread these users are in, holding no keys.
# serve = weft1...

# LAN discovery.
mdns = true

# Logging: level debug, info, warn or error; format text or json.
log_level = info
log_format = text

# Size limits in bytes (replicas of a thread should agree on them).
max_data = 524288
max_meta = 16384

# How often to reconcile with every connected peer.
sync_interval = 30s

# Internet reach. Bootstrap nodes (full multiaddrs, typically an always-on
# bridge) seed the weft DHT and relay for this node when it is behind NAT.
# bootstrap = /ip4/203.0.113.7/tcp/4001/p2p/12D3KooW...

# The DHT publishes, for each local user, a record signed by the user's key
# that maps the user ID to this node's peer ID and addresses (so others
# find it by user ID), and looks up the members of this node's threads.
# false keeps the node to LAN discovery, peers and bootstrap nodes.
dht = true

# auto lets AutoNAT find out whether this node is publicly reachable;
# public or private forces it.
reachability = auto

# Relay for NATed nodes: auto (while publicly reachable), on (always; the
# node then counts itself public), off.
relay_service = auto

# Ask the router for a port mapping (UPnP / NAT-PMP).
port_mapping = true
`

// Load reads the file at path; a missing file gives the defaults.
func Load(path string) (Config, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return Default(), nil
	}
	if err != nil {
		return Config{}, err
	}
	defer f.Close()
	c, err := Parse(f)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse reads a configuration. Unknown keys and bad values are errors that
// name the line.
func Parse(r io.Reader) (Config, error) {
	c := Default()
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		key, value, ok := strings.Cut(text, "=")
		if !ok {
			return c, fmt.Errorf("line %d: want key = value, got %q", line, text)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		bad := func(err error) error { return fmt.Errorf("line %d: %s: %v", line, key, err) }
		list := func(dst *[]string) {
			if !seen[key] {
				*dst = nil // the file's list replaces the default
			}
			*dst = append(*dst, value)
		}
		switch key {
		case "listen":
			list(&c.Listen)
		case "peer":
			list(&c.Peers)
		case "serve":
			list(&c.Serve)
		case "bootstrap":
			list(&c.Bootstrap)
		case "dht", "port_mapping":
			v, err := strconv.ParseBool(value)
			if err != nil {
				return c, bad(err)
			}
			if key == "dht" {
				c.DHT = v
			} else {
				c.PortMapping = v
			}
		case "reachability":
			if !oneOf(value, "auto", "public", "private") {
				return c, bad(fmt.Errorf("want auto, public or private, not %q", value))
			}
			c.Reachability = value
		case "relay_service":
			if !oneOf(value, "auto", "on", "off") {
				return c, bad(fmt.Errorf("want auto, on or off, not %q", value))
			}
			c.RelayService = value
		case "api":
			c.API = value
		case "mdns":
			v, err := strconv.ParseBool(value)
			if err != nil {
				return c, bad(err)
			}
			c.MDNS = v
		case "log_level":
			if !oneOf(value, "debug", "info", "warn", "error") {
				return c, bad(fmt.Errorf("want debug, info, warn or error, not %q", value))
			}
			c.LogLevel = value
		case "log_format":
			if !oneOf(value, "text", "json") {
				return c, bad(fmt.Errorf("want text or json, not %q", value))
			}
			c.LogFormat = value
		case "max_data", "max_meta":
			v, err := strconv.Atoi(value)
			if err != nil || v <= 0 {
				return c, bad(fmt.Errorf("want a positive number of bytes, not %q", value))
			}
			if key == "max_data" {
				c.MaxData = v
			} else {
				c.MaxMeta = v
			}
		case "sync_interval":
			d, err := time.ParseDuration(value)
			if err != nil || d <= 0 {
				return c, bad(fmt.Errorf("want a duration such as 30s, not %q", value))
			}
			c.SyncInterval = d
		default:
			return c, fmt.Errorf("line %d: unknown setting %q", line, key)
		}
		seen[key] = true
	}
	return c, sc.Err()
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}
