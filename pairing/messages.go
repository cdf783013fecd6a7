package pairing

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/pairing/internal/cpace"
)

// Wire format. Every message is a frame
//
//	type    1 byte
//	length  4 bytes, uint32 big endian, the length of body
//	body    length bytes
//
// with, in order (J = joiner, I = issuer):
//
//	1 hello     J→I  version (1 byte, 1) || nonce_j (16)
//	2 share     I→J  nonce_i (16) || Ya (32)
//	3 response  J→I  Yb (32) || tag_j (32)
//	4 confirm   I→J  tag_i (32)
//	5 request   J→I  sealed: device ID (32) || proof (64) || name_len (1) || name
//	6 grant     I→J  sealed: cert_len (2, big endian) || cert || payload
//	7 done      J→I  sealed: empty
//	255 abort   any  reason (1 byte), unauthenticated
//
// A sealed body is ChaCha20-Poly1305 ciphertext and tag under the sender's
// key, with a 12-byte nonce holding the per-direction message counter
// (big endian, from 0) and the type byte as additional data.
const (
	msgHello    = 1
	msgShare    = 2
	msgResponse = 3
	msgConfirm  = 4
	msgRequest  = 5
	msgGrant    = 6
	msgDone     = 7
	msgAbort    = 255
)

// Version is the version of the pairing protocol.
const Version = 1

// Abort reasons.
const (
	abortWrongCode = 1
	abortExhausted = 2
	abortRejected  = 3
	abortMalformed = 4
	abortVersion   = 5
)

// MaxPayloadSize is the largest application payload a grant can carry.
const MaxPayloadSize = 16 << 20

const (
	nonceSize = 16
	tagSize   = sha256.Size
	proofSize = crypto.SignatureSize
	sealOver  = chacha20poly1305.Overhead

	helloSize    = 1 + nonceSize
	shareSize    = nonceSize + cpace.PointSize
	responseSize = cpace.PointSize + tagSize
	confirmSize  = tagSize
	maxRequest   = 32 + proofSize + 1 + crypto.MaxDeviceNameSize
	maxGrant     = 2 + crypto.MaxDeviceCertSize + MaxPayloadSize
)

// ci is the CPace channel identifier: it names the protocol, its version
// and the two roles, so that a run cannot be confused with another protocol
// or with the roles swapped.
var ci = []byte("weft/pairing/v1 initiator=issuer responder=joiner")

// randReader is the source of the nonces and CPace scalars; tests replace
// it to reproduce the transcript vectors.
var randReader io.Reader = rand.Reader

// proofDomain is the signature domain of the joiner's proof of possession
// of its device key.
const proofDomain = "pairing-device-proof"

func protoErr(kind error, format string, args ...any) error {
	return fmt.Errorf("%w: %w: %s", ErrPairingFailed, kind, fmt.Sprintf(format, args...))
}

func ioErr(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrPairingFailed, what, err)
}

// writeFrame writes one frame with a single Write call.
func writeFrame(w io.Writer, typ byte, body []byte) error {
	b := make([]byte, 5, 5+len(body))
	b[0] = typ
	binary.BigEndian.PutUint32(b[1:], uint32(len(body)))
	if _, err := w.Write(append(b, body...)); err != nil {
		return ioErr(fmt.Sprintf("sending message %d", typ), err)
	}
	return nil
}

// readFrame reads a frame of type want whose body is at most maxLen bytes
// long. An abort frame is returned as the error it reports.
func readFrame(r io.Reader, want byte, maxLen int) ([]byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, ioErr(fmt.Sprintf("reading message %d", want), err)
	}
	typ, n := h[0], binary.BigEndian.Uint32(h[1:])
	if typ == msgAbort {
		if n != 1 {
			return nil, protoErr(ErrMalformedMessage, "abort message of %d bytes", n)
		}
		var reason [1]byte
		if _, err := io.ReadFull(r, reason[:]); err != nil {
			return nil, ioErr("reading abort message", err)
		}
		return nil, abortError(reason[0])
	}
	if typ != want {
		return nil, protoErr(ErrMalformedMessage, "got message type %d, want %d", typ, want)
	}
	if uint64(n) > uint64(maxLen) {
		return nil, protoErr(ErrMalformedMessage, "message %d is %d bytes, want at most %d", typ, n, maxLen)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, ioErr(fmt.Sprintf("reading message %d", want), err)
	}
	return body, nil
}

