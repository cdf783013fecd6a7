package pairing

import (
	"bytes"
	"crypto/hmac"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/pairing/internal/cpace"
)

// Defaults of [Config].
const (
	DefaultMaxAttempts = 3
	DefaultLifetime    = 10 * time.Minute
)

// Config configures a [Pairer]. The zero Config is usable.
type Config struct {
	// MaxAttempts is how many runs may reach key confirmation with one
	// code, successful or not (default DefaultMaxAttempts). Each one is
	// one guess for an attacker.
	MaxAttempts int

	// Lifetime is how long the code is accepted (default
	// DefaultLifetime).
	Lifetime time.Duration

	// Generation is the generation of the certificates issued (see
	// crypto.DeviceSet): usually DeviceSet.Generation of the user.
	Generation uint32

	// Payload, if set, is called once the joiner is authenticated and
	// its certificate made, and returns the application data sent to it
	// with the certificate (at most MaxPayloadSize bytes): for weft, the
	// thread keys re-wrapped to cert.Device() and the user's device
	// records. An error aborts the pairing with ErrRejected.
	Payload func(cert *crypto.DeviceCert) ([]byte, error)

	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// Pairer is the issuer's side of pairing: it holds one one-time [Code] and
// certifies, with the user key, at most one new device that proves it knows
// the code. It allows Config.MaxAttempts attempts, then the code is dead;
// the code also dies after one success or once Config.Lifetime has passed.
//
// Pair may be called concurrently on several connections (for example when
// an attacker races the legitimate device): attempts are counted across all
// of them.
type Pairer struct {
	user *crypto.Identity
	code Code
	cfg  Config

	mu       sync.Mutex
	attempts int // runs that reached key confirmation
	used     bool
	expires  time.Time
}

// NewPairer returns a Pairer with a new random code, certifying devices for
// the user of user.
func NewPairer(user *crypto.Identity, cfg Config) (*Pairer, error) {
	c, err := GenerateCode()
	if err != nil {
		return nil, err
	}
	return newPairerWithCode(user, c, cfg), nil
}

func newPairerWithCode(user *crypto.Identity, c Code, cfg Config) *Pairer {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = DefaultLifetime
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Pairer{user: user, code: c, cfg: cfg, expires: cfg.Now().Add(cfg.Lifetime)}
}

// Code returns the code to show to the user.
func (p *Pairer) Code() Code { return p.code }

// AttemptsLeft returns how many more attempts the code allows (0 once it is
// used or expired).
func (p *Pairer) AttemptsLeft() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.used || !p.cfg.Now().Before(p.expires) {
		return 0
	}
	return p.cfg.MaxAttempts - p.attempts
}

// usableLocked returns an error wrapping ErrCodeExhausted if the code can no
// longer be used.
func (p *Pairer) usableLocked() error {
	switch {
	case p.used:
		return protoErr(ErrCodeExhausted, "the code was already used")
	case !p.cfg.Now().Before(p.expires):
		return protoErr(ErrCodeExhausted, "the code expired")
	case p.attempts >= p.cfg.MaxAttempts:
		return protoErr(ErrCodeExhausted, "the code allowed %d attempts", p.cfg.MaxAttempts)
	}
	return nil
}

