// Package api is weft's local HTTP/JSON API, for applications in any
// language, and the Go client that the weft command uses.
//
// The server listens on loopback by default and requires the bearer token
// recorded in the node's home on every request. It offers the operations
// of the node's Go API, a server-sent event stream with PrivMX event names,
// and Prometheus metrics. docs/api.md documents every call.
package api

import (
	"bytes"
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/protocol"
)

// Version is reported by GET /v1/id.
const Version = "0.1.0"

// Server serves the local API of one node.
type Server struct {
	n       *node.Node
	token   string
	log     *slog.Logger
	mux     *http.ServeMux
	maxBody int64
	// closing is closed by Close: open event streams end with an
	// "unavailable" error event.
	closing   chan struct{}
	closeOnce sync.Once
}

// NewServer returns the API handler for n, guarded by token.
func NewServer(n *node.Node, token string, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lim := n.Limits()
	// Binary fields travel as base64 (4/3 larger), plus room for the JSON.
	maxBody := int64(lim.MaxData+2*lim.MaxMeta)*4/3 + 64<<10
	s := &Server{n: n, token: token, log: log, mux: http.NewServeMux(), maxBody: maxBody, closing: make(chan struct{})}
	s.routes()
	return s
}

// Close tells the server that the daemon is stopping: every open event
// stream, and any opened afterwards, ends with an "error" event of code
// unavailable, so that clients know the daemon stopped rather than see
// the connection drop. Call it before http.Server.Shutdown (whose
// cancelled request contexts would otherwise end the streams silently).
func (s *Server) Close() { s.closeOnce.Do(func() { close(s.closing) }) }

// errShuttingDown ends the event streams when the daemon stops.
var errShuttingDown = &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "the daemon is shutting down"}

func (s *Server) routes() {
	h := func(pattern string, fn func(w http.ResponseWriter, r *http.Request) error) {
		s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := fn(w, r); err != nil {
				s.fail(w, r, err)
			}
		})
	}
	h("GET /v1/id", s.id)
	h("GET /v1/peers", s.peers)
	h("POST /v1/connect", s.connect)
	h("POST /v1/threads", s.createThread)
	h("GET /v1/threads", s.listThreads)
	h("GET /v1/threads/{id}", s.getThread)
	h("PATCH /v1/threads/{id}", s.updateThread)
	h("DELETE /v1/threads/{id}", s.deleteThread)
	h("POST /v1/threads/{id}/messages", s.send)
	h("GET /v1/threads/{id}/messages", s.listMessages)
	h("GET /v1/threads/{id}/devices", s.threadDevices)
	h("GET /v1/messages/{id}", s.getMessage)
	h("PATCH /v1/messages/{id}", s.updateMessage)
	h("DELETE /v1/messages/{id}", s.deleteMessage)
	h("GET /v1/events", s.events)
	h("GET /v1/status", s.status)
	h("GET /v1/backup", s.backup)
	h("GET /metrics", s.metrics)
	h("/", func(http.ResponseWriter, *http.Request) error {
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no such endpoint"}
	})
}

