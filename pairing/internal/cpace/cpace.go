// Package cpace implements the CPace balanced password-authenticated key
// exchange of draft-irtf-cfrg-cpace (version 14 and later), cipher suite
// CPACE-X25519-SHA512, in the initiator-responder setting.
//
// A and B share a low-entropy password-related string PRS, a channel
// identifier CI and a session identifier sid. A sends Ya (and its associated
// data ADa), B answers with Yb (and ADb), and both derive the same 64-byte
// intermediate session key ISK if and only if they used the same PRS, CI and
// sid and saw the same messages. An active attacker learns, per run, only
// whether one password guess of its choice was right; a passive one learns
// nothing about PRS.
//
// CPace itself gives implicit authentication only: the caller must add key
// confirmation (as the pairing protocol does) and must derive its keys from
// ISK with a KDF. Secret scalars must never be reused; [NewInitiator] and
// [Respond] sample fresh ones from the given source of randomness.
package cpace

import (
	"crypto/sha512"
	"errors"
	"fmt"
	"io"

	"filippo.io/edwards25519/field"
	"golang.org/x/crypto/curve25519"
)

// Sizes of the CPACE-X25519-SHA512 values.
const (
	PointSize  = 32 // Ya, Yb, g, K
	ScalarSize = 32 // ya, yb
	ISKSize    = sha512.Size
)

// dsi is G_X25519.DSI.
const dsi = "CPace255"

// sInBytes is the input block size of SHA-512.
const sInBytes = 128

// ErrInvalidPoint is returned when a received share is a point of low order
// (or otherwise makes the shared point the neutral element): the run must be
// aborted.
var ErrInvalidPoint = errors.New("cpace: received share is invalid (low order point)")

// prependLen returns the LEB128 encoding of len(b) followed by b.
func prependLen(dst, b []byte) []byte {
	n := len(b)
	for {
		if n < 128 {
			dst = append(dst, byte(n))
			break
		}
		dst = append(dst, byte(n&0x7f)|0x80)
		n >>= 7
	}
	return append(dst, b...)
}

// lvCat returns the length-value concatenation of its arguments.
func lvCat(args ...[]byte) []byte {
	var out []byte
	for _, a := range args {
		out = prependLen(out, a)
	}
	return out
}

// lvLen returns len(prepend_len(b)).
func lvLen(b []byte) int { return len(prependLen(nil, b)) }

// generatorString is generator_string(DSI, PRS, CI, sid, s_in_bytes).
func generatorString(prs, ci, sid []byte) []byte {
	zpad := sInBytes - 1 - lvLen(prs) - lvLen([]byte(dsi))
	if zpad < 0 {
		zpad = 0
	}
	return lvCat([]byte(dsi), prs, make([]byte, zpad), ci, sid)
}

// Generator returns the generator g = G_X25519.calculate_generator(SHA-512,
// PRS, CI, sid): the u coordinate of the Elligator 2 image of the hash of the
// generator string.
func Generator(prs, ci, sid []byte) [PointSize]byte {
	h := sha512.Sum512(generatorString(prs, ci, sid))
	// decodeUCoordinate: the top bit is ignored (SetBytes does so) and the
	// value is reduced modulo p.
	u, err := new(field.Element).SetBytes(h[:32])
	if err != nil {
		panic("cpace: " + err.Error())
	}
	return [PointSize]byte(elligator2(u).Bytes())
}

var (
	feOne = new(field.Element).One()
	// feA is the Curve25519 Montgomery coefficient A = 486662.
	feA = new(field.Element).Mult32(feOne, 486662)
	// feZ is the non-square Z = 2 of RFC 9380 for curve25519.
	feZ = new(field.Element).Add(feOne, feOne)
)

// elligator2 returns the u coordinate of map_to_curve_elligator2 of RFC
// 9380, section 6.7.1, for Curve25519 (J = A, K = 1, Z = 2), in constant
// time. The v coordinate is not needed by CPace.
func elligator2(r *field.Element) *field.Element {
	// x1 = -A / (1 + Z * r^2). 1 + 2r^2 is never zero, as -1/2 is not a
	// square modulo p, so inv0 is a plain inversion.
	t := new(field.Element).Square(r)
	t.Multiply(t, feZ)
	t.Add(t, feOne)
	t.Invert(t)
	x1 := new(field.Element).Multiply(feA, t)
	x1.Negate(x1)

	// gx1 = x1^3 + A * x1^2 + x1 = x1 * (x1 * (x1 + A) + 1)
	gx1 := new(field.Element).Add(x1, feA)
	gx1.Multiply(gx1, x1)
	gx1.Add(gx1, feOne)
	gx1.Multiply(gx1, x1)

	// x2 = -x1 - A
	x2 := new(field.Element).Add(x1, feA)
	x2.Negate(x2)

	_, isSquare := new(field.Element).SqrtRatio(gx1, feOne)
	return new(field.Element).Select(x1, x2, isSquare)
}

