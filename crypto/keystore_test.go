package crypto

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cheapKDF keeps the tests fast. Never use it for real keystores.
var cheapKDF = KDFParams{Time: 1, Memory: 1024, Threads: 1}

func testKeystore(t *testing.T, n int) *Keystore {
	t.Helper()
	ks := &Keystore{}
	for i := range n {
		id, err := GenerateIdentity()
		if err != nil {
			t.Fatal(err)
		}
		ks.Entries = append(ks.Entries, KeyEntry{
			Name:     []string{"", "work", "héllo \"quoted\""}[i%3],
			Identity: id,
			Created:  time.Date(2025, 1, 2, 3, 4, 5, 6789, time.FixedZone("X", 3600)).Add(time.Duration(i) * time.Hour),
		})
	}
	return ks
}

func sameKeystore(t *testing.T, got, want *Keystore) {
	t.Helper()
	if len(got.Entries) != len(want.Entries) {
		t.Fatalf("got %d entries, want %d", len(got.Entries), len(want.Entries))
	}
	for i, g := range got.Entries {
		w := want.Entries[i]
		if g.Name != w.Name || !g.Created.Equal(w.Created) || g.Identity.String() != w.Identity.String() {
			t.Errorf("entry %d: got %q %v %v, want %q %v %v", i, g.Name, g.Created, g.Identity.UserID(), w.Name, w.Created, w.Identity.UserID())
		}
	}
}

func checkMode(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
}

func checkNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if strings.Contains(de.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", de.Name())
		}
	}
}

func TestKeystoreEncrypted(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.json")
	ks := testKeystore(t, 3)
	pass := []byte("correct horse battery staple")
	if err := WriteKeystore(path, ks, pass, cheapKDF); err != nil {
		t.Fatal(err)
	}
	checkMode(t, path)
	checkNoTempFiles(t, dir)

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ks.Entries {
		if bytes.Contains(data, []byte(e.Identity.String())) || bytes.Contains(data, []byte(e.Identity.UserID().String())) {
			t.Fatal("encrypted keystore contains keys or user IDs in the clear")
		}
	}

	enc, err := KeystoreIsEncrypted(path)
	if err != nil || !enc {
		t.Errorf("KeystoreIsEncrypted = %v, %v; want true", enc, err)
	}
	got, err := ReadKeystore(path, pass)
	if err != nil {
		t.Fatal(err)
	}
	sameKeystore(t, got, ks)
	for _, e := range ks.Entries {
		id, ok := got.Find(e.Identity.UserID())
		if !ok || id.String() != e.Identity.String() {
			t.Errorf("Find(%v) = %v, %v", e.Identity.UserID(), id, ok)
		}
	}
	stranger, _ := GenerateIdentity()
	if id, ok := got.Find(stranger.UserID()); ok || id != nil {
		t.Error("Find of an unknown user succeeded")
	}

	if _, err := ReadKeystore(path, []byte("correct horse battery stapler")); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("wrong passphrase: %v, want ErrWrongPassphrase", err)
	}
	if _, err := ReadKeystore(path, nil); !errors.Is(err, ErrPassphraseRequired) {
		t.Errorf("nil passphrase: %v, want ErrPassphraseRequired", err)
	}
	if _, err := ReadKeystore(path, []byte{}); !errors.Is(err, ErrPassphraseRequired) {
		t.Errorf("empty passphrase: %v, want ErrPassphraseRequired", err)
	}

	// Rewriting replaces the file atomically and keeps mode 0600, even if
	// the old file had looser permissions.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	ks.Entries = ks.Entries[:1]
	if err := WriteKeystore(path, ks, pass, cheapKDF); err != nil {
		t.Fatal(err)
	}
	checkMode(t, path)
	checkNoTempFiles(t, dir)
	got, err = ReadKeystore(path, pass)
	if err != nil {
		t.Fatal(err)
	}
	sameKeystore(t, got, ks)
}

