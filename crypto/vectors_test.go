package crypto

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
	"testing/cryptotest"

	"filippo.io/edwards25519"

	"github.com/weftnet/weft/crypto/internal/bech32"
)

var update = flag.Bool("update", false, "regenerate testdata/vectors.json")

const vectorsFile = "testdata/vectors.json"

// hexBytes is a byte string that appears as hex in the vectors file.
type hexBytes []byte

func (h hexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }
func (h *hexBytes) UnmarshalText(b []byte) error {
	d, err := hex.DecodeString(string(b))
	*h = d
	return err
}

type vectors struct {
	Comment           []string              `json:"comment"`
	Identities        []identityVector      `json:"identities"`
	Signatures        []signatureVector     `json:"signatures"`
	Sealed            []sealVector          `json:"sealed"`
	Wrapped           []wrapVector          `json:"wrapped"`
	InvalidUserIDs    []invalidStringVector `json:"invalid_user_ids"`
	InvalidSecretKeys []invalidStringVector `json:"invalid_secret_keys"`
}

type identityVector struct {
	Seed          hexBytes `json:"seed"`
	Ed25519Public hexBytes `json:"ed25519_public"`
	UserID        string   `json:"user_id"`
	SecretKey     string   `json:"secret_key"`
	X25519Public  hexBytes `json:"x25519_public"`
	X25519Private hexBytes `json:"x25519_private"`
}

type signatureVector struct {
	Seed      hexBytes `json:"seed"`
	Domain    string   `json:"domain"`
	Message   hexBytes `json:"message"`
	Signature hexBytes `json:"signature"`
}

type sealVector struct {
	Key       hexBytes `json:"key"`
	Nonce     hexBytes `json:"nonce"`
	Plaintext hexBytes `json:"plaintext"`
	AAD       hexBytes `json:"aad"`
	Sealed    hexBytes `json:"sealed"`
}

type wrapVector struct {
	RecipientSeed hexBytes `json:"recipient_seed"`
	Recipient     string   `json:"recipient"`
	Binding       hexBytes `json:"binding"`
	Epoch         uint32   `json:"epoch"`
	Key           hexBytes `json:"key"`
	// RandSeed is the seed given to testing/cryptotest.SetGlobalRandom
	// to make the ephemeral HPKE key deterministic.
	RandSeed uint64   `json:"rand_seed"`
	Wrapped  hexBytes `json:"wrapped"`
}