// ServeHTTP checks the bearer token, then serves the request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The scheme is exactly "Bearer", as documented (docs/api.md).
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || scheme != "Bearer" || subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="weft"`)
		s.fail(w, r, &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: "missing or wrong bearer token (see api.json in the node's home)"})
		return
	}
	// A path with . or .. segments or an empty one would get the mux's
	// redirect (307 with an HTML body): refuse it in JSON instead.
	if p := r.URL.Path; !canonical(p) {
		s.fail(w, r, badRequest("path %q is not canonical: no \".\", \"..\" or empty segments", p))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// canonical reports whether p is an absolute path with no ".", ".." or
// empty segments (a trailing slash aside).
func canonical(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	segs := strings.Split(strings.TrimSuffix(p[1:], "/"), "/")
	for _, seg := range segs {
		if seg == "." || seg == ".." || (seg == "" && p != "/") {
			return false
		}
	}
	return true
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := classify(err)
	// Only the node's own failures are errors to an operator; a request
	// refused, a peer not reached (502) or a node shutting down (503) is
	// the normal answer to the client.
	if e.Code == CodeInternal {
		s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		s.log.Debug("api request refused", "method", r.Method, "path", r.URL.Path, "code", e.Code, "err", err)
	}
	writeJSON(w, e.Status, map[string]*Error{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

// decode reads a JSON object body into v, strictly: anything but one
// object, unknown fields and oversized bodies are errors.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) error {
	invalid := func(why string) error {
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidJSON, Message: "invalid JSON: " + why}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.maxBody))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeBodyTooLarge, Message: fmt.Sprintf("request body over %d bytes", mbe.Limit)}
		}
		if errors.Is(err, io.EOF) {
			return invalid("empty body: a JSON object is expected")
		}
		return invalid(jsonProblem(err, nil, v))
	}
	if err := dec.Decode(&json.RawMessage{}); !errors.Is(err, io.EOF) {
		return invalid("data after the object")
	}
	if len(raw) == 0 || raw[0] != '{' {
		return invalid("a JSON object is expected")
	}
	obj := json.NewDecoder(bytes.NewReader(raw))
	obj.DisallowUnknownFields()
	if err := obj.Decode(v); err != nil {
		return invalid(jsonProblem(err, raw, v))
	}
	return nil
}

// user is the local identity a request acts as: the X-Weft-User header, or
// the node's first identity.
func (s *Server) user(r *http.Request) (*node.User, error) {
	ids := s.n.Identities()
	if h := r.Header.Get("X-Weft-User"); h != "" {
		u, err := crypto.ParseUserID(h)
		if err != nil {
			return nil, badRequest("X-Weft-User: %v", err)
		}
		return s.n.As(u), nil
	}
	if len(ids) == 0 {
		return nil, &Error{Status: http.StatusConflict, Code: CodeNoIdentity, Message: "this node has no user identity (a bridge): it can replicate but not read or write"}
	}
	return s.n.As(ids[0].UserID), nil
}

func pathThread(r *http.Request) (protocol.ThreadID, error) {
	t, err := protocol.ParseThreadID(r.PathValue("id"))
	if err != nil {
		return t, badRequest("%v", err)
	}
	return t, nil
}

func pathMessage(r *http.Request) (protocol.EventID, error) {
	m, err := protocol.ParseEventID(r.PathValue("id"))
	if err != nil {
		return m, badRequest("%v", err)
	}
	return m, nil
}

// page reads skip, limit, sort (asc|desc) and lastId from the query.
func page(r *http.Request) (node.Page, error) {
	q := r.URL.Query()
	var p node.Page
	for _, f := range []struct {
		name string
		dst  *int
	}{{"skip", &p.Skip}, {"limit", &p.Limit}} {
		if v := q.Get(f.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return p, badRequest("%s must be a non-negative integer, not %q", f.name, v)
			}
			*f.dst = n
		}
	}
	switch q.Get("sort") {
	case "", "asc":
	case "desc":
		p.Desc = true
	default:
		return p, badRequest("sort must be asc or desc, not %q", q.Get("sort"))
	}
	if v := q.Get("lastId"); v != "" {
		id, err := protocol.ParseEventID(v)
		if err != nil {
			return p, badRequest("lastId: %v", err)
		}
		p.LastID = id
	}
	return p, nil
}

func (s *Server) id(w http.ResponseWriter, r *http.Request) error {
	resp := IDResponse{Addrs: s.n.Addrs(), Version: Version}
	if resp.Addrs == nil {
		resp.Addrs = []string{}
	}
	if ids := s.n.Identities(); len(ids) > 0 {
		resp.UserID = ids[0].UserID
	}
	if p, err := s.n.PeerID(); err == nil {
		resp.PeerID = p.String()
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) peers(w http.ResponseWriter, r *http.Request) error {
	out := []Peer{}
	for _, pc := range s.n.PeerConns() {
		score, _ := s.n.PeerScore(pc.Peer)
		dir := "outbound"
		if pc.Inbound {
			dir = "inbound"
		}
		out = append(out, Peer{PeerID: pc.Peer.String(), Score: score, Relayed: pc.Relayed, Addr: pc.Addr, Direction: dir})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) connect(w http.ResponseWriter, r *http.Request) error {
	var req ConnectRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	if err := s.n.Connect(ctx, req.Addr); err != nil {
		if errors.Is(err, node.ErrBadInput) {
			return err
		}
		return &Error{Status: http.StatusBadGateway, Code: CodeOffline, Message: "could not connect: " + err.Error()}
	}
	writeJSON(w, http.StatusOK, map[string]string{})
	return nil
}

func (s *Server) createThread(w http.ResponseWriter, r *http.Request) error {
	var req CreateThreadRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	u, err := s.user(r)
	if err != nil {
		return err
	}
	var policy *protocol.Policy
	if req.Policy != nil {
		p := req.Policy.Apply(protocol.DefaultPolicy())
		policy = &p
	}
	t, err := u.CreateThread(r.Context(), req.Users, req.Managers, req.PublicMeta, req.PrivateMeta, policy)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, CreateThreadResponse{ThreadID: t})
	return nil
}

func (s *Server) listThreads(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	u, err := s.user(r)
	if err != nil {
		return err
	}
	l, err := u.ListThreads(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, l)
	return nil
}

func (s *Server) getThread(w http.ResponseWriter, r *http.Request) error {
	t, err := pathThread(r)
	if err != nil {
		return err
	}
	u, err := s.user(r)
	if err != nil {
		return err
	}
	th, err := u.GetThread(r.Context(), t)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, th)
	return nil
}

// threadDevices lists the devices that wrote in a thread, by user, from
// the thread's own records.
func (s *Server) threadDevices(w http.ResponseWriter, r *http.Request) error {
	t, err := pathThread(r)
	if err != nil {
		return err
	}
	u, err := s.user(r)
	if err != nil {
		return err
	}
	ds, err := u.Devices(r.Context(), t)
	if err != nil {
		return err
	}
	if ds == nil {
		ds = []node.DeviceInfo{}
	}
	writeJSON(w, http.StatusOK, DevicesResponse{Devices: ds})
	return nil
}

func (s *Server) updateThread(w http.ResponseWriter, r *http.Request) error {
	t, err := pathThread(r)
	if err != nil {
		return err
	}
	var req UpdateThreadRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	u, err := s.user(r)
	if err != nil {
		return err
	}
	// If the thread cannot be read (unknown, deleted...), the node's
	// update says why, as for a write (410 for a deleted thread).
	cur, curErr := u.GetThread(r.Context(), t)
	if curErr == nil {
		if err := checkThreadUpdate(cur, u.ID(), &req); err != nil {
			return err
		}
	}
	var policy *protocol.Policy
	if req.Policy != nil {
		if curErr != nil {
			return curErr
		}
		p := req.Policy.Apply(cur.Policy)
		policy = &p
	}
	err = u.UpdateThread(r.Context(), t, node.ThreadUpdate{
		AddUsers: req.AddUsers, RemoveUsers: req.RemoveUsers,
		AddManagers: req.AddManagers, RemoveManagers: req.RemoveManagers,
		PublicMeta: bytesOf(req.PublicMeta), PrivateMeta: bytesOf(req.PrivateMeta), Policy: policy,
		RotateKey: req.RotateKey, Version: req.Version, Force: req.Force,
	})
	if err != nil {
		return err
	}
	return s.getThread(w, r)
}

// checkThreadUpdate refuses, as a client mistake that writes nothing, an
// update by a manager of th that removes someone who is not a member (or
// not a manager), or that changes nothing at all. (Whether the user may
// update th at all is the node's to say.)
func checkThreadUpdate(th node.Thread, me crypto.UserID, req *UpdateThreadRequest) error {
	if th.StatusCode == node.StatusDeleted || !slices.Contains(th.Managers, me) {
		return nil
	}
	for _, u := range req.RemoveUsers {
		if !slices.Contains(th.Users, u) {
			return badRequest("removeUsers: %s is not a member of thread %s", u, th.ThreadID)
		}
	}
	for _, u := range req.RemoveManagers {
		if !slices.Contains(th.Managers, u) {
			return badRequest("removeManagers: %s is not a manager of thread %s", u, th.ThreadID)
		}
	}
	if len(req.RemoveUsers)+len(req.RemoveManagers) > 0 || req.PublicMeta != nil || req.PrivateMeta != nil || req.Policy != nil || req.RotateKey {
		return nil
	}
	for _, u := range req.AddUsers {
		if !slices.Contains(th.Users, u) {
			return nil
		}
	}
	for _, u := range req.AddManagers {
		if !slices.Contains(th.Managers, u) {
			return nil
		}
	}
	if len(req.AddUsers)+len(req.AddManagers) > 0 {
		return badRequest("the update changes nothing: the users to add are already members (and managers) of thread %s", th.ThreadID)
	}
	return nil // an empty update: the node says it changes nothing
}

func (s *Server) deleteThread(w http.ResponseWriter, r *http.Request) error {
	t, err := pathThread(r)
	if err != nil {
		return err
	}
	u, err := s.user(r)
	if err != nil {
		return err
	}
	if err := u.DeleteThread(r.Context(), t); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) send(w http.ResponseWriter, r *http.Request) error {
	t, err := pathThread(r)
	if err != nil {
		return err
	}
	var req SendRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	u, err := s.user(r)
	if err != nil {
		return err
	}
	id, err := u.SendMessage(r.Context(), t, req.PublicMeta, req.PrivateMeta, req.Data)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, SendResponse{MessageID: id})
	return nil
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) error {
	t, err := pathThread(r)
	if err != nil {
		return err
	}
	p, err := page(r)
	if err != nil {
		return err
	}
	u, err := s.user(r)
	if err != nil {
		return err
	}
	l, err := u.ListMessages(r.Context(), t, p)
	if err != nil {
		return err
	}
	if !p.LastID.IsZero() {
		// A lastId that is not a message of this thread's list is 404
		// (the store would otherwise start from the beginning). Checked
		// after the listing, so that errors about the thread come first.
		m, err := u.GetMessage(r.Context(), p.LastID)
		switch {
		case errors.Is(err, node.ErrNotFound), errors.Is(err, protocol.ErrNotMember),
			err == nil && (m.ThreadID != t || m.StatusCode == node.StatusDeleted):
			return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf("lastId: message %s is not in thread %s", p.LastID, t)}
		case err != nil:
			return err
		}
	}
	writeJSON(w, http.StatusOK, l)
	return nil
}

func (s *Server) getMessage(w http.ResponseWriter, r *http.Request) error {
	m, err := pathMessage(r)
	if err != nil {
		return err
	}
	u, err := s.user(r)
	if err != nil {
		return err
	}
	msg, err := u.GetMessage(r.Context(), m)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, msg)
	return nil
}

func (s *Server) updateMessage(w http.ResponseWriter, r *http.Request) error {
	m, err := pathMessage(r)
	if err != nil {
		return err
	}
	var req UpdateMessageRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	u, err := s.user(r)
	if err != nil {
		return err
	}
	if req.PublicMeta == nil && req.PrivateMeta == nil && req.Data == nil {
		return badRequest("nothing to change: give publicMeta, privateMeta or data")
	}
	if req.PublicMeta == nil || req.PrivateMeta == nil || req.Data == nil {
		// Fields left out keep their value: read it, as this user. (An
		// edit racing with this one may be overwritten; the last edit in
		// the thread's order wins, as for any two edits.)
		cur, err := u.GetMessage(r.Context(), m)
		if err != nil {
			return err
		}
		if cur.StatusCode != node.StatusOK {
			return badRequest("message %s cannot be read here (%s), so its fields cannot be kept: give publicMeta, privateMeta and data", m, cur.Status)
		}
		req.PublicMeta = cmp.Or(req.PublicMeta, &cur.PublicMeta)
		req.PrivateMeta = cmp.Or(req.PrivateMeta, &cur.PrivateMeta)
		req.Data = cmp.Or(req.Data, &cur.Data)
	}
	if err := u.UpdateMessage(r.Context(), m, *req.PublicMeta, *req.PrivateMeta, *req.Data); err != nil {
		return err
	}
	return s.getMessage(w, r)
}

func (s *Server) deleteMessage(w http.ResponseWriter, r *http.Request) error {
	m, err := pathMessage(r)
	if err != nil {
		return err
	}
	u, err := s.user(r)
	if err != nil {
		return err
	}
	if err := u.DeleteMessage(r.Context(), m); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// events streams node events as server-sent events: one "event: NAME" and
// one "data: JSON" line per event. ?threadId= filters by thread.
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	var filter *protocol.ThreadID
	if v := r.URL.Query().Get("threadId"); v != "" {
		t, err := protocol.ParseThreadID(v)
		if err != nil {
			return badRequest("threadId: %v", err)
		}
		filter = &t
	}
	u, err := s.user(r)
	if err != nil {
		return err
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "streaming unsupported"}
	}
	sub, err := u.Subscribe(r.Context(), filter)
	if err != nil {
		return err
	}
	defer sub.Close()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": weft events\n\n")
	flusher.Flush()
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	end := func(e *Error) error {
		b, _ := json.Marshal(map[string]*Error{"error": e})
		fmt.Fprintf(w, "event: error\ndata: %s\n\n", b)
		flusher.Flush()
		return nil
	}
	for {
		select {
		case e, ok := <-sub.C:
			if !ok {
				if err := sub.Err(); err != nil {
					return end(classify(err))
				}
				return nil
			}
			b, err := json.Marshal(e)
			if err != nil {
				return nil
			}
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Type, b)
			flusher.Flush()
		case <-keepAlive.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			flusher.Flush()
		case <-s.closing:
			return end(errShuttingDown)
		case <-r.Context().Done():
			select {
			case <-s.closing: // the daemon is stopping: say so
				return end(errShuttingDown)
			default: // the client went away
				return nil
			}
		}
	}
}

// backup streams a backup of the home as a tar file. An error after the
// first bytes cuts the stream short, which Restore then refuses.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) error {
	cw := &countingWriter{w: w, header: func() { w.Header().Set("Content-Type", "application/x-tar") }}
	err := s.n.Backup(r.Context(), cw)
	switch {
	case err == nil:
		return nil
	case cw.n == 0:
		return err // nothing sent yet: an ordinary error answer
	default:
		s.log.Warn("backup failed midway", "err", err)
		panic(http.ErrAbortHandler) // cut the stream: a partial backup must not look whole
	}
}

// countingWriter counts what reaches w and sets the headers just before
// the first byte.
type countingWriter struct {
	w      io.Writer
	n      int64
	header func()
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.n == 0 && c.header != nil {
		c.header()
	}
	k, err := c.w.Write(p)
	c.n += int64(k)
	return k, err
}
