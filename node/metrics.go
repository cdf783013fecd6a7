package node

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weftnet/weft/protocol"
)

// counters are the node's running totals, for metrics.
type counters struct {
	stored   atomic.Uint64
	mu       sync.Mutex
	rejected map[string]uint64
	lastSync atomic.Int64 // unix nanos of the last successful sync
}

// ruleNames name the rules a rejected event can break, for metrics.
var ruleNames = []struct {
	err  error
	name string
}{
	{protocol.ErrUnknownVersion, "unknown_version"},
	{protocol.ErrMalformed, "malformed"},
	{protocol.ErrTooLarge, "too_large"},
	{protocol.ErrBadSignature, "bad_signature"},
	{protocol.ErrWrongThread, "wrong_thread"},
	{protocol.ErrBadGenesis, "bad_genesis"},
	{protocol.ErrBadParents, "bad_parents"},
	{protocol.ErrBadLamport, "bad_lamport"},
	{protocol.ErrEquivocation, "equivocation"},
	{protocol.ErrNotMember, "not_member"},
	{protocol.ErrNotManager, "not_manager"},
	{protocol.ErrNotPermitted, "not_permitted"},
	{protocol.ErrNotAuthor, "not_author"},
	{protocol.ErrThreadDeleted, "thread_deleted"},
	{protocol.ErrUnknownEpoch, "unknown_epoch"},
	{protocol.ErrBadKeys, "bad_keys"},
	{protocol.ErrBadTarget, "bad_target"},
	{protocol.ErrBadUpdate, "bad_update"},
	{protocol.ErrMissingParents, "missing_parents"},
	{protocol.ErrSeqGap, "seq_gap"},
	{protocol.ErrUnknownThread, "unknown_thread"},
}

func (c *counters) reject(err error) {
	name := "other"
	for _, r := range ruleNames {
		if errors.Is(err, r.err) {
			name = r.name
			break
		}
	}
	c.mu.Lock()
	if c.rejected == nil {
		c.rejected = map[string]uint64{}
	}
	c.rejected[name]++
	c.mu.Unlock()
}

// Metrics is a snapshot of the node's state and counters.
type Metrics struct {
	Peers          int
	Threads        int
	Identities     int
	EventsStored   uint64            // events stored since start (own and foreign)
	EventsRejected map[string]uint64 // by rule broken
	HeldEvents     int               // waiting for missing parents: how far behind sync is
	LastSync       time.Time         // last successful sync with a peer (zero: none yet)
	Gossip         NetStats
}

// Metrics returns the node's current metrics.
func (n *Node) Metrics() Metrics {
	m := Metrics{Peers: len(n.Peers()), Identities: len(n.Identities()), EventsStored: n.counters.stored.Load(), Gossip: n.NetStats()}
	n.counters.mu.Lock()
	m.EventsRejected = make(map[string]uint64, len(n.counters.rejected))
	for k, v := range n.counters.rejected {
		m.EventsRejected[k] = v
	}
	n.counters.mu.Unlock()
	if t := n.counters.lastSync.Load(); t != 0 {
		m.LastSync = time.Unix(0, t)
	}
	_ = n.do(n.ctxBackground(), false, func(w *work) error {
		m.Threads = len(n.threads)
		m.HeldEvents = n.heldCount
		return nil
	})
	return m
}
