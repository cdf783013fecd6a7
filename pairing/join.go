package pairing

import (
	"crypto/hmac"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/pairing/internal/cpace"
)

// Joined is what the new device receives when pairing succeeds.
type Joined struct {
	// Cert is the device's certificate, verified: it certifies the
	// joining device for the user Cert.User(), signed by that user.
	Cert *crypto.DeviceCert
	// Payload is the application data sent by the issuer (see
	// Config.Payload).
	Payload []byte
}

// Join runs the new device's side of pairing over rw: dev is the new
// device's key (generated on the device, never sent), name its display name
// (at most crypto.MaxDeviceNameSize bytes of UTF-8) and code the code shown
// by the issuer. See the package documentation for the errors; on
// ErrWrongCode the user may retry, with the same Pairer code while it has
// attempts left.
//
// Join learns the user from the certificate; an application that knows
// which user to expect should compare it with Joined.Cert.User().
func Join(rw io.ReadWriter, code Code, dev *crypto.DeviceIdentity, name string) (*Joined, error) {
	if code.IsZero() {
		return nil, fmt.Errorf("%w: %w: zero code", ErrPairingFailed, ErrMalformedCode)
	}
	if len(name) > crypto.MaxDeviceNameSize || !utf8.ValidString(name) {
		return nil, protoErr(ErrRejected, "device name must be at most %d bytes of UTF-8", crypto.MaxDeviceNameSize)
	}

	h := &hello{version: Version}
	if _, err := io.ReadFull(randReader, h.nonce[:]); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPairingFailed, err)
	}
	if err := writeFrame(rw, msgHello, h.encode()); err != nil {
		return nil, err
	}

	body, err := readFrame(rw, msgShare, shareSize)
	if err != nil {
		return nil, err
	}
	sh, err := decodeShare(body)
	if err != nil {
		return nil, abort(rw, abortMalformed, err)
	}
	sid := append(h.nonce[:len(h.nonce):len(h.nonce)], sh.nonce[:]...)
	yb, isk, err := cpace.Respond(randReader, code.prs(), ci, sid, nil, sh.y[:], nil)
	if err != nil {
		return nil, abort(rw, abortMalformed, protoErr(ErrMalformedMessage, "issuer's share: %v", err))
	}
	k := deriveKeys(isk, sid)
	resp := &response{y: [cpace.PointSize]byte(yb)}
	transcript := append(append(h.encode(), sh.encode()...), resp.y[:]...)
	resp.tag = tag(k.confirmJoiner, transcript)
	if err := writeFrame(rw, msgResponse, resp.encode()); err != nil {
		return nil, err
	}

	body, err = readFrame(rw, msgConfirm, confirmSize)
	if err != nil {
		return nil, err
	}
	ti, err := decodeConfirm(body)
	if err != nil {
		return nil, abort(rw, abortMalformed, err)
	}
	if want := tag(k.confirmIssuer, transcript); !hmac.Equal(want[:], ti[:]) {
		return nil, abort(rw, abortWrongCode, protoErr(ErrWrongCode, "the issuer's key confirmation failed"))
	}

	out := &channel{key: k.joinerToIssuer}
	in := &channel{key: k.issuerToJoiner}
	req := &request{device: dev.DeviceID(), name: name}
	copy(req.proof[:], dev.Sign(proofDomain, k.proof[:]))
	if err := writeFrame(rw, msgRequest, out.seal(msgRequest, req.encode())); err != nil {
		return nil, err
	}

	body, err = readFrame(rw, msgGrant, maxGrant+sealOver)
	if err != nil {
		return nil, err
	}
	pt, err := in.open(msgGrant, body)
	if err != nil {
		return nil, abort(rw, abortMalformed, err)
	}
	g, err := decodeGrant(pt)
	if err != nil {
		return nil, abort(rw, abortMalformed, err)
	}
	cert, err := crypto.ParseDeviceCert(g.cert)
	if err != nil {
		return nil, abort(rw, abortMalformed, protoErr(ErrMalformedMessage, "%v", err))
	}
	if err := cert.Verify(cert.User()); err != nil {
		return nil, abort(rw, abortMalformed, protoErr(ErrMalformedMessage, "%v", err))
	}
	if cert.Device() != dev.DeviceID() || cert.Name() != name {
		return nil, abort(rw, abortMalformed, protoErr(ErrMalformedMessage, "the certificate is not for this device"))
	}
	if err := writeFrame(rw, msgDone, out.seal(msgDone, nil)); err != nil {
		return nil, err
	}
	return &Joined{Cert: cert, Payload: g.payload}, nil
}
