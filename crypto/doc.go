// Package crypto implements the cryptography of weft: user identities and
// their textual forms, domain-separated signatures, thread keys wrapped to
// users with HPKE, sealing of event fields, and the passphrase-protected
// keystore that holds a node's user secret keys.
//
// # Identities
//
// A user is an Ed25519 key pair. The public key is the user's [UserID],
// written as a bech32 string (BIP-173 checksum) with the human-readable part
// "weft", for example
//
//	weft1...
//
// always lower case. The private key is an [Identity], written like an age
// identity as the upper-case bech32 encoding of the 32-byte Ed25519 seed with
// the human-readable part "WEFT-SECRET-KEY-":
//
//	WEFT-SECRET-KEY-1...
//
// A user ID must be a canonical encoding of an Ed25519 point that is not of
// small order; anything else is rejected by [ParseUserID] and
// [UserIDFromBytes].
//
// The same key pair is used for key agreement: [UserID.X25519] is the
// Montgomery form of the Ed25519 public key and [Identity.X25519] is the
// matching X25519 scalar (as libsodium's crypto_sign_ed25519_sk_to_curve25519
// and age's ssh-ed25519 recipients compute them), so a user ID is all one
// needs to add a user to a thread.
//
// # Signatures
//
// [Identity.Sign] signs with Ed25519 the message
//
//	"weft-sig-v1" || 0x00 || domain || 0x00 || msg
//
// where domain is a short constant naming what is signed (for example
// "event"), so that a signature made for one purpose is never valid for
// another. Domains must not contain a zero byte.
//
// # Thread keys
//
// A [ThreadKey] is a 256-bit symmetric key. [WrapThreadKey] encrypts it to a
// user with HPKE (RFC 9180, base mode) using DHKEM(X25519, HKDF-SHA256),
// HKDF-SHA256 and ChaCha20Poly1305, with the info string
//
//	"weft/thread-key/v1" || binding (32 bytes) || epoch (uint32, big endian)
//
// and an empty AAD. The binding is typically the thread ID. The wrapped form
// is the 32-byte encapsulated key followed by the 48-byte ciphertext
// ([WrappedKeySize] bytes in all).
//
// # Sealed fields
//
// [Seal] encrypts a field with XChaCha20-Poly1305 under a thread key, with a
// random 24-byte nonce and caller-chosen additional data. The sealed form is
// the nonce followed by the ciphertext and tag ([SealOverhead] bytes longer
// than the plaintext).
//
// # Keystore
//
// A [Keystore] holds the user secret keys of one node in a single JSON file,
// created with mode 0600 and replaced atomically (temporary file in the same
// directory, fsync, rename, fsync of the directory). An encrypted keystore
// looks like
//
//	{"weft_keystore":1,
//	 "kdf":{"alg":"argon2id","time":3,"memory":65536,"threads":4},
//	 "salt":"<base64, 16 bytes>",
//	 "sealed":"<base64>"}
//
// The key is Argon2id(passphrase, salt, time, memory KiB, threads) with a
// 32-byte output, and sealed is nonce || ciphertext || tag of
// XChaCha20-Poly1305 over the JSON entry list (see below), with the header
//
//	"weft-keystore/v1\n" +
//	"argon2id time=<time> memory=<memory> threads=<threads>\n" +
//	"salt=<salt, base64 as in the file>\n"
//
// as additional data, so that the KDF parameters and salt are authenticated.
// An unencrypted keystore looks like
//
//	{"weft_keystore":1,"kdf":"none","entries":[...]}
//
// and each entry is
//
//	{"name":"<nickname>","secret_key":"WEFT-SECRET-KEY-1...","created":"<RFC 3339>"}
//
// Standard base64 with padding is used throughout. Unencrypted keystores are
// meant for headless nodes: their secrecy relies entirely on file
// permissions and on the security of the machine, so prefer an encrypted
// keystore wherever a passphrase can be supplied. [ReadKeystore] does not
// check the permissions of the file it reads.
//
// # Errors
//
// Functions return errors that wrap one of the following sentinel errors,
// with more detail in the message; test for them with [errors.Is]:
//
//   - [ErrMalformedUserID]: a user ID string or byte string is not a valid
//     user ID (wrong prefix, checksum mismatch, wrong length, wrong case, not
//     a valid Ed25519 public key).
//   - [ErrMalformedIdentity]: a secret-key string is not valid.
//   - [ErrBadSignature]: a signature does not verify, including one of the
//     wrong length.
//   - [ErrUnwrap]: a wrapped thread key could not be opened: wrong recipient,
//     wrong binding or epoch, tampered with, or truncated.
//   - [ErrOpen]: a sealed field could not be opened: wrong key, wrong
//     additional data, tampered with, or truncated.
//   - [ErrEmptyPassphrase]: an encrypted keystore was to be written with an
//     empty passphrase.
//   - [ErrPassphraseRequired]: a keystore is encrypted but no passphrase was
//     given.
//   - [ErrWrongPassphrase]: the passphrase does not open the keystore (or the
//     sealed part of the file was tampered with; the two are
//     indistinguishable).
//   - [ErrKeystoreVersion]: the keystore file has an unknown version.
//   - [ErrKeystoreCorrupt]: the keystore file is not a valid keystore.
//
// Errors from the file system (for example one satisfying
// errors.Is(err, fs.ErrNotExist)) are returned wrapped but otherwise as is.
// Error messages never contain secret key material.
package crypto