func abortError(reason byte) error {
	switch reason {
	case abortWrongCode:
		return protoErr(ErrWrongCode, "the other device could not confirm the key")
	case abortExhausted:
		return protoErr(ErrCodeExhausted, "the issuer no longer accepts this code")
	case abortRejected:
		return protoErr(ErrRejected, "the issuer refused the device")
	case abortVersion:
		return protoErr(ErrVersion, "the other device does not speak version %d", Version)
	default:
		return protoErr(ErrMalformedMessage, "the other device aborted (reason %d)", reason)
	}
}

// abort sends an abort frame, ignoring errors, and returns err.
func abort(w io.Writer, reason byte, err error) error {
	_ = writeFrame(w, msgAbort, []byte{reason})
	return err
}

// abortReason returns the abort reason to send for an error.
func abortReason(err error) byte {
	switch {
	case errors.Is(err, ErrWrongCode):
		return abortWrongCode
	case errors.Is(err, ErrCodeExhausted):
		return abortExhausted
	case errors.Is(err, ErrRejected):
		return abortRejected
	case errors.Is(err, ErrVersion):
		return abortVersion
	}
	return abortMalformed
}

type hello struct {
	version byte
	nonce   [nonceSize]byte
}

func (m *hello) encode() []byte { return append([]byte{m.version}, m.nonce[:]...) }

func decodeHello(b []byte) (*hello, error) {
	if len(b) < 1 {
		return nil, protoErr(ErrMalformedMessage, "empty hello")
	}
	if b[0] != Version {
		return nil, protoErr(ErrVersion, "joiner speaks version %d, want %d", b[0], Version)
	}
	if len(b) != helloSize {
		return nil, protoErr(ErrMalformedMessage, "hello is %d bytes, want %d", len(b), helloSize)
	}
	return &hello{version: b[0], nonce: [nonceSize]byte(b[1:])}, nil
}

type share struct {
	nonce [nonceSize]byte
	y     [cpace.PointSize]byte
}

func (m *share) encode() []byte { return append(m.nonce[:len(m.nonce):len(m.nonce)], m.y[:]...) }

func decodeShare(b []byte) (*share, error) {
	if len(b) != shareSize {
		return nil, protoErr(ErrMalformedMessage, "share is %d bytes, want %d", len(b), shareSize)
	}
	return &share{nonce: [nonceSize]byte(b[:nonceSize]), y: [cpace.PointSize]byte(b[nonceSize:])}, nil
}

type response struct {
	y   [cpace.PointSize]byte
	tag [tagSize]byte
}

func (m *response) encode() []byte { return append(m.y[:len(m.y):len(m.y)], m.tag[:]...) }

func decodeResponse(b []byte) (*response, error) {
	if len(b) != responseSize {
		return nil, protoErr(ErrMalformedMessage, "response is %d bytes, want %d", len(b), responseSize)
	}
	return &response{y: [cpace.PointSize]byte(b[:cpace.PointSize]), tag: [tagSize]byte(b[cpace.PointSize:])}, nil
}

func decodeConfirm(b []byte) ([tagSize]byte, error) {
	if len(b) != confirmSize {
		return [tagSize]byte{}, protoErr(ErrMalformedMessage, "confirmation is %d bytes, want %d", len(b), confirmSize)
	}
	return [tagSize]byte(b), nil
}

type request struct {
	device crypto.DeviceID
	proof  [proofSize]byte
	name   string
}

func (m *request) encode() []byte {
	b := make([]byte, 0, 32+proofSize+1+len(m.name))
	b = append(b, m.device[:]...)
	b = append(b, m.proof[:]...)
	b = append(b, byte(len(m.name)))
	return append(b, m.name...)
}

