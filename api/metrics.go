package api

import (
	"fmt"
	"net/http"
	"slices"
	"time"
)

// metrics writes the node's metrics in the Prometheus text format.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) error {
	m := s.n.Metrics()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	gauge := func(name, help string, v any) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %v\n", name, help, name, name, v)
	}
	counter := func(name, help string, v any) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %v\n", name, help, name, name, v)
	}
	gauge("weft_peers", "Connected peers.", m.Peers)
	gauge("weft_threads", "Threads stored.", m.Threads)
	gauge("weft_identities", "Local user identities.", m.Identities)
	counter("weft_events_stored_total", "Events stored since start.", m.EventsStored)
	fmt.Fprintf(w, "# HELP weft_events_rejected_total Events rejected, by the rule they broke.\n# TYPE weft_events_rejected_total counter\n")
	reasons := make([]string, 0, len(m.EventsRejected))
	for k := range m.EventsRejected {
		reasons = append(reasons, k)
	}
	slices.Sort(reasons)
	for _, k := range reasons {
		fmt.Fprintf(w, "weft_events_rejected_total{reason=%q} %d\n", k, m.EventsRejected[k])
	}
	gauge("weft_held_events", "Events waiting for missing parents (how far behind sync is).", m.HeldEvents)
	lag := -1.0
	if !m.LastSync.IsZero() {
		lag = time.Since(m.LastSync).Seconds()
	}
	gauge("weft_sync_lag_seconds", "Seconds since the last completed sync with a peer (-1: none yet).", fmt.Sprintf("%.3f", lag))
	counter("weft_gossip_dropped_total", "Gossip RPCs dropped because a peer's queue was full.", m.Gossip.DroppedRPCs)
	counter("weft_gossip_undeliverable_total", "Gossip messages a slow subscription missed.", m.Gossip.Undeliverable)
	counter("weft_gossip_rejected_total", "Gossip messages rejected by validation.", m.Gossip.Rejected)
	ni := s.n.NetInfo()
	fmt.Fprintf(w, "# HELP weft_reachability The node's reachability (1 for the current one).\n# TYPE weft_reachability gauge\n")
	for _, r := range []string{"public", "private", "unknown"} {
		v := 0
		if ni.Reachability == r {
			v = 1
		}
		fmt.Fprintf(w, "weft_reachability{status=%q} %d\n", r, v)
	}
	fmt.Fprintf(w, "# HELP weft_peers_by_path Connected peers, direct or only through a relay.\n# TYPE weft_peers_by_path gauge\n")
	fmt.Fprintf(w, "weft_peers_by_path{path=\"direct\"} %d\nweft_peers_by_path{path=\"relayed\"} %d\n", ni.DirectPeers, ni.RelayedPeers)
	gauge("weft_relay_reservations", "Relays this node holds a reservation on.", len(ni.Relays))
	relaying := 0
	if ni.RelayService {
		relaying = 1
	}
	gauge("weft_relay_service", "1 while this node relays for others.", relaying)
	gauge("weft_observed_addrs", "Distinct addresses peers see this node at.", len(ni.ObservedAddrs))
	gauge("weft_dht_routing_table_peers", "Peers in the DHT routing table (0: DHT off or not bootstrapped).", ni.DHTPeers)
	counter("weft_dht_records_published_total", "User records put into the DHT.", ni.RecordsPublished)
	counter("weft_dht_record_publish_failures_total", "Failed user record publications.", ni.RecordPublishFailures)
	counter("weft_dht_lookups_total", "User lookups in the DHT.", ni.Lookups)
	counter("weft_dht_lookups_found_total", "User lookups that found a valid record.", ni.LookupsFound)
	return nil
}

// status answers GET /v1/status: the metrics as JSON, for people and
// scripts (weft status).
func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	m := s.n.Metrics()
	st := Status{
		Peers: m.Peers, Threads: m.Threads, Identities: m.Identities,
		EventsStored: m.EventsStored, EventsRejected: m.EventsRejected, HeldEvents: m.HeldEvents,
		Gossip: GossipStatus{
			DroppedRPCs: m.Gossip.DroppedRPCs, Undeliverable: m.Gossip.Undeliverable,
			Rejected: m.Gossip.Rejected, Ignored: m.Gossip.Ignored, Throttled: m.Gossip.Throttled,
		},
	}
	ni := s.n.NetInfo()
	st.Network = NetworkStatus{
		Reachability: ni.Reachability, ListenAddrs: nonNil(ni.ListenAddrs), Addrs: nonNil(ni.Addrs),
		ObservedAddrs:  []ObservedAddr{},
		ReachableAddrs: nonNil(ni.ReachableAddrs), UnreachableAddrs: nonNil(ni.UnreachableAddrs),
		Relays: nonNil(ni.Relays), RelayService: ni.RelayService, DHT: ni.DHT, DHTPeers: ni.DHTPeers,
		RecordsPublished: ni.RecordsPublished, RecordPublishFailures: ni.RecordPublishFailures,
		Lookups: ni.Lookups, LookupsFound: ni.LookupsFound, DirectPeers: ni.DirectPeers, RelayedPeers: ni.RelayedPeers,
	}
	for _, o := range ni.ObservedAddrs {
		st.Network.ObservedAddrs = append(st.Network.ObservedAddrs, ObservedAddr{Addr: o.Addr, Observers: o.Observers})
	}
	if st.EventsRejected == nil {
		st.EventsRejected = map[string]uint64{}
	}
	if !m.LastSync.IsZero() {
		st.LastSync = m.LastSync.UnixMilli()
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
