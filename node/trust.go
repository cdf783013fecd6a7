package node

import (
	"math"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Misbehaviour that pubsub's own validation cannot see (a lying sync
// answer, gossip whose past nobody has) is charged to the peer here, and
// reaches gossip scoring through the app-specific score: a peer charged
// past the graylist threshold (-1000) is ignored by gossip, and one past
// refuseSyncPenalty is refused sync in both directions. Charges halve
// every penaltyHalfLife, so a peer that stops misbehaving is forgiven.
const (
	penaltyHalfLife   = 10 * time.Minute
	refuseSyncPenalty = 500

	// What each kind of misbehaviour costs.
	penaltyUnasked     = 400 // a sync batch for a thread or range not asked for
	penaltyIrrelevant  = 400 // a thread none of our users is in, pushed through sync
	penaltyUnknownPast = 20  // per gossiped event whose past no peer could supply
	penaltyBadSync     = 100 // an undecodable or out-of-protocol sync message
)

// penalties are the charges against peers, decaying over time.
type penalties struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[peer.ID]penalty
}

type penalty struct {
	v  float64
	at time.Time
}

func newPenalties(now func() time.Time) *penalties {
	return &penalties{now: now, m: map[peer.ID]penalty{}}
}

func (p *penalties) decayed(pe penalty, now time.Time) float64 {
	return pe.v * math.Exp2(-now.Sub(pe.at).Seconds()/penaltyHalfLife.Seconds())
}

// charge adds amount to p's charges and returns the total.
func (p *penalties) charge(id peer.ID, amount float64) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	v := p.decayed(p.m[id], now) + amount
	p.m[id] = penalty{v: v, at: now}
	return v
}

// get returns p's current charges.
func (p *penalties) get(id peer.ID) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	pe, ok := p.m[id]
	if !ok {
		return 0
	}
	v := p.decayed(pe, p.now())
	if v < 0.5 {
		delete(p.m, id)
		return 0
	}
	return v
}

// penalize charges a peer for misbehaviour and logs it.
func (nn *network) penalize(p peer.ID, amount float64, why string) {
	total := nn.penalties.charge(p, amount)
	nn.log.Warn("peer misbehaved", "remote", p, "why", why, "charge", amount, "total", math.Round(total))
}

// distrusted reports whether a peer has been charged past the point where
// the node stops syncing with it.
func (nn *network) distrusted(p peer.ID) bool {
	return nn.penalties.get(p) >= refuseSyncPenalty
}
