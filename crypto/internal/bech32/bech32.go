// Package bech32 implements the bech32 encoding of BIP-173, as used by weft
// for user IDs ("weft1...") and secret keys ("WEFT-SECRET-KEY-1...").
//
// Like the encoding used by age, it lifts the 90-character limit of BIP-173
// and encodes 8-bit byte strings (converted to and from 5-bit groups with
// strict, zero-bit padding, so that every byte string has exactly one
// encoding and every decodable string re-encodes to itself).
//
// Strings are either all lower case or all upper case; the checksum is
// always computed over the lower-case form.
package bech32

import (
	"errors"
	"fmt"
	"strings"
)

// ErrChecksum is returned (possibly wrapped) by Decode when the string is
// well formed but its checksum does not match, which usually means a typo.
var ErrChecksum = errors.New("checksum mismatch")

const charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

func polymod(values []byte) uint32 {
	generator := [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	chk := uint32(1)
	for _, v := range values {
		top := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(v)
		for i := range 5 {
			if (top>>uint(i))&1 == 1 {
				chk ^= generator[i]
			}
		}
	}
	return chk
}

// hrpExpand expects a lower-case hrp.
func hrpExpand(hrp string) []byte {
	h := []byte(hrp)
	ret := make([]byte, 0, len(h)*2+1)
	for _, c := range h {
		ret = append(ret, c>>5)
	}
	ret = append(ret, 0)
	for _, c := range h {
		ret = append(ret, c&31)
	}
	return ret
}

func verifyChecksum(hrp string, data []byte) bool {
	return polymod(append(hrpExpand(hrp), data...)) == 1
}

func createChecksum(hrp string, data []byte) []byte {
	values := append(hrpExpand(hrp), data...)
	values = append(values, 0, 0, 0, 0, 0, 0)
	mod := polymod(values) ^ 1
	ret := make([]byte, 6)
	for p := range ret {
		ret[p] = byte(mod>>uint(5*(5-p))) & 31
	}
	return ret
}

// convertBits regroups data from frombits-bit groups to tobits-bit groups.
// With pad, a final partial group is zero-padded; without it, any leftover
// must be shorter than frombits and all zero.
func convertBits(data []byte, frombits, tobits uint, pad bool) ([]byte, error) {
	var ret []byte
	acc := uint32(0)
	bits := uint(0)
	maxv := byte(1<<tobits - 1)
	for idx, value := range data {
		if value>>frombits != 0 {
			return nil, fmt.Errorf("invalid data range: data[%d]=%d (frombits=%d)", idx, value, frombits)
		}
		acc = acc<<frombits | uint32(value)
		bits += frombits
		for bits >= tobits {
			bits -= tobits
			ret = append(ret, byte(acc>>bits)&maxv)
		}
	}
	if pad {
		if bits > 0 {
			ret = append(ret, byte(acc<<(tobits-bits))&maxv)
		}
	} else if bits >= frombits {
		return nil, errors.New("illegal zero padding")
	} else if byte(acc<<(tobits-bits))&maxv != 0 {
		return nil, errors.New("non-zero padding")
	}
	return ret, nil
}

func checkHRP(hrp string) error {
	if len(hrp) < 1 {
		return errors.New("empty human-readable part")
	}
	for p := 0; p < len(hrp); p++ {
		if c := hrp[p]; c < 33 || c > 126 {
			return fmt.Errorf("invalid character in human-readable part: hrp[%d]=%d", p, c)
		}
	}
	return nil
}

// Encode encodes data as a bech32 string with the human-readable part hrp.
// If hrp is upper case, the whole string is upper case; otherwise it is
// lower case. A mixed-case hrp is an error.
func Encode(hrp string, data []byte) (string, error) {
	values, err := convertBits(data, 8, 5, true)
	if err != nil {
		return "", err
	}
	if err := checkHRP(hrp); err != nil {
		return "", err
	}
	lower := strings.ToLower(hrp)
	upper := strings.ToUpper(hrp)
	if hrp != lower && hrp != upper {
		return "", fmt.Errorf("mixed case human-readable part %q", hrp)
	}
	var b strings.Builder
	b.Grow(len(hrp) + 1 + len(values) + 6)
	b.WriteString(lower)
	b.WriteByte('1')
	for _, p := range values {
		b.WriteByte(charset[p])
	}
	for _, p := range createChecksum(lower, values) {
		b.WriteByte(charset[p])
	}
	if hrp == lower {
		return b.String(), nil
	}
	return strings.ToUpper(b.String()), nil
}

// Decode decodes a bech32 string. The returned hrp has the case of s. A
// string that is well formed but fails the checksum returns an error
// wrapping ErrChecksum.
func Decode(s string) (hrp string, data []byte, err error) {
	for p := 0; p < len(s); p++ {
		if c := s[p]; c < 33 || c > 126 {
			return "", nil, fmt.Errorf("invalid character: s[%d]=%d", p, c)
		}
	}
	lower := strings.ToLower(s)
	if s != lower && s != strings.ToUpper(s) {
		return "", nil, errors.New("mixed case")
	}
	pos := strings.LastIndexByte(s, '1')
	if pos < 1 || pos+7 > len(s) {
		return "", nil, fmt.Errorf("separator '1' at invalid position: pos=%d, len=%d", pos, len(s))
	}
	hrp = s[:pos]
	values := make([]byte, 0, len(s)-pos-1)
	for p := pos + 1; p < len(lower); p++ {
		d := strings.IndexByte(charset, lower[p])
		if d == -1 {
			return "", nil, fmt.Errorf("invalid character in data part: s[%d]=%q", p, s[p])
		}
		values = append(values, byte(d))
	}
	if !verifyChecksum(lower[:pos], values) {
		return "", nil, ErrChecksum
	}
	data, err = convertBits(values[:len(values)-6], 5, 8, false)
	if err != nil {
		return "", nil, err
	}
	return hrp, data, nil
}
