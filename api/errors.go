package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/protocol"
)

// Error is the body of every failed request: a stable code for programs
// and a message for people.
//
//	{"error": {"code": "not_member", "message": "..."}}
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Error codes. They are part of the API: programs may rely on them.
const (
	CodeUnauthorized    = "unauthorized"
	CodeBadRequest      = "bad_request"
	CodeInvalidJSON     = "invalid_json"
	CodeBodyTooLarge    = "body_too_large"
	CodeNotFound        = "not_found"
	CodeNotMember       = "not_member"
	CodeNotManager      = "not_manager"
	CodeNotAuthor       = "not_author"
	CodeNotPermitted    = "not_permitted"
	CodeTooLarge        = "too_large"
	CodeVersionMismatch = "version_mismatch"
	CodeThreadDeleted   = "thread_deleted"
	CodeOffline         = "offline"
	CodeNoIdentity      = "no_identity"
	CodeUnavailable     = "unavailable"
	CodeInternal        = "internal"
)

// classify maps a node error to an API error.
func classify(err error) *Error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	e := func(status int, code string) *Error { return &Error{Status: status, Code: code, Message: err.Error()} }
	switch {
	case errors.Is(err, node.ErrNotFound):
		return e(http.StatusNotFound, CodeNotFound)
	case errors.Is(err, protocol.ErrThreadDeleted):
		return e(http.StatusGone, CodeThreadDeleted)
	case errors.Is(err, protocol.ErrNotMember):
		return e(http.StatusForbidden, CodeNotMember)
	case errors.Is(err, protocol.ErrNotManager):
		return e(http.StatusForbidden, CodeNotManager)
	case errors.Is(err, protocol.ErrNotAuthor):
		return e(http.StatusForbidden, CodeNotAuthor)
	case errors.Is(err, protocol.ErrNotPermitted):
		return e(http.StatusForbidden, CodeNotPermitted)
	case errors.Is(err, protocol.ErrTooLarge):
		return e(http.StatusRequestEntityTooLarge, CodeTooLarge)
	case errors.Is(err, node.ErrVersionMismatch):
		return e(http.StatusConflict, CodeVersionMismatch)
	case errors.Is(err, node.ErrBadInput), errors.Is(err, crypto.ErrMalformedUserID), errors.Is(err, protocol.ErrMalformedID),
		// The node refused the user's own update by the thread's rules
		// (e.g. removing its last manager): the request is at fault.
		errors.Is(err, protocol.ErrBadUpdate):
		return e(http.StatusBadRequest, CodeBadRequest)
	case errors.Is(err, node.ErrUnknownIdentity):
		return e(http.StatusConflict, CodeNoIdentity)
	case errors.Is(err, node.ErrClosed):
		return e(http.StatusServiceUnavailable, CodeUnavailable)
	}
	return e(http.StatusInternalServerError, CodeInternal)
}

func badRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: fmt.Sprintf(format, args...)}
}
