// Package pairing makes a new device part of a user, over any
// io.ReadWriter, authenticated by a short one-time code.
//
// The existing device (the issuer, which holds the user key) creates a
// [Pairer], which draws a random [Code] such as
//
//	482-193-775-016
//
// and shows it. The user types the code on the new device (the joiner),
// which calls [Join] over a connection to the issuer; the issuer calls
// [Pairer.Pair] on its end. Both run CPace (draft-irtf-cfrg-cpace,
// CPACE-X25519-SHA512) with the code as the password, confirm the key in
// both directions, and then, encrypted under keys derived from it, the
// joiner sends its device ID and name (with a signature proving it holds
// the device key) and the issuer answers with a [crypto.DeviceCert] signed
// by the user key and an opaque payload chosen by the application (for
// weft: the thread keys re-wrapped to the new device's own key and the
// user's other device records; see docs/design.md §8).
//
// The user secret key is never sent: a device holds only its own key and
// its certificate, so a stolen device can be revoked without changing the
// user's identity. See docs/design.md §8 for the trade-off.
//
// # Security
//
// A code is 12 decimal digits drawn uniformly: log2(10^12) ≈ 39.9 bits.
// CPace gives a passive eavesdropper nothing to test guesses against
// offline, and gives an active attacker exactly one guess per run: each
// run with a guessed code either succeeds (probability 10^-12 per guess)
// or fails key confirmation. The issuer allows [Config.MaxAttempts] runs
// (default 3) that reach key confirmation per code, after which, or after
// [Config.Lifetime] (default 10 minutes), or after one success, the code is
// dead. So an attacker who races the user succeeds with probability at
// most MaxAttempts/10^12 = 3·10^-12 per code shown; against the joiner,
// each [Join] (one user action) gives it at most one guess.
//
// A man in the middle who relays messages unchanged learns nothing (the
// keys come from CPace) and one who alters, drops or replaces any message
// of the exchange makes key confirmation fail on both sides ([ErrWrongCode]).
//
// # Errors
//
// Every error returned by [Join] and [Pairer.Pair] wraps [ErrPairingFailed]
// and, except for I/O errors (which are wrapped as they are, for example
// io.ErrUnexpectedEOF or os.ErrDeadlineExceeded), exactly one of
// [ErrWrongCode], [ErrCodeExhausted], [ErrRejected], [ErrMalformedMessage]
// or [ErrVersion]. [ParseCode] returns errors wrapping [ErrMalformedCode].
//
// The protocol does not time out by itself: set deadlines on the
// connection. Neither side prints anything.
package pairing

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrPairingFailed is wrapped by every error of Join and Pair.
	ErrPairingFailed = errors.New("pairing failed")
	// ErrWrongCode: key confirmation failed. The two devices used
	// different codes, or someone on the network interfered.
	ErrWrongCode = errors.New("wrong pairing code (or the connection was tampered with)")
	// ErrCodeExhausted: the issuer's code can no longer be used: it was
	// already used, its attempts are exhausted, or it expired. Create a
	// new Pairer for a new code.
	ErrCodeExhausted = errors.New("pairing code used up or expired")
	// ErrRejected: the issuer refused to certify the device (for example
	// an invalid device name, or Config.Payload returned an error).
	ErrRejected = errors.New("pairing rejected by the issuer")
	// ErrMalformedMessage: the peer sent a message that does not follow
	// the protocol (unexpected type, wrong length, invalid point, bad
	// certificate...), or reported receiving one.
	ErrMalformedMessage = errors.New("malformed pairing message")
	// ErrVersion: the peer speaks another version of the protocol.
	ErrVersion = errors.New("unsupported pairing protocol version")
	// ErrMalformedCode: a string is not a pairing code.
	ErrMalformedCode = errors.New("malformed pairing code")
)

// CodeDigits is the number of decimal digits of a pairing code.
const CodeDigits = 12

// Code is a one-time pairing code: [CodeDigits] decimal digits, written in
// groups of three separated by dashes ("482-193-775-016").
type Code struct {
	digits [CodeDigits]byte // ASCII '0'..'9'
}

// GenerateCode returns a uniformly random code.
func GenerateCode() (Code, error) {
	// Rejection sampling of a uniform integer below 10^12 from 40 bits.
	const limit = 1_000_000_000_000
	for {
		var b [8]byte
		if _, err := rand.Read(b[3:]); err != nil {
			return Code{}, fmt.Errorf("pairing: generating code: %w", err)
		}
		n := binary.BigEndian.Uint64(b[:])
		if n >= limit {
			continue
		}
		var c Code
		for i := CodeDigits - 1; i >= 0; i-- {
			c.digits[i] = '0' + byte(n%10)
			n /= 10
		}
		return c, nil
	}
}

// ParseCode parses a code as typed by a user: 12 digits, in which spaces
// and dashes are ignored ("482-193-775-016", "482 193 775 016" and
// "482193775016" are the same code). Errors wrap [ErrMalformedCode].
func ParseCode(s string) (Code, error) {
	var c Code
	n := 0
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '-' || ch == ' ':
		case '0' <= ch && ch <= '9':
			if n == CodeDigits {
				return Code{}, fmt.Errorf("%w: more than %d digits", ErrMalformedCode, CodeDigits)
			}
			c.digits[n] = ch
			n++
		default:
			return Code{}, fmt.Errorf("%w: unexpected character %q (a code has only digits)", ErrMalformedCode, rune(ch))
		}
	}
	if n != CodeDigits {
		return Code{}, fmt.Errorf("%w: %d digits, want %d", ErrMalformedCode, n, CodeDigits)
	}
	return c, nil
}

// String returns the code in groups of three digits, "482-193-775-016".
// The zero Code prints as "".
func (c Code) String() string {
	if c.IsZero() {
		return ""
	}
	var b strings.Builder
	for i, d := range c.digits {
		if i > 0 && i%3 == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(d)
	}
	return b.String()
}

// IsZero reports whether c is the zero Code, which is not a valid code.
func (c Code) IsZero() bool { return c == Code{} }

// prs returns the CPace password-related string: the 12 ASCII digits.
func (c Code) prs() []byte { return append([]byte(nil), c.digits[:]...) }
