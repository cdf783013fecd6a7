package crypto

import (
	"bytes"
	"fmt"
)

// checkVerifyKey rejects, without curve arithmetic, every 32-byte string that
// decodePoint rejects except those that are not on the curve at all (which
// ed25519.Verify itself rejects). Verify runs it instead of decodePoint:
// decoding the point twice (once here, once in ed25519.Verify) cost about
// 14% of a verification, the hot path of replication.
//
// An encoding is canonical when its y coordinate (the low 255 bits) is below
// p = 2^255-19 and, when x = 0 (y = ±1), its sign bit is clear. The eight
// points of small order have exactly five y coordinates: 0, 1, p-1 and the
// two of the points of order 8. Rejecting those y values for either sign bit
// also covers the non-canonical "negative zero" x of y = ±1.
func checkVerifyKey(b []byte) error {
	if len(b) != 32 {
		return fmt.Errorf("%w: public key is %d bytes, want 32", ErrMalformedUserID, len(b))
	}
	var y [32]byte
	copy(y[:], b)
	y[31] &= 0x7f
	if !lessThanP(&y) {
		return fmt.Errorf("%w: non-canonical Ed25519 point encoding", ErrMalformedUserID)
	}
	for i := range smallOrderY {
		if bytes.Equal(y[:], smallOrderY[i][:]) {
			return fmt.Errorf("%w: Ed25519 point of small order", ErrMalformedUserID)
		}
	}
	return nil
}

// lessThanP reports whether the little-endian y is below 2^255-19, whose
// encoding is ed ff ... ff 7f.
func lessThanP(y *[32]byte) bool {
	if y[31] != 0x7f {
		return true
	}
	for i := 30; i >= 1; i-- {
		if y[i] != 0xff {
			return true
		}
	}
	return y[0] < 0xed
}

// smallOrderY are the y coordinates (little endian) of the points of small
// order: the identity (y = 1), the point of order 2 (y = p-1), the two of
// order 4 (y = 0) and the four of order 8 (y8 and p-y8). TestSmallOrderY
// derives them from the curve.
var smallOrderY = [5][32]byte{
	{0x01},
	{0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
	{},
	{0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
		0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
	{0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
		0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
}