// Pair runs the issuer's side of one pairing attempt over rw and returns
// the certificate issued to the new device. See the package documentation
// for the errors. A wrong code consumes one attempt; once key confirmation
// succeeds the code is spent, even if the rest of the exchange then fails.
func (p *Pairer) Pair(rw io.ReadWriter) (*crypto.DeviceCert, error) {
	// Read the hello before anything else, so that an abort never
	// crosses a write of the peer.
	body, err := readFrame(rw, msgHello, helloSize)
	if err != nil {
		return nil, err
	}
	h, err := decodeHello(body)
	if err != nil {
		return nil, abort(rw, abortReason(err), err)
	}
	p.mu.Lock()
	err = p.usableLocked()
	p.mu.Unlock()
	if err != nil {
		return nil, abort(rw, abortExhausted, err)
	}

	sh := &share{}
	if _, err := io.ReadFull(randReader, sh.nonce[:]); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPairingFailed, err)
	}
	sid := append(h.nonce[:len(h.nonce):len(h.nonce)], sh.nonce[:]...)
	a, ya, err := cpace.NewInitiator(randReader, p.code.prs(), ci, sid, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPairingFailed, err)
	}
	copy(sh.y[:], ya)
	if err := writeFrame(rw, msgShare, sh.encode()); err != nil {
		return nil, err
	}

	body, err = readFrame(rw, msgResponse, responseSize)
	if err != nil {
		return nil, err
	}
	resp, err := decodeResponse(body)
	if err != nil {
		return nil, abort(rw, abortMalformed, err)
	}
	if bytes.Equal(resp.y[:], ya) {
		return nil, abort(rw, abortMalformed, protoErr(ErrMalformedMessage, "the joiner's share is ours reflected"))
	}
	isk, err := a.Finish(resp.y[:], nil)
	if err != nil {
		return nil, abort(rw, abortMalformed, protoErr(ErrMalformedMessage, "joiner's share: %v", err))
	}
	k := deriveKeys(isk, sid)
	transcript := append(append(h.encode(), sh.encode()...), resp.y[:]...)

	// Count the attempt before looking at the tag: this is where a guess
	// is tested. Concurrent runs beyond the limit are refused unchecked.
	p.mu.Lock()
	if err := p.usableLocked(); err != nil {
		p.mu.Unlock()
		return nil, abort(rw, abortExhausted, err)
	}
	p.attempts++
	left := p.cfg.MaxAttempts - p.attempts
	want := tag(k.confirmJoiner, transcript)
	ok := hmac.Equal(want[:], resp.tag[:])
	if ok {
		p.used = true
	}
	p.mu.Unlock()
	if !ok {
		return nil, abort(rw, abortWrongCode, protoErr(ErrWrongCode, "key confirmation failed (%d attempts left for this code)", left))
	}

	ti := tag(k.confirmIssuer, transcript)
	if err := writeFrame(rw, msgConfirm, ti[:]); err != nil {
		return nil, err
	}

	in := &channel{key: k.joinerToIssuer}
	out := &channel{key: k.issuerToJoiner}
	body, err = readFrame(rw, msgRequest, maxRequest+sealOver)
	if err != nil {
		return nil, err
	}
	pt, err := in.open(msgRequest, body)
	if err != nil {
		return nil, abort(rw, abortMalformed, err)
	}
	req, err := decodeRequest(pt)
	if err != nil {
		return nil, abort(rw, abortMalformed, err)
	}
	if err := crypto.VerifyDevice(req.device, proofDomain, k.proof[:], req.proof[:]); err != nil {
		return nil, abort(rw, abortMalformed, protoErr(ErrMalformedMessage, "the joiner's proof of its device key: %v", err))
	}
	cert, err := p.user.CertifyDevice(req.device, req.name, p.cfg.Now(), p.cfg.Generation)
	if err != nil {
		return nil, abort(rw, abortRejected, protoErr(ErrRejected, "%v", err))
	}
	var payload []byte
	if p.cfg.Payload != nil {
		payload, err = p.cfg.Payload(cert)
		if err != nil {
			return nil, abort(rw, abortRejected, protoErr(ErrRejected, "%v", err))
		}
		if len(payload) > MaxPayloadSize {
			return nil, abort(rw, abortRejected, protoErr(ErrRejected, "payload is %d bytes, want at most %d", len(payload), MaxPayloadSize))
		}
	}
	g := &grant{cert: cert.Bytes(), payload: payload}
	if err := writeFrame(rw, msgGrant, out.seal(msgGrant, g.encode())); err != nil {
		return nil, err
	}

	body, err = readFrame(rw, msgDone, sealOver)
	if err != nil {
		return nil, err
	}
	if _, err := in.open(msgDone, body); err != nil {
		return nil, err
	}
	return cert, nil
}
