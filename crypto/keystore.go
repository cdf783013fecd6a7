package crypto

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/crypto/argon2"
)

// KeyEntry is one user secret key in a [Keystore].
type KeyEntry struct {
	Name     string // local nickname, may be ""
	Identity *Identity
	Created  time.Time
}

// Keystore is the set of user secret keys of one node. See the package
// documentation for its file format.
type Keystore struct {
	Entries []KeyEntry
}

// Find returns the Identity of user u, if the keystore has it.
func (ks *Keystore) Find(u UserID) (*Identity, bool) {
	for _, e := range ks.Entries {
		if e.Identity != nil && e.Identity.UserID() == u {
			return e.Identity, true
		}
	}
	return nil, false
}

// KDFParams are the Argon2id parameters used to derive a keystore's key from
// its passphrase. They are stored in the keystore file.
type KDFParams struct {
	Time    uint32 // number of passes
	Memory  uint32 // in KiB
	Threads uint8  // degree of parallelism
}

// DefaultKDFParams returns the parameters used for new keystores: the second
// recommendation of RFC 9106 (time 3, 64 MiB, 4 lanes).
func DefaultKDFParams() KDFParams {
	return KDFParams{Time: 3, Memory: 64 * 1024, Threads: 4}
}

// Limits on KDF parameters, to refuse files that would take unreasonable
// time or memory to open.
const (
	maxKDFTime   = 1000
	maxKDFMemory = 4 << 20 // KiB, that is 4 GiB
)

func (p KDFParams) check() error {
	switch {
	case p.Time < 1 || p.Time > maxKDFTime:
		return fmt.Errorf("argon2id time %d out of range [1, %d]", p.Time, maxKDFTime)
	case p.Threads < 1:
		return errors.New("argon2id threads must be at least 1")
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxKDFMemory:
		return fmt.Errorf("argon2id memory %d KiB out of range [%d, %d]", p.Memory, 8*uint32(p.Threads), maxKDFMemory)
	}
	return nil
}

const (
	keystoreVersion  = 1
	keystoreSaltSize = 16
	keystoreMaxSize  = 16 << 20
	kdfNone          = "none"
	kdfArgon2id      = "argon2id"
)

// File format types.
type (
	ksFile struct {
		Version *int            `json:"weft_keystore"`
		KDF     json.RawMessage `json:"kdf"`
		Salt    []byte          `json:"salt,omitempty"`
		Sealed  []byte          `json:"sealed,omitempty"`
		Entries json.RawMessage `json:"entries,omitempty"`
	}
	ksKDF struct {
		Alg     string `json:"alg"`
		Time    uint32 `json:"time"`
		Memory  uint32 `json:"memory"`
		Threads uint8  `json:"threads"`
	}
	ksEntry struct {
		Name      string    `json:"name"`
		SecretKey string    `json:"secret_key"`
		Created   time.Time `json:"created"`
	}
)

// keystoreHeader returns the additional data of an encrypted keystore.
func keystoreHeader(p KDFParams, salt []byte) []byte {
	var b []byte
	b = append(b, "weft-keystore/v"+strconv.Itoa(keystoreVersion)+"\n"...)
	b = fmt.Appendf(b, "%s time=%d memory=%d threads=%d\n", kdfArgon2id, p.Time, p.Memory, p.Threads)
	b = append(b, "salt="+base64.StdEncoding.EncodeToString(salt)+"\n"...)
	return b
}

func deriveKeystoreKey(passphrase, salt []byte, p KDFParams) ThreadKey {
	k := argon2.IDKey(passphrase, salt, p.Time, p.Memory, p.Threads, 32)
	defer clear(k)
	return ThreadKey(k)
}

func encodeEntries(ks *Keystore) ([]byte, error) {
	if ks == nil {
		return nil, errors.New("crypto: nil keystore")
	}
	entries := make([]ksEntry, 0, len(ks.Entries))
	for i, e := range ks.Entries {
		if e.Identity == nil {
			return nil, fmt.Errorf("crypto: keystore entry %d has no identity", i)
		}
		entries = append(entries, ksEntry{Name: e.Name, SecretKey: e.Identity.String(), Created: e.Created})
	}
	b, err := json.Marshal(entries)
	if err != nil {
		return nil, fmt.Errorf("crypto: encoding keystore: %w", err)
	}
	return b, nil
}

