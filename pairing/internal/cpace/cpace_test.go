package cpace

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"filippo.io/edwards25519/field"
)

type hexBytes []byte

func (h *hexBytes) UnmarshalText(b []byte) error {
	d, err := hex.DecodeString(string(b))
	*h = d
	return err
}

type vectorFile struct {
	Comment     []string            `json:"comment"`
	StringUtils map[string]hexBytes `json:"string_utils"`
	G25519      struct {
		PRS, CI, Sid                             hexBytes
		GeneratorString                          hexBytes `json:"generator_string"`
		GeneratorStringHash                      hexBytes `json:"generator_string_hash"`
		DecodedFieldElement                      hexBytes `json:"decoded_field_element"`
		G, Ya, ADa, YaShare, Yb, ADb, YbShare, K hexBytes
		TranscriptIR                             hexBytes `json:"transcript_ir"`
		ISKIR                                    hexBytes `json:"ISK_IR"`
	} `json:"G_25519"`
	ScalarMultVfy struct {
		S      hexBytes `json:"s"`
		Points []struct {
			U hexBytes `json:"u"`
			Q hexBytes `json:"q"`
		} `json:"points"`
	} `json:"scalar_mult_vfy"`
}

func readVectors(t testing.TB) *vectorFile {
	t.Helper()
	b, err := os.ReadFile("testdata/cpace-x25519-sha512.json")
	if err != nil {
		t.Fatal(err)
	}
	// The draft uses "ya" for the scalar and "Ya" for the share, which
	// encoding/json would conflate (it matches names case-insensitively).
	var raw struct {
		G map[string]hexBytes `json:"G_25519"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	g := raw.G
	v.G25519.Ya, v.G25519.YaShare = g["ya"], g["Ya"]
	v.G25519.Yb, v.G25519.YbShare = g["yb"], g["Yb"]
	v.G25519.PRS, v.G25519.CI, v.G25519.Sid = g["PRS"], g["CI"], g["sid"]
	v.G25519.G, v.G25519.K, v.G25519.ADa, v.G25519.ADb = g["g"], g["K"], g["ADa"], g["ADb"]
	if len(v.G25519.Ya) != 32 || len(v.G25519.YaShare) != 32 || len(v.ScalarMultVfy.Points) != 12 {
		t.Fatal("vectors file incomplete")
	}
	return &v
}

func TestStringUtils(t *testing.T) {
	v := readVectors(t)
	su := v.StringUtils
	check := func(name string, got []byte) {
		t.Helper()
		if !bytes.Equal(got, su[name]) {
			t.Errorf("%s = %x, want %x", name, got, su[name])
		}
	}
	check("prepend_len_empty", prependLen(nil, nil))
	check("prepend_len_1234", prependLen(nil, []byte("1234")))
	r := make([]byte, 128)
	for i := range r {
		r[i] = byte(i)
	}
	check("prepend_len_range127_prefix", prependLen(nil, r[:127])[:1])
	check("prepend_len_range128_prefix", prependLen(nil, r)[:2])
	if got := prependLen(nil, r); !bytes.Equal(got[2:], r) || len(got) != 130 {
		t.Errorf("prepend_len(range(128)) = %x", got)
	}
	check("lv_cat_1234_5__678", lvCat([]byte("1234"), []byte("5"), nil, []byte("678")))
	check("transcript_ir_1", transcriptIR([]byte("123"), []byte("PartyA"), []byte("234"), []byte("PartyB")))
	check("transcript_ir_2", transcriptIR([]byte("3456"), []byte("PartyA"), []byte("2345"), []byte("PartyB")))
}

// fixedRand returns the given bytes as randomness.
type fixedRand []byte

func (r *fixedRand) Read(p []byte) (int, error) {
	n := copy(p, *r)
	*r = (*r)[n:]
	if n < len(p) {
		return n, errors.New("out of randomness")
	}
	return n, nil
}

func TestDraftVectors(t *testing.T) {
	v := readVectors(t).G25519
	if gs := generatorString(v.PRS, v.CI, v.Sid); !bytes.Equal(gs, v.GeneratorString) {
		t.Errorf("generator_string = %x\nwant %x", gs, v.GeneratorString)
	}
	g := Generator(v.PRS, v.CI, v.Sid)
	if !bytes.Equal(g[:], v.G) {
		t.Errorf("g = %x, want %x", g, v.G)
	}

	ra := fixedRand(bytes.Clone(v.Ya))
	a, ya, err := NewInitiator(&ra, v.PRS, v.CI, v.Sid, v.ADa)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ya, v.YaShare) {
		t.Errorf("Ya = %x, want %x", ya, v.YaShare)
	}
	rb := fixedRand(bytes.Clone(v.Yb))
	yb, iskB, err := Respond(&rb, v.PRS, v.CI, v.Sid, v.ADb, ya, v.ADa)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(yb, v.YbShare) {
		t.Errorf("Yb = %x, want %x", yb, v.YbShare)
	}
	if k, _ := scalarMult(v.Ya, v.YbShare); !bytes.Equal(k, v.K) {
		t.Errorf("K = %x, want %x", k, v.K)
	}
	if tr := transcriptIR(v.YaShare, v.ADa, v.YbShare, v.ADb); !bytes.Equal(tr, v.TranscriptIR) {
		t.Errorf("transcript_ir = %x, want %x", tr, v.TranscriptIR)
	}
	iskA, err := a.Finish(yb, v.ADb)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(iskA[:], v.ISKIR) || !bytes.Equal(iskB[:], v.ISKIR) {
		t.Errorf("ISK = %x / %x, want %x", iskA, iskB, v.ISKIR)
	}
	if _, err := a.Finish(yb, v.ADb); err == nil {
		t.Error("second Finish succeeded")
	}
}

func TestGeneratorHash(t *testing.T) {
	v := readVectors(t).G25519
	// decodeUCoordinate clears bit 255 of the hash.
	h := bytes.Clone(v.GeneratorStringHash)
	h[31] &= 0x7f
	if !bytes.Equal(h, v.DecodedFieldElement) {
		t.Fatalf("decoded field element %x, want %x", h, v.DecodedFieldElement)
	}
	u, _ := new(field.Element).SetBytes(v.GeneratorStringHash)
	if !bytes.Equal(u.Bytes(), v.DecodedFieldElement) {
		t.Errorf("SetBytes(hash) = %x, want %x", u.Bytes(), v.DecodedFieldElement)
	}
}

func TestScalarMultVfy(t *testing.T) {
	v := readVectors(t).ScalarMultVfy
	zero := make([]byte, 32)
	for i, p := range v.Points {
		q, err := scalarMult(v.S, p.U)
		if bytes.Equal(p.Q, zero) {
			if !errors.Is(err, ErrInvalidPoint) {
				t.Errorf("u%d: scalar_mult_vfy = %x, %v; want ErrInvalidPoint", i, q, err)
			}
			// The abort must also happen inside the protocol.
			if _, _, err := Respond(rand.Reader, []byte("pw"), nil, nil, nil, p.U, nil); !errors.Is(err, ErrInvalidPoint) {
				t.Errorf("u%d: Respond = %v, want ErrInvalidPoint", i, err)
			}
			a, _, err := NewInitiator(rand.Reader, []byte("pw"), nil, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Finish(p.U, nil); !errors.Is(err, ErrInvalidPoint) {
				t.Errorf("u%d: Finish = %v, want ErrInvalidPoint", i, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(q, p.Q) {
			t.Errorf("u%d: scalar_mult_vfy = %x, %v; want %x", i, q, err, p.Q)
		}
	}
}

// TestElligator2 checks that the map lands on the curve: u^3 + A u^2 + u
// must be a square for every output.
func TestElligator2(t *testing.T) {
	for i := range 200 {
		var b [32]byte
		b[0], b[1] = byte(i), byte(i>>8)
		if i >= 100 {
			rand.Read(b[:])
		}
		r, _ := new(field.Element).SetBytes(b[:])
		u := elligator2(r)
		gu := new(field.Element).Add(u, feA)
		gu.Multiply(gu, u)
		gu.Add(gu, feOne)
		gu.Multiply(gu, u)
		if _, ok := new(field.Element).SqrtRatio(gu, feOne); ok != 1 {
			t.Fatalf("elligator2(%x) = %x is not on the curve", b, u.Bytes())
		}
	}
}

func TestMismatch(t *testing.T) {
	run := func(prsA, prsB, ciA, ciB, sidA, sidB []byte) bool {
		a, ya, err := NewInitiator(rand.Reader, prsA, ciA, sidA, []byte("a"))
		if err != nil {
			t.Fatal(err)
		}
		yb, kb, err := Respond(rand.Reader, prsB, ciB, sidB, []byte("b"), ya, []byte("a"))
		if err != nil {
			t.Fatal(err)
		}
		ka, err := a.Finish(yb, []byte("b"))
		if err != nil {
			t.Fatal(err)
		}
		return ka == kb
	}
	p, q := []byte("123456789012"), []byte("123456789013")
	if !run(p, p, []byte("ci"), []byte("ci"), []byte("s"), []byte("s")) {
		t.Error("same inputs gave different keys")
	}
	if run(p, q, nil, nil, nil, nil) {
		t.Error("different passwords gave the same key")
	}
	if run(p, p, []byte("ci"), []byte("cj"), nil, nil) {
		t.Error("different CI gave the same key")
	}
	if run(p, p, nil, nil, []byte("s"), []byte("t")) {
		t.Error("different sid gave the same key")
	}
}

func FuzzRespond(f *testing.F) {
	v := readVectors(f)
	f.Add([]byte(v.G25519.YaShare))
	for _, p := range v.ScalarMultVfy.Points {
		f.Add([]byte(p.U))
	}
	f.Fuzz(func(t *testing.T, ya []byte) {
		yb, k, err := Respond(rand.Reader, []byte("pw"), nil, nil, nil, ya, nil)
		if err != nil {
			if !errors.Is(err, ErrInvalidPoint) {
				t.Fatalf("Respond = %v", err)
			}
			return
		}
		if len(yb) != PointSize || k == [ISKSize]byte{} {
			t.Fatal("bad output")
		}
	})
}
