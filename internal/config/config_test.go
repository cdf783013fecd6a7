package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestTemplateParsesToDefaults(t *testing.T) {
	c, err := Parse(strings.NewReader(Template))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Fatalf("template gives %+v, defaults are %+v", c, Default())
	}
}

func TestParse(t *testing.T) {
	c, err := Parse(strings.NewReader("listen = /ip4/127.0.0.1/tcp/4001\nlisten=/ip4/127.0.0.1/udp/4001/quic-v1\n# c\npeer = /ip4/1.2.3.4/tcp/1/p2p/x\nmdns = false\nsync_interval = 5s\nmax_data = 1000\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Listen) != 2 || c.Listen[1] != "/ip4/127.0.0.1/udp/4001/quic-v1" || c.MDNS || c.SyncInterval != 5*time.Second || c.MaxData != 1000 || len(c.Peers) != 1 {
		t.Fatalf("%+v", c)
	}
	for _, bad := range []string{"nonsense", "colour = blue", "mdns = maybe", "max_data = -1", "log_level = loud", "sync_interval = soon"} {
		if _, err := Parse(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestParseInternetReach(t *testing.T) {
	c, err := Parse(strings.NewReader("bootstrap = /ip4/11.0.0.1/tcp/4001/p2p/a\nbootstrap = /ip4/11.0.0.2/tcp/4001/p2p/b\ndht = false\nreachability = public\nrelay_service = on\nport_mapping = false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Bootstrap) != 2 || c.DHT || c.Reachability != "public" || c.RelayService != "on" || c.PortMapping {
		t.Fatalf("%+v", c)
	}
	for _, bad := range []string{"dht = sometimes", "reachability = maybe", "relay_service = yes", "port_mapping = 2"} {
		if _, err := Parse(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