func TestKeystoreUnencrypted(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.json")
	ks := testKeystore(t, 2)
	if err := WriteKeystoreUnencrypted(path, ks); err != nil {
		t.Fatal(err)
	}
	checkMode(t, path)
	checkNoTempFiles(t, dir)
	enc, err := KeystoreIsEncrypted(path)
	if err != nil || enc {
		t.Errorf("KeystoreIsEncrypted = %v, %v; want false", enc, err)
	}
	for _, pass := range [][]byte{nil, []byte("ignored")} {
		got, err := ReadKeystore(path, pass)
		if err != nil {
			t.Fatal(err)
		}
		sameKeystore(t, got, ks)
	}
	data, _ := os.ReadFile(path)
	if !bytes.Contains(data, []byte(`"kdf":"none"`)) || !bytes.Contains(data, []byte(ks.Entries[0].Identity.String())) {
		t.Errorf("unexpected unencrypted format: %s", data)
	}

	// An empty keystore round-trips too.
	if err := WriteKeystoreUnencrypted(path, &Keystore{}); err != nil {
		t.Fatal(err)
	}
	got, err := ReadKeystore(path, nil)
	if err != nil || len(got.Entries) != 0 {
		t.Errorf("empty keystore: %v, %v", got, err)
	}
}

func TestKeystoreEmptyPassphrase(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.json")
	for _, pass := range [][]byte{nil, {}} {
		if err := WriteKeystore(path, testKeystore(t, 1), pass, cheapKDF); !errors.Is(err, ErrEmptyPassphrase) {
			t.Errorf("WriteKeystore(%q) = %v, want ErrEmptyPassphrase", pass, err)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Error("a file was written")
	}
	checkNoTempFiles(t, dir)
}

func TestKeystoreWriteErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.json")
	for _, p := range []KDFParams{{}, {Time: 1, Memory: 1024}, {Time: 0, Memory: 1024, Threads: 1}, {Time: 1, Memory: 7, Threads: 1}} {
		if err := WriteKeystore(path, testKeystore(t, 1), []byte("x"), p); err == nil {
			t.Errorf("WriteKeystore with params %+v succeeded", p)
		}
	}
	if err := WriteKeystoreUnencrypted(path, &Keystore{Entries: []KeyEntry{{Name: "nil"}}}); err == nil {
		t.Error("WriteKeystoreUnencrypted with a nil identity succeeded")
	}
	if err := WriteKeystoreUnencrypted(filepath.Join(dir, "missing", "keys.json"), testKeystore(t, 1)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("writing into a missing directory: %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Error("a file was written")
	}
	checkNoTempFiles(t, dir)
}

func TestDefaultKDFParams(t *testing.T) {
	if p := DefaultKDFParams(); p != (KDFParams{Time: 3, Memory: 64 * 1024, Threads: 4}) {
		t.Errorf("DefaultKDFParams() = %+v", p)
	}
	if err := DefaultKDFParams().check(); err != nil {
		t.Error(err)
	}
}

func TestReadKeystoreMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.json")
	if _, err := ReadKeystore(path, []byte("x")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadKeystore: %v, want fs.ErrNotExist", err)
	}
	if _, err := KeystoreIsEncrypted(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("KeystoreIsEncrypted: %v, want fs.ErrNotExist", err)
	}
}

