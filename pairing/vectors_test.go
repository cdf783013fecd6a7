package pairing

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/crypto"
)

var update = flag.Bool("update", false, "regenerate testdata/transcript.json")

const transcriptFile = "testdata/transcript.json"

type hexBytes []byte

func (h hexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }
func (h *hexBytes) UnmarshalText(b []byte) error {
	d, err := hex.DecodeString(string(b))
	*h = d
	return err
}

// transcriptVector is one complete pairing with fixed inputs: any
// implementation given the same inputs and random bytes must produce the
// same frames.
type transcriptVector struct {
	Comment    []string   `json:"comment"`
	UserSeed   hexBytes   `json:"user_seed"`
	DeviceSeed hexBytes   `json:"device_seed"`
	Code       string     `json:"code"`
	Name       string     `json:"name"`
	Now        int64      `json:"now"`
	Generation uint32     `json:"generation"`
	Payload    hexBytes   `json:"payload"`
	Random     hexBytes   `json:"random"`
	Frames     []hexBytes `json:"frames"`
	Cert       hexBytes   `json:"cert"`
}

// lockedReader serves fixed bytes to both sides, in the order they ask.
type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

func runTranscript(t *testing.T, v *transcriptVector) (frames [][]byte, cert *crypto.DeviceCert) {
	t.Helper()
	old := randReader
	randReader = &lockedReader{r: bytes.NewReader(v.Random)}
	defer func() { randReader = old }()
	user, err := crypto.NewIdentityFromSeed(v.UserSeed)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := crypto.NewDeviceIdentityFromSeed(v.DeviceSeed)
	if err != nil {
		t.Fatal(err)
	}
	p := newPairerWithCode(user, mustCode(t, v.Code), Config{
		Generation: v.Generation,
		Now:        func() time.Time { return time.Unix(v.Now, 0) },
		Payload:    func(*crypto.DeviceCert) ([]byte, error) { return v.Payload, nil },
	})
	r := &relay{}
	is, js := r.run(p, mustCode(t, v.Code), dev, v.Name)
	if is.err != nil || js.err != nil {
		t.Fatalf("issuer %v, joiner %v", is.err, js.err)
	}
	if !bytes.Equal(js.joined.Payload, v.Payload) {
		t.Fatal("payload differs")
	}
	return r.frames, is.cert
}

func TestTranscriptVector(t *testing.T) {
	random := make([]byte, 16+16+32+32)
	for i := range random {
		random[i] = byte(i * 7)
	}
	want := &transcriptVector{
		Comment: []string{
			"A complete pairing (github.com/weftnet/weft/pairing, protocol version 1). Byte strings are hex.",
			"random is consumed in this order: nonce_j (16, joiner), nonce_i (16, issuer), ya (32, issuer), yb (32, joiner).",
			"frames are the messages in order, each type || length (uint32 BE) || body; the last frame is sent by the joiner.",
			"Regenerate with: go test ./pairing -run TestTranscriptVector -update",
		},
		UserSeed:   bytes.Repeat([]byte{1}, 32),
		DeviceSeed: bytes.Repeat([]byte{2}, 32),
		Code:       "482-193-775-016",
		Name:       "phone",
		Now:        1767225600,
		Generation: 0,
		Payload:    []byte("wrapped thread keys"),
		Random:     random,
	}
	frames, cert := runTranscript(t, want)
	for _, f := range frames {
		want.Frames = append(want.Frames, f)
	}
	want.Cert = cert.Bytes()
	if *update {
		b, err := json.MarshalIndent(want, "", "\t")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(transcriptFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	b, err := os.ReadFile(transcriptFile)
	if err != nil {
		t.Fatal(err)
	}
	var got transcriptVector
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	// Replay the file's own inputs, as another implementation would.
	frames, cert = runTranscript(t, &got)
	if len(frames) != len(got.Frames) {
		t.Fatalf("%d frames, file has %d", len(frames), len(got.Frames))
	}
	for i := range frames {
		if !bytes.Equal(frames[i], got.Frames[i]) {
			t.Errorf("frame %d:\n got %x\nwant %x", i, frames[i], got.Frames[i])
		}
	}
	if !bytes.Equal(cert.Bytes(), got.Cert) {
		t.Errorf("certificate %x, want %x", cert.Bytes(), got.Cert)
	}
}