func decodeRequest(b []byte) (*request, error) {
	const fixed = 32 + proofSize + 1
	if len(b) < fixed {
		return nil, protoErr(ErrMalformedMessage, "request is %d bytes, want at least %d", len(b), fixed)
	}
	dev, err := crypto.DeviceIDFromBytes(b[:32])
	if err != nil {
		return nil, protoErr(ErrMalformedMessage, "request: %v", err)
	}
	n := int(b[fixed-1])
	if len(b) != fixed+n {
		return nil, protoErr(ErrMalformedMessage, "request is %d bytes, want %d", len(b), fixed+n)
	}
	name := string(b[fixed:])
	if n > crypto.MaxDeviceNameSize || !utf8.ValidString(name) {
		return nil, protoErr(ErrMalformedMessage, "request: invalid device name")
	}
	return &request{device: dev, proof: [proofSize]byte(b[32 : 32+proofSize]), name: name}, nil
}

type grant struct {
	cert    []byte
	payload []byte
}

func (m *grant) encode() []byte {
	b := make([]byte, 0, 2+len(m.cert)+len(m.payload))
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.cert)))
	b = append(b, m.cert...)
	return append(b, m.payload...)
}

func decodeGrant(b []byte) (*grant, error) {
	if len(b) < 2 {
		return nil, protoErr(ErrMalformedMessage, "grant is %d bytes", len(b))
	}
	n := int(binary.BigEndian.Uint16(b))
	if n > crypto.MaxDeviceCertSize || len(b) < 2+n {
		return nil, protoErr(ErrMalformedMessage, "grant: certificate length %d", n)
	}
	if len(b)-2-n > MaxPayloadSize {
		return nil, protoErr(ErrMalformedMessage, "grant: payload too large")
	}
	return &grant{cert: b[2 : 2+n], payload: b[2+n:]}, nil
}

// keys are the session keys derived from the CPace ISK.
type keys struct {
	confirmIssuer, confirmJoiner   [32]byte
	issuerToJoiner, joinerToIssuer [32]byte
	proof                          [32]byte // signed by the joiner's device key
}

func deriveKeys(isk [cpace.ISKSize]byte, sid []byte) *keys {
	k := &keys{}
	for _, o := range []struct {
		out   *[32]byte
		label string
	}{
		{&k.confirmIssuer, "confirm issuer"},
		{&k.confirmJoiner, "confirm joiner"},
		{&k.issuerToJoiner, "issuer to joiner"},
		{&k.joinerToIssuer, "joiner to issuer"},
		{&k.proof, "device proof"},
	} {
		b, err := hkdf.Key(sha512.New, isk[:], sid, "weft/pairing/v1 "+o.label, 32)
		if err != nil {
			panic("pairing: HKDF: " + err.Error())
		}
		copy(o.out[:], b)
	}
	return k
}

// tag is the key confirmation tag over the transcript.
func tag(key [32]byte, transcript []byte) [tagSize]byte {
	m := hmac.New(sha256.New, key[:])
	m.Write(transcript)
	return [tagSize]byte(m.Sum(nil))
}

// channel is one direction of the encrypted channel after confirmation.
type channel struct {
	key [32]byte
	n   uint64
}

func (c *channel) nonce() []byte {
	var nonce [chacha20poly1305.NonceSize]byte
	binary.BigEndian.PutUint64(nonce[4:], c.n)
	c.n++
	return nonce[:]
}

func (c *channel) seal(typ byte, pt []byte) []byte {
	aead, err := chacha20poly1305.New(c.key[:])
	if err != nil {
		panic("pairing: " + err.Error())
	}
	return aead.Seal(nil, c.nonce(), pt, []byte{typ})
}

func (c *channel) open(typ byte, ct []byte) ([]byte, error) {
	aead, err := chacha20poly1305.New(c.key[:])
	if err != nil {
		panic("pairing: " + err.Error())
	}
	pt, err := aead.Open(nil, c.nonce(), ct, []byte{typ})
	if err != nil {
		return nil, protoErr(ErrMalformedMessage, "message %d does not decrypt", typ)
	}
	return pt, nil
}