func decodeEntries(b []byte) (*Keystore, error) {
	var entries []ksEntry
	if err := json.Unmarshal(b, &entries); err != nil || entries == nil {
		return nil, fmt.Errorf("%w: invalid entry list", ErrKeystoreCorrupt)
	}
	ks := &Keystore{Entries: make([]KeyEntry, 0, len(entries))}
	for i, e := range entries {
		id, err := ParseIdentity(e.SecretKey)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d: %v", ErrKeystoreCorrupt, i, err)
		}
		ks.Entries = append(ks.Entries, KeyEntry{Name: e.Name, Identity: id, Created: e.Created})
	}
	return ks, nil
}

// WriteKeystore writes ks to path, encrypted with a key derived from
// passphrase with Argon2id and the given parameters (normally
// [DefaultKDFParams]). An empty passphrase gives an error wrapping
// [ErrEmptyPassphrase]. The file is created with mode 0600 and replaced
// atomically.
func WriteKeystore(path string, ks *Keystore, passphrase []byte, params KDFParams) error {
	if len(passphrase) == 0 {
		return fmt.Errorf("crypto: writing keystore: %w", ErrEmptyPassphrase)
	}
	if err := params.check(); err != nil {
		return fmt.Errorf("crypto: writing keystore: %w", err)
	}
	plaintext, err := encodeEntries(ks)
	if err != nil {
		return err
	}
	defer clear(plaintext)
	salt := make([]byte, keystoreSaltSize)
	if _, err := rand.Read(salt); err != nil {
		return fmt.Errorf("crypto: generating salt: %w", err)
	}
	key := deriveKeystoreKey(passphrase, salt, params)
	sealed, err := Seal(key, plaintext, keystoreHeader(params, salt))
	clear(key[:])
	if err != nil {
		return err
	}
	kdf, err := json.Marshal(ksKDF{Alg: kdfArgon2id, Time: params.Time, Memory: params.Memory, Threads: params.Threads})
	if err != nil {
		return err
	}
	v := keystoreVersion
	return writeKeystoreFile(path, ksFile{Version: &v, KDF: kdf, Salt: salt, Sealed: sealed})
}

// WriteKeystoreUnencrypted writes ks to path without encryption, for
// headless nodes that cannot be given a passphrase. The secret keys are then
// protected only by the file's permissions (mode 0600) and the security of
// the machine. The file is replaced atomically.
func WriteKeystoreUnencrypted(path string, ks *Keystore) error {
	entries, err := encodeEntries(ks)
	if err != nil {
		return err
	}
	defer clear(entries)
	v := keystoreVersion
	return writeKeystoreFile(path, ksFile{Version: &v, KDF: json.RawMessage(`"` + kdfNone + `"`), Entries: entries})
}

func writeKeystoreFile(path string, f ksFile) (err error) {
	data, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("crypto: encoding keystore: %w", err)
	}
	defer clear(data)
	data = append(data, '\n')
	return writeFileAtomic(path, data)
}

// writeFileAtomic replaces path with a 0600 file holding data: it writes a
// temporary file in the same directory, syncs it, renames it over path and
// syncs the directory.
func writeFileAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("crypto: writing keystore: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("crypto: writing keystore: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("crypto: writing keystore: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("crypto: writing keystore: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("crypto: writing keystore: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("crypto: writing keystore: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("crypto: syncing keystore directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("crypto: syncing keystore directory: %w", err)
	}
	return nil
}

// readKeystoreFile reads and parses the outer structure of a keystore file.
// It returns the KDF parameters, or nil for an unencrypted keystore.
func readKeystoreFile(path string) (*ksFile, *KDFParams, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, keystoreMaxSize+1))
	defer clear(data)
	if err != nil {
		return nil, nil, err
	}
	if len(data) > keystoreMaxSize {
		return nil, nil, fmt.Errorf("%w: file larger than %d bytes", ErrKeystoreCorrupt, keystoreMaxSize)
	}
	return parseKeystoreFile(data)
}