// editKeystore applies edit to the JSON object of the keystore file.
func editKeystore(t *testing.T, path string, edit func(m map[string]any)) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	data, err = json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestKeystoreCorrupt(t *testing.T) {
	dir := t.TempDir()
	pass := []byte("pw")
	encPath := filepath.Join(dir, "enc.json")
	clearPath := filepath.Join(dir, "clear.json")
	ks := testKeystore(t, 2)
	if err := WriteKeystore(encPath, ks, pass, cheapKDF); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeystoreUnencrypted(clearPath, ks); err != nil {
		t.Fatal(err)
	}
	encData, _ := os.ReadFile(encPath)
	clearData, _ := os.ReadFile(clearPath)

	type tc struct {
		name string
		base []byte
		edit func(m map[string]any)
		raw  []byte
		want error
	}
	cases := []tc{
		{name: "empty file", raw: []byte{}, want: ErrKeystoreCorrupt},
		{name: "garbage", raw: []byte("\x00\x01garbage"), want: ErrKeystoreCorrupt},
		{name: "JSON array", raw: []byte("[1,2]"), want: ErrKeystoreCorrupt},
		{name: "empty object", raw: []byte("{}"), want: ErrKeystoreCorrupt},
		{name: "trailing data", raw: append(bytes.TrimSpace(bytes.Clone(encData)), "{}"...), want: ErrKeystoreCorrupt},
		{name: "truncated", raw: encData[:len(encData)/2], want: ErrKeystoreCorrupt},
		{name: "version 2", base: encData, edit: func(m map[string]any) { m["weft_keystore"] = 2 }, want: ErrKeystoreVersion},
		{name: "version 0", base: clearData, edit: func(m map[string]any) { m["weft_keystore"] = 0 }, want: ErrKeystoreVersion},
		{name: "version 2, other structure", raw: []byte(`{"weft_keystore":2,"whatever":[1]}`), want: ErrKeystoreVersion},
		{name: "version string", base: encData, edit: func(m map[string]any) { m["weft_keystore"] = "1" }, want: ErrKeystoreVersion},
		{name: "no kdf", base: encData, edit: func(m map[string]any) { delete(m, "kdf") }, want: ErrKeystoreCorrupt},
		{name: "unknown kdf", base: encData, edit: func(m map[string]any) { m["kdf"].(map[string]any)["alg"] = "scrypt" }, want: ErrKeystoreCorrupt},
		{name: "kdf time 0", base: encData, edit: func(m map[string]any) { m["kdf"].(map[string]any)["time"] = 0 }, want: ErrKeystoreCorrupt},
		{name: "kdf huge memory", base: encData, edit: func(m map[string]any) { m["kdf"].(map[string]any)["memory"] = 1 << 31 }, want: ErrKeystoreCorrupt},
		{name: "kdf threads 0", base: encData, edit: func(m map[string]any) { m["kdf"].(map[string]any)["threads"] = 0 }, want: ErrKeystoreCorrupt},
		{name: "kdf unknown field", base: encData, edit: func(m map[string]any) { m["kdf"].(map[string]any)["pepper"] = 1 }, want: ErrKeystoreCorrupt},
		{name: "kdf string", base: encData, edit: func(m map[string]any) { m["kdf"] = "argon2id" }, want: ErrKeystoreCorrupt},
		{name: "unknown field", base: encData, edit: func(m map[string]any) { m["extra"] = true }, want: ErrKeystoreCorrupt},
		{name: "no salt", base: encData, edit: func(m map[string]any) { delete(m, "salt") }, want: ErrKeystoreCorrupt},
		{name: "short salt", base: encData, edit: func(m map[string]any) { m["salt"] = "AAAA" }, want: ErrKeystoreCorrupt},
		{name: "salt not base64", base: encData, edit: func(m map[string]any) { m["salt"] = "!!" }, want: ErrKeystoreCorrupt},
		{name: "no sealed", base: encData, edit: func(m map[string]any) { delete(m, "sealed") }, want: ErrKeystoreCorrupt},
		{name: "short sealed", base: encData, edit: func(m map[string]any) { m["sealed"] = "AAAA" }, want: ErrKeystoreCorrupt},
		{name: "clear entries in encrypted", base: encData, edit: func(m map[string]any) { m["entries"] = []any{} }, want: ErrKeystoreCorrupt},
		// Changing the KDF parameters or the salt (authenticated as
		// additional data, and inputs to the KDF) makes opening fail.
		{name: "other salt", base: encData, edit: func(m map[string]any) { m["salt"] = "AAAAAAAAAAAAAAAAAAAAAA==" }, want: ErrWrongPassphrase},
		{name: "other kdf time", base: encData, edit: func(m map[string]any) { m["kdf"].(map[string]any)["time"] = 2 }, want: ErrWrongPassphrase},
		{name: "no entries", base: clearData, edit: func(m map[string]any) { delete(m, "entries") }, want: ErrKeystoreCorrupt},
		{name: "null entries", base: clearData, edit: func(m map[string]any) { m["entries"] = nil }, want: ErrKeystoreCorrupt},
		{name: "entries object", base: clearData, edit: func(m map[string]any) { m["entries"] = map[string]any{} }, want: ErrKeystoreCorrupt},
		{name: "bad secret key", base: clearData, edit: func(m map[string]any) {
			m["entries"].([]any)[1].(map[string]any)["secret_key"] = "WEFT-SECRET-KEY-1QQQQ"
		}, want: ErrKeystoreCorrupt},
		{name: "bad created", base: clearData, edit: func(m map[string]any) {
			m["entries"].([]any)[0].(map[string]any)["created"] = "yesterday"
		}, want: ErrKeystoreCorrupt},
		{name: "salt in clear keystore", base: clearData, edit: func(m map[string]any) { m["salt"] = "AAAAAAAAAAAAAAAAAAAAAA==" }, want: ErrKeystoreCorrupt},
	}
	for _, c := range cases {
		path := filepath.Join(dir, "case.json")
		if c.raw != nil {
			if err := os.WriteFile(path, c.raw, 0o600); err != nil {
				t.Fatal(err)
			}
		} else {
			if err := os.WriteFile(path, c.base, 0o600); err != nil {
				t.Fatal(err)
			}
			editKeystore(t, path, c.edit)
		}
		_, err := ReadKeystore(path, pass)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: ReadKeystore = %v, want %v", c.name, err, c.want)
		}
		if c.want != ErrWrongPassphrase {
			if _, err := KeystoreIsEncrypted(path); !errors.Is(err, c.want) {
				t.Errorf("%s: KeystoreIsEncrypted = %v, want %v", c.name, err, c.want)
			}
		}
	}

	// Flipping any byte of the sealed data is detected.
	var m map[string]any
	if err := json.Unmarshal(encData, &m); err != nil {
		t.Fatal(err)
	}
	sealed, err := base64.StdEncoding.DecodeString(m["sealed"].(string))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "case.json")
	for i := range sealed {
		if err := os.WriteFile(path, encData, 0o600); err != nil {
			t.Fatal(err)
		}
		editKeystore(t, path, func(m map[string]any) {
			s := bytes.Clone(sealed)
			s[i] ^= 0x10
			m["sealed"] = b64(s)
		})
		if _, err := ReadKeystore(path, pass); !errors.Is(err, ErrWrongPassphrase) {
			t.Errorf("tampered sealed data at %d: %v, want ErrWrongPassphrase", i, err)
		}
	}
}