// scalarMult is G_X25519.scalar_mult_vfy: X25519(y, g), failing with
// ErrInvalidPoint if the result is the neutral element (all zeros).
func scalarMult(y, g []byte) ([]byte, error) {
	out, err := curve25519.X25519(y, g)
	if err != nil {
		return nil, ErrInvalidPoint
	}
	return out, nil
}

// transcriptIR is transcript_ir(Ya, ADa, Yb, ADb).
func transcriptIR(ya, ada, yb, adb []byte) []byte {
	return append(lvCat(ya, ada), lvCat(yb, adb)...)
}

// isk computes ISK = SHA-512(lv_cat(DSI || "_ISK", sid, K) ||
// transcript_ir(Ya, ADa, Yb, ADb)).
func isk(sid, k, ya, ada, yb, adb []byte) [ISKSize]byte {
	m := lvCat([]byte(dsi+"_ISK"), sid, k)
	m = append(m, transcriptIR(ya, ada, yb, adb)...)
	return sha512.Sum512(m)
}

// Initiator is the state of party A between sending Ya and receiving Yb.
// It must be used for one run only.
type Initiator struct {
	sid, ada []byte
	y        [ScalarSize]byte
	share    [PointSize]byte
	done     bool
}

// NewInitiator starts a run as party A: it samples the secret scalar ya from
// rand and returns the state and the share Ya to send to B along with ADa.
func NewInitiator(rand io.Reader, prs, ci, sid, ada []byte) (*Initiator, []byte, error) {
	a := &Initiator{sid: append([]byte(nil), sid...), ada: append([]byte(nil), ada...)}
	if _, err := io.ReadFull(rand, a.y[:]); err != nil {
		return nil, nil, fmt.Errorf("cpace: sampling scalar: %w", err)
	}
	g := Generator(prs, ci, sid)
	ya, err := scalarMult(a.y[:], g[:])
	if err != nil {
		// Only if the generator were of low order, which Elligator 2
		// outputs are not, except with negligible probability.
		return nil, nil, err
	}
	copy(a.share[:], ya)
	return a, ya, nil
}

// Finish completes the run with B's share Yb and ADb and returns ISK. It
// fails with ErrInvalidPoint if Yb is of low order, and must not be called
// twice.
func (a *Initiator) Finish(yb, adb []byte) ([ISKSize]byte, error) {
	if a.done {
		return [ISKSize]byte{}, errors.New("cpace: Finish called twice")
	}
	a.done = true
	defer clear(a.y[:])
	if len(yb) != PointSize {
		return [ISKSize]byte{}, ErrInvalidPoint
	}
	k, err := scalarMult(a.y[:], yb)
	if err != nil {
		return [ISKSize]byte{}, err
	}
	return isk(a.sid, k, a.share[:], a.ada, yb, adb), nil
}

// Respond runs party B on receipt of A's share Ya and ADa: it samples yb
// from rand and returns its share Yb (to send to A along with ADb) and ISK.
// It fails with ErrInvalidPoint if Ya is of low order.
func Respond(rand io.Reader, prs, ci, sid, adb, ya, ada []byte) (yb []byte, key [ISKSize]byte, err error) {
	if len(ya) != PointSize {
		return nil, [ISKSize]byte{}, ErrInvalidPoint
	}
	var y [ScalarSize]byte
	defer clear(y[:])
	if _, err := io.ReadFull(rand, y[:]); err != nil {
		return nil, [ISKSize]byte{}, fmt.Errorf("cpace: sampling scalar: %w", err)
	}
	g := Generator(prs, ci, sid)
	yb, err = scalarMult(y[:], g[:])
	if err != nil {
		return nil, [ISKSize]byte{}, err
	}
	k, err := scalarMult(y[:], ya)
	if err != nil {
		return nil, [ISKSize]byte{}, err
	}
	return yb, isk(sid, k, ya, ada, yb, adb), nil
}
