package pairing

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/crypto"
)

func mustUser(t testing.TB, b byte) *crypto.Identity {
	t.Helper()
	id, err := crypto.NewIdentityFromSeed(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mustDevice(t testing.TB, b byte) *crypto.DeviceIdentity {
	t.Helper()
	d, err := crypto.NewDeviceIdentityFromSeed(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mustCode(t testing.TB, s string) Code {
	t.Helper()
	c, err := ParseCode(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type result struct {
	cert   *crypto.DeviceCert
	joined *Joined
	err    error
}

// run pairs over the two ends of a connection and returns both results.
func run(p *Pairer, issuerEnd, joinerEnd net.Conn, code Code, dev *crypto.DeviceIdentity, name string) (issuer, joiner result) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer issuerEnd.Close()
		issuer.cert, issuer.err = p.Pair(issuerEnd)
	}()
	go func() {
		defer wg.Done()
		defer joinerEnd.Close()
		joiner.joined, joiner.err = Join(joinerEnd, code, dev, name)
	}()
	wg.Wait()
	return issuer, joiner
}

func pipeRun(p *Pairer, code Code, dev *crypto.DeviceIdentity, name string) (issuer, joiner result) {
	a, b := net.Pipe()
	return run(p, a, b, code, dev, name)
}

func wantErr(t *testing.T, who string, err error, kinds ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want %v", who, kinds)
	}
	if !errors.Is(err, ErrPairingFailed) {
		t.Errorf("%s: %v does not wrap ErrPairingFailed", who, err)
	}
	for _, k := range kinds {
		if errors.Is(err, k) {
			return
		}
	}
	t.Errorf("%s: %v, want one of %v", who, err, kinds)
}

func TestRightCode(t *testing.T) {
	user := mustUser(t, 1)
	dev := mustDevice(t, 2)
	payload := []byte("thread keys wrapped to the device")
	var gotCert *crypto.DeviceCert
	p, err := NewPairer(user, Config{Generation: 4, Payload: func(c *crypto.DeviceCert) ([]byte, error) {
		gotCert = c
		return payload, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	code := p.Code()
	// The user types it with spaces.
	typed := mustCode(t, strings.ReplaceAll(code.String(), "-", " "))
	is, js := pipeRun(p, typed, dev, "phone")
	if is.err != nil || js.err != nil {
		t.Fatalf("issuer: %v, joiner: %v", is.err, js.err)
	}
	c := js.joined.Cert
	if c.User() != user.UserID() || c.Device() != dev.DeviceID() || c.Name() != "phone" || c.Generation() != 4 {
		t.Errorf("certificate %v %v %q %d", c.User(), c.Device(), c.Name(), c.Generation())
	}
	if err := c.Verify(user.UserID()); err != nil {
		t.Error(err)
	}
	if !c.Equal(is.cert) || !c.Equal(gotCert) {
		t.Error("issuer and joiner have different certificates")
	}
	if !bytes.Equal(js.joined.Payload, payload) {
		t.Errorf("payload %q", js.joined.Payload)
	}
	if n := p.AttemptsLeft(); n != 0 {
		t.Errorf("%d attempts left after success, want 0", n)
	}
	// The code is one-time.
	is, js = pipeRun(p, code, mustDevice(t, 3), "again")
	wantErr(t, "issuer, second use", is.err, ErrCodeExhausted)
	wantErr(t, "joiner, second use", js.err, ErrCodeExhausted)
}

func TestWrongCodeThenRetry(t *testing.T) {
	p := newPairerWithCode(mustUser(t, 1), mustCode(t, "482-193-775-016"), Config{})
	dev := mustDevice(t, 2)
	is, js := pipeRun(p, mustCode(t, "482-193-775-017"), dev, "phone")
	wantErr(t, "issuer", is.err, ErrWrongCode)
	wantErr(t, "joiner", js.err, ErrWrongCode)
	if n := p.AttemptsLeft(); n != DefaultMaxAttempts-1 {
		t.Errorf("%d attempts left, want %d", n, DefaultMaxAttempts-1)
	}
	is, js = pipeRun(p, mustCode(t, "482193775016"), dev, "phone")
	if is.err != nil || js.err != nil {
		t.Fatalf("retry: issuer %v, joiner %v", is.err, js.err)
	}
}

func TestAttemptsBounded(t *testing.T) {
	right := mustCode(t, "000-000-000-001")
	p := newPairerWithCode(mustUser(t, 1), right, Config{MaxAttempts: 2})
	dev := mustDevice(t, 2)
	for i := range 2 {
		is, js := pipeRun(p, mustCode(t, "000-000-000-00"+string(rune('2'+i))), dev, "x")
		wantErr(t, "issuer", is.err, ErrWrongCode)
		wantErr(t, "joiner", js.err, ErrWrongCode)
	}
	// The code is dead, even when right.
	is, js := pipeRun(p, right, dev, "x")
	wantErr(t, "issuer", is.err, ErrCodeExhausted)
	wantErr(t, "joiner", js.err, ErrCodeExhausted)
}

func TestExpired(t *testing.T) {
	now := time.Unix(1767225600, 0)
	clock := func() time.Time { return now }
	p := newPairerWithCode(mustUser(t, 1), mustCode(t, "123-456-789-012"), Config{Lifetime: time.Minute, Now: clock})
	now = now.Add(time.Minute)
	is, js := pipeRun(p, p.Code(), mustDevice(t, 2), "x")
	wantErr(t, "issuer", is.err, ErrCodeExhausted)
	wantErr(t, "joiner", js.err, ErrCodeExhausted)
}

// TestConcurrentGuesses races many wrong guesses: only MaxAttempts of them
// are checked, the others are refused.
func TestConcurrentGuesses(t *testing.T) {
	p := newPairerWithCode(mustUser(t, 1), mustCode(t, "999-999-999-999"), Config{})
	var mu sync.Mutex
	counts := map[error]int{}
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			guess := mustCode(t, "000-000-000-01"+string(rune('0'+i)))
			is, _ := pipeRun(p, guess, mustDevice(t, byte(10+i)), "x")
			mu.Lock()
			defer mu.Unlock()
			for _, k := range []error{ErrWrongCode, ErrCodeExhausted} {
				if errors.Is(is.err, k) {
					counts[k]++
					return
				}
			}
			t.Errorf("issuer: %v", is.err)
		}()
	}
	wg.Wait()
	if counts[ErrWrongCode] != DefaultMaxAttempts || counts[ErrCodeExhausted] != 10-DefaultMaxAttempts {
		t.Errorf("wrong code %d, exhausted %d; want %d, %d", counts[ErrWrongCode], counts[ErrCodeExhausted], DefaultMaxAttempts, 10-DefaultMaxAttempts)
	}
}

func TestRejected(t *testing.T) {
	p := newPairerWithCode(mustUser(t, 1), mustCode(t, "111-111-111-111"), Config{
		Payload: func(*crypto.DeviceCert) ([]byte, error) { return nil, errors.New("not now") },
	})
	is, js := pipeRun(p, p.Code(), mustDevice(t, 2), "x")
	wantErr(t, "issuer", is.err, ErrRejected)
	wantErr(t, "joiner", js.err, ErrRejected)

	// A name that the certificate format refuses.
	p = newPairerWithCode(mustUser(t, 1), mustCode(t, "111-111-111-111"), Config{})
	is, js = pipeRun(p, p.Code(), mustDevice(t, 2), "bad\nname")
	wantErr(t, "issuer", is.err, ErrRejected)
	wantErr(t, "joiner", js.err, ErrRejected)

	// The user key itself as a device.
	user := mustUser(t, 1)
	p = newPairerWithCode(user, mustCode(t, "111-111-111-111"), Config{})
	is, js = pipeRun(p, p.Code(), mustDevice(t, 1), "x")
	wantErr(t, "issuer", is.err, ErrRejected)
	wantErr(t, "joiner", js.err, ErrRejected)
}

// relay connects the issuer and the joiner through a man in the middle
// that sees every frame and may rewrite it.
type relay struct {
	mu     sync.Mutex
	frames [][]byte // as received, in order
	// rewrite, if set, is called with the index of each frame and may
	// return a replacement.
	rewrite func(i int, frame []byte) []byte
}

func (r *relay) pump(dst io.Writer, src io.Reader) {
	for {
		var h [5]byte
		if _, err := io.ReadFull(src, h[:]); err != nil {
			return
		}
		n := int(h[1])<<24 | int(h[2])<<16 | int(h[3])<<8 | int(h[4])
		body := make([]byte, n)
		if _, err := io.ReadFull(src, body); err != nil {
			return
		}
		f := append(h[:], body...)
		r.mu.Lock()
		i := len(r.frames)
		r.frames = append(r.frames, f)
		rw := r.rewrite
		r.mu.Unlock()
		if rw != nil {
			f = rw(i, bytes.Clone(f))
		}
		if _, err := dst.Write(f); err != nil {
			return
		}
	}
}

func (r *relay) run(p *Pairer, code Code, dev *crypto.DeviceIdentity, name string) (issuer, joiner result) {
	issuerEnd, mitmI := net.Pipe()
	mitmJ, joinerEnd := net.Pipe()
	done := make(chan struct{}, 2)
	go func() { r.pump(mitmI, mitmJ); mitmI.Close(); done <- struct{}{} }()
	go func() { r.pump(mitmJ, mitmI); mitmJ.Close(); done <- struct{}{} }()
	issuer, joiner = run(p, issuerEnd, joinerEnd, code, dev, name)
	mitmI.Close()
	mitmJ.Close()
	<-done
	<-done
	return issuer, joiner
}

// TestPassiveRelay: a relay that forwards everything unchanged sees neither
// the certificate, the payload, the device name nor the code.
func TestPassiveRelay(t *testing.T) {
	secret := []byte("SECRET-PAYLOAD-thread-keys")
	user := mustUser(t, 1)
	p := newPairerWithCode(user, mustCode(t, "314-159-265-358"), Config{
		Payload: func(*crypto.DeviceCert) ([]byte, error) { return secret, nil },
	})
	r := &relay{}
	is, js := r.run(p, p.Code(), mustDevice(t, 2), "my-secret-phone-name")
	if is.err != nil || js.err != nil {
		t.Fatalf("issuer %v, joiner %v", is.err, js.err)
	}
	all := bytes.Join(r.frames, nil)
	for what, b := range map[string][]byte{
		"certificate": is.cert.Bytes(),
		"signature":   is.cert.Bytes()[len(is.cert.Bytes())-64:],
		"payload":     secret,
		"name":        []byte("my-secret-phone-name"),
		"code":        []byte("314159265358"),
		"user ID":     func() []byte { u := is.cert.User(); return u[:] }(),
		"user key":    user.Seed(),
		"user X25519": user.X25519(),
	} {
		if bytes.Contains(all, b) {
			t.Errorf("the relay saw the %s in clear", what)
		}
	}
	if len(r.frames) != 7 {
		t.Errorf("%d frames, want 7", len(r.frames))
	}
}

// TestTamperingRelay flips one bit in each frame in turn: no run succeeds
// on the issuer's side, and the joiner succeeds only if the last frame (its
// own acknowledgement, sent after it got its certificate) was altered.
func TestTamperingRelay(t *testing.T) {
	for frame := range 7 {
		for _, bit := range []int{0, 8*1 + 3, -1} { // type, length, last byte of body
			user := mustUser(t, 1)
			p := newPairerWithCode(user, mustCode(t, "271-828-182-845"), Config{MaxAttempts: 100})
			r := &relay{rewrite: func(i int, f []byte) []byte {
				if i == frame {
					if bit < 0 {
						f[len(f)-1] ^= 0x40
					} else {
						f[bit/8] ^= 1 << (bit % 8)
					}
				}
				return f
			}}
			is, js := r.run(p, p.Code(), mustDevice(t, 2), "phone")
			if is.err == nil {
				t.Errorf("frame %d bit %d: the issuer certified a device through a tampering relay", frame, bit)
			} else if !errors.Is(is.err, ErrPairingFailed) {
				t.Errorf("frame %d bit %d: issuer: %v", frame, bit, is.err)
			}
			if js.err == nil && frame != 6 {
				t.Errorf("frame %d bit %d: the joiner accepted a certificate through a tampering relay", frame, bit)
			}
			if js.err != nil && !errors.Is(js.err, ErrPairingFailed) {
				t.Errorf("frame %d bit %d: joiner: %v", frame, bit, js.err)
			}
		}
	}
}

// TestActiveAttacker: a man in the middle runs its own CPace with each
// side, with guessed codes: it pretends to be the issuer to the joiner (with
// its own user key) and the joiner to the issuer (with its own device key).
// Both real sides fail with ErrWrongCode, the attacker gets no certificate,
// and each guess costs the real code one attempt.
func TestActiveAttacker(t *testing.T) {
	user := mustUser(t, 1)
	real := mustCode(t, "161-803-398-874")
	p := newPairerWithCode(user, real, Config{})
	dev := mustDevice(t, 2)
	attackerUser := mustUser(t, 66)
	attackerDev := mustDevice(t, 67)

	issuerEnd, attackerToIssuer := net.Pipe()
	attackerToJoiner, joinerEnd := net.Pipe()
	var wg sync.WaitGroup
	var attackerJoin, realIssuer, realJoin, attackerIssue error
	var stolen *Joined
	var fakeCert *crypto.DeviceCert
	wg.Add(4)
	go func() {
		defer wg.Done()
		defer attackerToIssuer.Close()
		stolen, attackerJoin = Join(attackerToIssuer, mustCode(t, "000-000-000-000"), attackerDev, "evil")
	}()
	go func() {
		defer wg.Done()
		defer issuerEnd.Close()
		_, realIssuer = p.Pair(issuerEnd)
	}()
	go func() {
		defer wg.Done()
		defer attackerToJoiner.Close()
		fake := newPairerWithCode(attackerUser, mustCode(t, "123-123-123-123"), Config{})
		fakeCert, attackerIssue = fake.Pair(attackerToJoiner)
	}()
	go func() {
		defer wg.Done()
		defer joinerEnd.Close()
		_, realJoin = Join(joinerEnd, real, dev, "phone")
	}()
	wg.Wait()
	if stolen != nil || attackerJoin == nil {
		t.Fatal("the attacker joined the user")
	}
	if fakeCert != nil || attackerIssue == nil {
		t.Fatal("the joiner accepted the attacker as issuer")
	}
	wantErr(t, "real issuer", realIssuer, ErrWrongCode)
	wantErr(t, "real joiner", realJoin, ErrWrongCode)
	if n := p.AttemptsLeft(); n != DefaultMaxAttempts-1 {
		t.Errorf("%d attempts left, want %d", n, DefaultMaxAttempts-1)
	}
}

// scripted is a peer whose bytes come from a fixed script; what is written
// to it is discarded.
type scripted struct{ r io.Reader }

func (s *scripted) Read(p []byte) (int, error)  { return s.r.Read(p) }
func (s *scripted) Write(p []byte) (int, error) { return len(p), nil }

func frame(typ byte, body []byte) []byte {
	b := []byte{typ, 0, 0, 0, 0}
	b[1], b[2], b[3], b[4] = byte(len(body)>>24), byte(len(body)>>16), byte(len(body)>>8), byte(len(body))
	return append(b, body...)
}

func TestGarbage(t *testing.T) {
	helloBody := append([]byte{Version}, make([]byte, nonceSize)...)
	low := make([]byte, 32) // a low-order point
	cases := map[string]struct {
		script []byte
		kinds  []error
	}{
		"empty":           {nil, []error{io.ErrUnexpectedEOF}},
		"truncated frame": {frame(msgHello, helloBody)[:7], []error{io.ErrUnexpectedEOF}},
		"wrong type":      {frame(msgShare, make([]byte, shareSize)), []error{ErrMalformedMessage}},
		"huge length":     {[]byte{msgHello, 0xff, 0xff, 0xff, 0xff}, []error{ErrMalformedMessage}},
		"short hello":     {frame(msgHello, helloBody[:5]), []error{ErrMalformedMessage}},
		"version 2":       {frame(msgHello, append([]byte{2}, make([]byte, nonceSize)...)), []error{ErrVersion}},
		"bad abort":       {frame(msgAbort, []byte{1, 2}), []error{ErrMalformedMessage}},
		"then EOF":        {frame(msgHello, helloBody), []error{io.ErrUnexpectedEOF}},
		"low order share": {append(frame(msgHello, helloBody), frame(msgResponse, append(low, make([]byte, 32)...))...), []error{ErrMalformedMessage}},
		"bad tag":         {append(frame(msgHello, helloBody), frame(msgResponse, append(bytes.Repeat([]byte{9}, 32), make([]byte, 32)...))...), []error{ErrWrongCode}},
	}
	for name, c := range cases {
		p := newPairerWithCode(mustUser(t, 1), mustCode(t, "555-555-555-555"), Config{})
		_, err := p.Pair(&scripted{bytes.NewReader(c.script)})
		wantErr(t, "issuer, "+name, err, c.kinds...)
	}

	jcases := map[string]struct {
		script []byte
		kinds  []error
	}{
		"empty":           {nil, []error{io.ErrUnexpectedEOF}},
		"abort exhausted": {frame(msgAbort, []byte{abortExhausted}), []error{ErrCodeExhausted}},
		"abort unknown":   {frame(msgAbort, []byte{77}), []error{ErrMalformedMessage}},
		"short share":     {frame(msgShare, make([]byte, 10)), []error{ErrMalformedMessage}},
		"low order share": {frame(msgShare, make([]byte, shareSize)), []error{ErrMalformedMessage}},
		"bad confirm":     {append(frame(msgShare, append(make([]byte, 16), bytes.Repeat([]byte{9}, 32)...)), frame(msgConfirm, make([]byte, 32))...), []error{ErrWrongCode}},
		"short confirm":   {append(frame(msgShare, append(make([]byte, 16), bytes.Repeat([]byte{9}, 32)...)), frame(msgConfirm, make([]byte, 3))...), []error{ErrMalformedMessage}},
	}
	for name, c := range jcases {
		_, err := Join(&scripted{bytes.NewReader(c.script)}, mustCode(t, "555-555-555-555"), mustDevice(t, 2), "x")
		wantErr(t, "joiner, "+name, err, c.kinds...)
	}
}

func TestCode(t *testing.T) {
	c := mustCode(t, " 482-193 775016 ")
	if c.String() != "482-193-775-016" {
		t.Errorf("String = %q", c.String())
	}
	for _, s := range []string{"", "482-193-775-01", "482-193-775-0167", "482-193-775-01a", "４82-193-775-016", "482_193_775_016"} {
		if _, err := ParseCode(s); !errors.Is(err, ErrMalformedCode) {
			t.Errorf("ParseCode(%q) = %v", s, err)
		}
	}
	if (Code{}).String() != "" || !(Code{}).IsZero() {
		t.Error("zero code")
	}
	if _, err := Join(&scripted{bytes.NewReader(nil)}, Code{}, mustDevice(t, 2), "x"); !errors.Is(err, ErrMalformedCode) {
		t.Errorf("Join with the zero code: %v", err)
	}
	seen := map[Code]bool{}
	var digits [10]int
	for range 2000 {
		c, err := GenerateCode()
		if err != nil {
			t.Fatal(err)
		}
		if back, err := ParseCode(c.String()); err != nil || back != c {
			t.Fatalf("ParseCode(%q) = %v, %v", c, back, err)
		}
		seen[c] = true
		for _, d := range c.digits {
			digits[d-'0']++
		}
	}
	if len(seen) < 1999 {
		t.Errorf("only %d distinct codes in 2000", len(seen))
	}
	// 24000 digits: each should appear about 2400 times.
	for d, n := range digits {
		if n < 2000 || n > 2800 {
			t.Errorf("digit %d appears %d times in 24000", d, n)
		}
	}
}