// TestKeystoreFormat pins the documented file format, by decrypting a
// keystore by hand.
func TestKeystoreFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	ks := testKeystore(t, 1)
	pass := []byte("pw")
	if err := WriteKeystore(path, ks, pass, cheapKDF); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	var f struct {
		Version int `json:"weft_keystore"`
		KDF     struct {
			Alg     string `json:"alg"`
			Time    uint32 `json:"time"`
			Memory  uint32 `json:"memory"`
			Threads uint8  `json:"threads"`
		} `json:"kdf"`
		Salt   []byte `json:"salt"`
		Sealed []byte `json:"sealed"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if f.Version != 1 || f.KDF.Alg != "argon2id" || f.KDF.Time != 1 || f.KDF.Memory != 1024 || f.KDF.Threads != 1 || len(f.Salt) != 16 {
		t.Fatalf("unexpected header: %s", data)
	}
	header := "weft-keystore/v1\nargon2id time=1 memory=1024 threads=1\nsalt=" + b64(f.Salt) + "\n"
	key := deriveKeystoreKey(pass, f.Salt, cheapKDF)
	pt, err := Open(key, f.Sealed, []byte(header))
	if err != nil {
		t.Fatalf("opening by hand: %v", err)
	}
	var entries []map[string]string
	if err := json.Unmarshal(pt, &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0]["secret_key"] != ks.Entries[0].Identity.String() || entries[0]["name"] != ks.Entries[0].Name {
		t.Errorf("unexpected entries: %s", pt)
	}
}

func b64(b []byte) string {
	return base64.StdEncoding.EncodeToString(b)
}