type invalidStringVector struct {
	Input         string `json:"input"`
	Reason        string `json:"reason"`
	ErrorContains string `json:"error_contains"`
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func seq(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

// rfc8032Seed is the secret key of RFC 8032, section 7.1, TEST 1.
var rfc8032Seed = mustHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")

var vectorSeeds = [][]byte{rfc8032Seed, make([]byte, 32), seq(0, 32)}

// generateVectors computes the test vectors from their inputs, which are
// defined here.
func generateVectors(t *testing.T) *vectors {
	t.Helper()
	v := &vectors{Comment: []string{
		"Test vectors for github.com/weftnet/weft/crypto. Byte strings are hex.",
		"Regenerate with: go test ./crypto -run TestVectors -update",
		"signatures: Ed25519 over \"weft-sig-v1\" 0x00 domain 0x00 message.",
		"sealed: XChaCha20-Poly1305, sealed = nonce || ciphertext || tag.",
		"wrapped: HPKE base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305,",
		"  info = \"weft/thread-key/v1\" || binding || epoch (uint32 big endian), wrapped = enc || ct.",
		"  rand_seed is the testing/cryptotest.SetGlobalRandom seed used to generate it (Go-specific).",
	}}
	ids := make([]*Identity, len(vectorSeeds))
	for i, seed := range vectorSeeds {
		id, err := NewIdentityFromSeed(seed)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
		u := id.UserID()
		xpub, err := u.X25519()
		if err != nil {
			t.Fatal(err)
		}
		v.Identities = append(v.Identities, identityVector{
			Seed:          seed,
			Ed25519Public: u[:],
			UserID:        u.String(),
			SecretKey:     id.String(),
			X25519Public:  xpub,
			X25519Private: id.X25519(),
		})
	}

	sigInputs := []struct {
		id     int
		domain string
		msg    []byte
	}{
		{0, "event", nil},
		{0, "event", []byte("hello, weft")},
		{0, "invite", []byte("hello, weft")},
		{1, "test", seq(0, 100)},
		{2, "", []byte{0}},
	}
	for _, in := range sigInputs {
		v.Signatures = append(v.Signatures, signatureVector{
			Seed:      vectorSeeds[in.id],
			Domain:    in.domain,
			Message:   in.msg,
			Signature: ids[in.id].Sign(in.domain, in.msg),
		})
	}

	sealInputs := []struct{ key, nonce, plaintext, aad []byte }{
		{seq(0, 32), seq(0x40, 24), nil, nil},
		{seq(0, 32), seq(0x40, 24), []byte("hello, weft"), []byte("thread:1")},
		{seq(0x80, 32), seq(0x40, 24), []byte("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it."), mustHex("50515253c0c1c2c3c4c5c6c7")},
		{make([]byte, 32), make([]byte, 24), seq(0, 200), seq(1, 3)},
	}
	for _, in := range sealInputs {
		v.Sealed = append(v.Sealed, sealVector{
			Key:       in.key,
			Nonce:     in.nonce,
			Plaintext: in.plaintext,
			AAD:       in.aad,
			Sealed:    sealWithNonce(ThreadKey(in.key), [24]byte(in.nonce), in.plaintext, in.aad),
		})
	}

	wrapInputs := []struct {
		id       int
		binding  []byte
		epoch    uint32
		key      []byte
		randSeed uint64
	}{
		{0, bytes.Repeat([]byte{0xaa}, 32), 0, bytes.Repeat([]byte{0x11}, 32), 1},
		{0, bytes.Repeat([]byte{0xaa}, 32), 7, bytes.Repeat([]byte{0x11}, 32), 2},
		{2, seq(0x20, 32), 0xfffffffe, seq(0x60, 32), 3},
	}
	for _, in := range wrapInputs {
		cryptotest.SetGlobalRandom(t, in.randSeed)
		w, err := WrapThreadKey(ids[in.id].UserID(), [32]byte(in.binding), in.epoch, ThreadKey(in.key))
		if err != nil {
			t.Fatal(err)
		}
		v.Wrapped = append(v.Wrapped, wrapVector{
			RecipientSeed: vectorSeeds[in.id],
			Recipient:     ids[in.id].UserID().String(),
			Binding:       in.binding,
			Epoch:         in.epoch,
			Key:           in.key,
			RandSeed:      in.randSeed,
			Wrapped:       w,
		})
	}

	v.InvalidUserIDs = invalidUserIDs(t, ids[0])
	v.InvalidSecretKeys = invalidSecretKeys(t, ids[0])
	return v
}

func mustEncode(t *testing.T, hrp string, data []byte) string {
	t.Helper()
	s, err := bech32.Encode(hrp, data)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// typo replaces the character at position i of a bech32 string with the
// next character of the bech32 alphabet.
func typo(s string, i int) string {
	const charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
	c := strings.IndexByte(charset, strings.ToLower(s[i : i+1])[0])
	r := string(charset[(c+1)%len(charset)])
	if s[i] >= 'A' && s[i] <= 'Z' {
		r = strings.ToUpper(r)
	}
	return s[:i] + r + s[i+1:]
}

func invalidUserIDs(t *testing.T, id *Identity) []invalidStringVector {
	valid := id.UserID().String()
	pub := id.UserID()

	// 32 bytes that are not the encoding of a curve point.
	var notPoint []byte
	for i := 2; notPoint == nil; i++ {
		b := make([]byte, 32)
		b[0] = byte(i)
		if _, err := new(edwards25519.Point).SetBytes(b); err != nil {
			notPoint = b
		}
	}
	// A non-canonical encoding (y + p, where p = 2^255 - 19) of a point
	// that is not of small order.
	var nonCanonical []byte
	for k := byte(2); k < 19 && nonCanonical == nil; k++ {
		b := make([]byte, 32)
		b[0] = k
		p, err := new(edwards25519.Point).SetBytes(b)
		if err != nil || new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
			continue
		}
		nc := bytes.Repeat([]byte{0xff}, 32)
		nc[0] = 0xed + k
		nc[31] = 0x7f
		nonCanonical = nc
	}
	if nonCanonical == nil {
		t.Fatal("no non-canonical test point found")
	}
	identityPoint := edwards25519.NewIdentityPoint().Bytes()
	// A point of order 8.
	order8 := mustHex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")

	mixed := []byte(valid)
	mixed[len(mixed)-1] = byte(strings.ToUpper(string(mixed[len(mixed)-1]))[0])

	return []invalidStringVector{
		{typo(valid, 10), "one-character typo", "checksum mismatch"},
		{typo(valid, len(valid)-1), "typo in the checksum", "checksum mismatch"},
		{"waft" + valid[4:], "typo in the prefix", "checksum mismatch"},
		{strings.ToUpper(valid), "upper case", "lower case"},
		{string(mixed), "mixed case", "lower case"},
		{mustEncode(t, "age", pub[:]), "wrong prefix", "prefix"},
		{valid[:len(valid)-1], "truncated", "checksum mismatch"},
		{valid[:20], "truncated", "checksum mismatch"},
		{"weft1", "no data", "invalid position"},
		{"", "empty", "invalid position"},
		{" " + valid, "leading space", "invalid character"},
		{valid + "\n", "trailing newline", "invalid character"},
		{mustEncode(t, "weft", pub[:31]), "31-byte key", "31 bytes"},
		{mustEncode(t, "weft", append(pub[:], 0)), "33-byte key", "33 bytes"},
		{mustEncode(t, "weft", notPoint), "not a curve point", "not a valid Ed25519 public key"},
		{mustEncode(t, "weft", identityPoint), "identity point (small order)", "small order"},
		{mustEncode(t, "weft", order8), "point of order 8", "small order"},
		{mustEncode(t, "weft", make([]byte, 32)), "all-zero key (point of order 4)", "small order"},
		{mustEncode(t, "weft", nonCanonical), "non-canonical point encoding", "non-canonical"},
	}
}

func invalidSecretKeys(t *testing.T, id *Identity) []invalidStringVector {
	valid := id.String()
	seed := id.Seed()
	return []invalidStringVector{
		{typo(valid, 20), "one-character typo", "checksum mismatch"},
		{strings.ToLower(valid), "lower case", "upper case"},
		{mustEncode(t, "AGE-SECRET-KEY-", seed), "wrong prefix", "prefix"},
		{mustEncode(t, "WEFT-SECRET-KEY-", seed[:31]), "31-byte seed", "31 bytes"},
		{valid[:len(valid)-1], "truncated", "checksum mismatch"},
		{id.UserID().String(), "a user ID", "upper case"},
		{"", "empty", "bech32"},
	}
}

func TestVectors(t *testing.T) {
	want := generateVectors(t)
	if *update {
		b, err := json.MarshalIndent(want, "", "\t")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorsFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", vectorsFile)
	}
	got := readVectors(t)
	sections := []struct {
		name      string
		got, want any
	}{
		{"identities", got.Identities, want.Identities},
		{"signatures", got.Signatures, want.Signatures},
		{"sealed", got.Sealed, want.Sealed},
		{"wrapped", got.Wrapped, want.Wrapped},
		{"invalid_user_ids", got.InvalidUserIDs, want.InvalidUserIDs},
		{"invalid_secret_keys", got.InvalidSecretKeys, want.InvalidSecretKeys},
	}
	for _, sec := range sections {
		g, w := jsonElements(t, sec.got), jsonElements(t, sec.want)
		if len(g) != len(w) {
			t.Errorf("%s: section %q has %d vectors, the generator %d", vectorsFile, sec.name, len(g), len(w))
			continue
		}
		for i := range g {
			if g[i] != w[i] {
				t.Errorf("%s: %s[%d] differs from the generated vector:\nfile:      %s\ngenerated: %s", vectorsFile, sec.name, i, g[i], w[i])
				if sec.name == "wrapped" {
					t.Log("if only the wrapped bytes differ, the way Go uses randomness in crypto/ecdh or crypto/hpke may have changed; TestVectorsFile still checks that they unwrap")
				}
			}
		}
	}
}

// jsonElements returns the JSON encoding of each element of a slice.
func jsonElements(t *testing.T, slice any) []string {
	t.Helper()
	b, err := json.Marshal(slice)
	if err != nil {
		t.Fatal(err)
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(b, &elems); err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(elems))
	for i, e := range elems {
		out[i] = string(e)
	}
	return out
}

func readVectors(t testing.TB) *vectors {
	t.Helper()
	b, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: %v", vectorsFile, err)
	}
	if len(v.Identities) == 0 || len(v.Signatures) == 0 || len(v.Sealed) == 0 || len(v.Wrapped) == 0 ||
		len(v.InvalidUserIDs) == 0 || len(v.InvalidSecretKeys) == 0 {
		t.Fatalf("%s: a section is empty", vectorsFile)
	}
	return &v
}

// TestVectorsFile checks the committed vectors directly, the way another
// implementation would, independently of how they were generated.
func TestVectorsFile(t *testing.T) {
	v := readVectors(t)
	for _, iv := range v.Identities {
		id, err := NewIdentityFromSeed(iv.Seed)
		if err != nil {
			t.Fatal(err)
		}
		u := id.UserID()
		if !bytes.Equal(u[:], iv.Ed25519Public) {
			t.Errorf("seed %x: public key %x, want %x", iv.Seed, u[:], iv.Ed25519Public)
		}
		if u.String() != iv.UserID {
			t.Errorf("seed %x: user ID %s, want %s", iv.Seed, u, iv.UserID)
		}
		if id.String() != iv.SecretKey {
			t.Errorf("seed %x: secret key %s, want %s", iv.Seed, id, iv.SecretKey)
		}
		pu, err := ParseUserID(iv.UserID)
		if err != nil || pu != u {
			t.Errorf("ParseUserID(%s) = %v, %v", iv.UserID, pu, err)
		}
		pid, err := ParseIdentity(iv.SecretKey)
		if err != nil || !bytes.Equal(pid.Seed(), iv.Seed) {
			t.Errorf("ParseIdentity(%s) failed: %v", iv.SecretKey, err)
		}
		xpub, err := u.X25519()
		if err != nil || !bytes.Equal(xpub, iv.X25519Public) {
			t.Errorf("seed %x: X25519 public %x, %v; want %x", iv.Seed, xpub, err, iv.X25519Public)
		}
		if !bytes.Equal(id.X25519(), iv.X25519Private) {
			t.Errorf("seed %x: X25519 private %x, want %x", iv.Seed, id.X25519(), iv.X25519Private)
		}
	}
	for _, sv := range v.Signatures {
		id, err := NewIdentityFromSeed(sv.Seed)
		if err != nil {
			t.Fatal(err)
		}
		if sig := id.Sign(sv.Domain, sv.Message); !bytes.Equal(sig, sv.Signature) {
			t.Errorf("Sign(%q, %x) = %x, want %x", sv.Domain, sv.Message, sig, sv.Signature)
		}
		if err := Verify(id.UserID(), sv.Domain, sv.Message, sv.Signature); err != nil {
			t.Errorf("Verify(%q, %x): %v", sv.Domain, sv.Message, err)
		}
	}
	for _, sv := range v.Sealed {
		got := sealWithNonce(ThreadKey(sv.Key), [24]byte(sv.Nonce), sv.Plaintext, sv.AAD)
		if !bytes.Equal(got, sv.Sealed) {
			t.Errorf("seal(%x, %x, %x, %x) = %x, want %x", sv.Key, sv.Nonce, sv.Plaintext, sv.AAD, got, sv.Sealed)
		}
		pt, err := Open(ThreadKey(sv.Key), sv.Sealed, sv.AAD)
		if err != nil || !bytes.Equal(pt, sv.Plaintext) {
			t.Errorf("Open(%x) = %x, %v; want %x", sv.Sealed, pt, err, sv.Plaintext)
		}
	}
	for _, wv := range v.Wrapped {
		id, err := NewIdentityFromSeed(wv.RecipientSeed)
		if err != nil {
			t.Fatal(err)
		}
		if id.UserID().String() != wv.Recipient {
			t.Errorf("recipient %s, want %s", id.UserID(), wv.Recipient)
		}
		if len(wv.Wrapped) != WrappedKeySize {
			t.Errorf("wrapped key is %d bytes, want %d", len(wv.Wrapped), WrappedKeySize)
		}
		key, err := id.UnwrapThreadKey([32]byte(wv.Binding), wv.Epoch, wv.Wrapped)
		if err != nil || !bytes.Equal(key[:], wv.Key) {
			t.Errorf("UnwrapThreadKey(%x) = %x, %v; want %x", wv.Wrapped, key, err, wv.Key)
		}
		if _, err := id.UnwrapThreadKey([32]byte(wv.Binding), wv.Epoch+1, wv.Wrapped); !errors.Is(err, ErrUnwrap) {
			t.Errorf("unwrap with the wrong epoch: %v, want ErrUnwrap", err)
		}
	}
	for _, iv := range v.InvalidUserIDs {
		u, err := ParseUserID(iv.Input)
		if err == nil {
			t.Errorf("ParseUserID(%q) (%s) = %v, want error", iv.Input, iv.Reason, u)
			continue
		}
		if !errors.Is(err, ErrMalformedUserID) {
			t.Errorf("ParseUserID(%q) (%s) = %v, want ErrMalformedUserID", iv.Input, iv.Reason, err)
		}
		if !strings.Contains(err.Error(), iv.ErrorContains) {
			t.Errorf("ParseUserID(%q) (%s) = %q, want it to mention %q", iv.Input, iv.Reason, err, iv.ErrorContains)
		}
	}
	for _, iv := range v.InvalidSecretKeys {
		id, err := ParseIdentity(iv.Input)
		if err == nil {
			t.Errorf("ParseIdentity(%q) (%s) = %v, want error", iv.Input, iv.Reason, id.UserID())
			continue
		}
		if !errors.Is(err, ErrMalformedIdentity) {
			t.Errorf("ParseIdentity(%q) (%s) = %v, want ErrMalformedIdentity", iv.Input, iv.Reason, err)
		}
		if !strings.Contains(err.Error(), iv.ErrorContains) {
			t.Errorf("ParseIdentity(%q) (%s) = %q, want it to mention %q", iv.Input, iv.Reason, err, iv.ErrorContains)
		}
	}
}

// vectorStrings returns every string in the vectors file, for fuzz corpora.
func vectorStrings(t testing.TB) (userIDs, secretKeys, invalid []string) {
	v := readVectors(t)
	for _, iv := range v.Identities {
		userIDs = append(userIDs, iv.UserID)
		secretKeys = append(secretKeys, iv.SecretKey)
	}
	for _, iv := range v.InvalidUserIDs {
		invalid = append(invalid, iv.Input)
	}
	for _, iv := range v.InvalidSecretKeys {
		invalid = append(invalid, iv.Input)
	}
	return userIDs, secretKeys, invalid
}
