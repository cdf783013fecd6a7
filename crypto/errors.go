package crypto

import "errors"

// Sentinel errors. An error returned by this package wraps at most one of
// these; see the package documentation for when each is returned.
var (
	ErrMalformedUserID    = errors.New("malformed user ID")
	ErrMalformedIdentity  = errors.New("malformed secret key")
	ErrBadSignature       = errors.New("bad signature")
	ErrUnwrap             = errors.New("cannot unwrap thread key")
	ErrOpen               = errors.New("cannot open sealed data")
	ErrWrongPassphrase    = errors.New("wrong passphrase")
	ErrPassphraseRequired = errors.New("keystore is encrypted: passphrase required")
	ErrKeystoreCorrupt    = errors.New("keystore is corrupt")
	ErrKeystoreVersion    = errors.New("unknown keystore version")
	ErrEmptyPassphrase    = errors.New("empty passphrase")
)
