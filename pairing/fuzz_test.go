package pairing

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/weftnet/weft/crypto"
)

func FuzzParseCode(f *testing.F) {
	for _, s := range []string{"482-193-775-016", "482193775016", " 1 2 3 4 5 6 7 8 9 0 1 2", "12345678901", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCode(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedCode) || !c.IsZero() {
				t.Fatalf("ParseCode(%q) = %v, %v", s, c, err)
			}
			return
		}
		back, err := ParseCode(c.String())
		if err != nil || back != c {
			t.Fatalf("ParseCode(%q).String() does not parse back", s)
		}
	})
}

// FuzzReadFrame: readFrame never panics, fails with ErrPairingFailed, and
// what it accepts re-encodes to the bytes it consumed.
func FuzzReadFrame(f *testing.F) {
	f.Add(frame(msgHello, make([]byte, helloSize)))
	f.Add(frame(msgAbort, []byte{1}))
	f.Add([]byte{msgHello, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		body, err := readFrame(r, msgHello, 64)
		if err != nil {
			if !errors.Is(err, ErrPairingFailed) {
				t.Fatalf("readFrame = %v", err)
			}
			return
		}
		if got := frame(msgHello, body); !bytes.Equal(got, b[:len(b)-r.Len()]) {
			t.Fatalf("re-encoded %x, consumed %x", got, b[:len(b)-r.Len()])
		}
	})
}

func checkDecodeErr(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrPairingFailed) || !(errors.Is(err, ErrMalformedMessage) || errors.Is(err, ErrVersion)) {
		t.Fatalf("decode error %v", err)
	}
}

func FuzzDecodeHello(f *testing.F) {
	f.Add((&hello{version: Version}).encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeHello(b)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		if !bytes.Equal(m.encode(), b) {
			t.Fatalf("hello %x re-encodes to %x", b, m.encode())
		}
	})
}

func FuzzDecodeShare(f *testing.F) {
	f.Add((&share{}).encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeShare(b)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		if !bytes.Equal(m.encode(), b) {
			t.Fatalf("share %x re-encodes to %x", b, m.encode())
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add((&response{}).encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeResponse(b)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		if !bytes.Equal(m.encode(), b) {
			t.Fatalf("response %x re-encodes to %x", b, m.encode())
		}
	})
}

func FuzzDecodeConfirm(f *testing.F) {
	f.Add(make([]byte, confirmSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeConfirm(b)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		if !bytes.Equal(m[:], b) {
			t.Fatalf("confirm %x re-encodes to %x", b, m)
		}
	})
}

func FuzzDecodeRequest(f *testing.F) {
	dev := mustDevice(f, 2)
	f.Add((&request{device: dev.DeviceID(), name: "phone"}).encode())
	f.Add((&request{device: dev.DeviceID()}).encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeRequest(b)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		if !bytes.Equal(m.encode(), b) {
			t.Fatalf("request %x re-encodes to %x", b, m.encode())
		}
	})
}

func FuzzDecodeGrant(f *testing.F) {
	user := mustUser(f, 1)
	cert, err := user.CertifyDevice(mustDevice(f, 2).DeviceID(), "phone", timeZero, 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add((&grant{cert: cert.Bytes(), payload: []byte("p")}).encode())
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeGrant(b)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		if !bytes.Equal(m.encode(), b) {
			t.Fatalf("grant %x re-encodes to %x", b, m.encode())
		}
		if c, err := crypto.ParseDeviceCert(m.cert); err == nil && !bytes.Equal(c.Bytes(), m.cert) {
			t.Fatal("certificate does not round-trip")
		}
	})
}

// FuzzPairPeer drives the issuer with arbitrary bytes from the peer.
func FuzzPairPeer(f *testing.F) {
	hb := append([]byte{Version}, make([]byte, nonceSize)...)
	f.Add(frame(msgHello, hb))
	f.Add(append(frame(msgHello, hb), frame(msgResponse, bytes.Repeat([]byte{9}, responseSize))...))
	f.Add(frame(msgAbort, []byte{2}))
	user := mustUser(f, 1)
	f.Fuzz(func(t *testing.T, b []byte) {
		p := newPairerWithCode(user, Code{digits: [CodeDigits]byte([]byte("555555555555"))}, Config{MaxAttempts: 1 << 30})
		cert, err := p.Pair(&scripted{bytes.NewReader(b)})
		if err == nil || cert != nil {
			t.Fatal("the issuer certified a device for random bytes")
		}
		if !errors.Is(err, ErrPairingFailed) {
			t.Fatalf("Pair = %v", err)
		}
	})
}

// FuzzJoinPeer drives the joiner with arbitrary bytes from the peer.
func FuzzJoinPeer(f *testing.F) {
	f.Add(frame(msgShare, append(make([]byte, 16), bytes.Repeat([]byte{9}, 32)...)))
	f.Add(append(frame(msgShare, append(make([]byte, 16), bytes.Repeat([]byte{9}, 32)...)), frame(msgConfirm, make([]byte, 32))...))
	f.Add(frame(msgAbort, []byte{1}))
	dev := mustDevice(f, 2)
	code := Code{digits: [CodeDigits]byte([]byte("555555555555"))}
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := Join(&scripted{bytes.NewReader(b)}, code, dev, "x")
		if err == nil || j != nil {
			t.Fatal("the joiner accepted random bytes")
		}
		if !errors.Is(err, ErrPairingFailed) {
			t.Fatalf("Join = %v", err)
		}
	})
}

var timeZero = time.Unix(0, 0)