// parseKeystoreFile parses the outer structure of a keystore file.
func parseKeystoreFile(data []byte) (*ksFile, *KDFParams, error) {
	// Check the version first, so that a file of a future version with a
	// different structure is reported as such.
	var version struct {
		Version *json.RawMessage `json:"weft_keystore"`
	}
	if err := json.Unmarshal(data, &version); err != nil {
		return nil, nil, fmt.Errorf("%w: not a JSON object", ErrKeystoreCorrupt)
	}
	if version.Version == nil {
		return nil, nil, fmt.Errorf("%w: no \"weft_keystore\" version field", ErrKeystoreCorrupt)
	}
	if v := string(*version.Version); v != strconv.Itoa(keystoreVersion) {
		return nil, nil, fmt.Errorf("%w: version %.20s, want %d", ErrKeystoreVersion, v, keystoreVersion)
	}

	var f ksFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrKeystoreCorrupt, err)
	}
	if string(bytes.TrimSpace(f.KDF)) == `"`+kdfNone+`"` {
		if f.Entries == nil || f.Salt != nil || f.Sealed != nil {
			return nil, nil, fmt.Errorf("%w: unencrypted keystore must have entries and no salt or sealed data", ErrKeystoreCorrupt)
		}
		return &f, nil, nil
	}
	var kdf ksKDF
	dec = json.NewDecoder(bytes.NewReader(f.KDF))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&kdf); err != nil {
		return nil, nil, fmt.Errorf("%w: invalid kdf field", ErrKeystoreCorrupt)
	}
	if kdf.Alg != kdfArgon2id {
		return nil, nil, fmt.Errorf("%w: unknown kdf %.20q", ErrKeystoreCorrupt, kdf.Alg)
	}
	params := KDFParams{Time: kdf.Time, Memory: kdf.Memory, Threads: kdf.Threads}
	if err := params.check(); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrKeystoreCorrupt, err)
	}
	if f.Entries != nil {
		return nil, nil, fmt.Errorf("%w: encrypted keystore with clear entries", ErrKeystoreCorrupt)
	}
	if len(f.Salt) != keystoreSaltSize {
		return nil, nil, fmt.Errorf("%w: salt is %d bytes, want %d", ErrKeystoreCorrupt, len(f.Salt), keystoreSaltSize)
	}
	if len(f.Sealed) < SealOverhead {
		return nil, nil, fmt.Errorf("%w: sealed data is %d bytes, want at least %d", ErrKeystoreCorrupt, len(f.Sealed), SealOverhead)
	}
	return &f, &params, nil
}

// ReadKeystore reads the keystore at path. If it is encrypted, passphrase
// must be given: if it is empty the error wraps [ErrPassphraseRequired],
// and if it is wrong (or the file was tampered with) the error wraps
// [ErrWrongPassphrase]. For an unencrypted keystore passphrase is ignored.
// A file of an unknown version gives [ErrKeystoreVersion], any other invalid
// content [ErrKeystoreCorrupt].
func ReadKeystore(path string, passphrase []byte) (*Keystore, error) {
	ks, err := readKeystore(path, passphrase)
	if err != nil {
		return nil, fmt.Errorf("crypto: reading keystore: %w", err)
	}
	return ks, nil
}

func readKeystore(path string, passphrase []byte) (*Keystore, error) {
	f, params, err := readKeystoreFile(path)
	if err != nil {
		return nil, err
	}
	if params == nil {
		defer clear(f.Entries)
		return decodeEntries(f.Entries)
	}
	if len(passphrase) == 0 {
		return nil, ErrPassphraseRequired
	}
	key := deriveKeystoreKey(passphrase, f.Salt, *params)
	plaintext, err := Open(key, f.Sealed, keystoreHeader(*params, f.Salt))
	clear(key[:])
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	defer clear(plaintext)
	return decodeEntries(plaintext)
}

// KeystoreIsEncrypted reports whether the keystore at path is encrypted
// with a passphrase, without needing the passphrase. It returns the same
// errors as [ReadKeystore] for files that are not valid keystores, except
// that the sealed part of an encrypted keystore is not checked.
func KeystoreIsEncrypted(path string) (bool, error) {
	f, params, err := readKeystoreFile(path)
	if err == nil && params == nil {
		// Unencrypted: validating the entries is cheap.
		defer clear(f.Entries)
		_, err = decodeEntries(f.Entries)
	}
	if err != nil {
		return false, fmt.Errorf("crypto: reading keystore: %w", err)
	}
	return params != nil, nil
}
