package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/protocol"
	"github.com/weftnet/weft/storage"
)

const testToken = "test-token-0123456789abcdef"

// testEnv is a real offline node served over HTTP.
type testEnv struct {
	t     *testing.T
	n     *node.Node
	s     *api.Server
	srv   *httptest.Server
	c     *api.Client
	alice crypto.UserID // the node's first identity: the default acting user
	bob   crypto.UserID // a second local identity (X-Weft-User)
	// streams receives one value each time a /v1/events stream has
	// subscribed and sent its first bytes, so a test knows no event it
	// causes afterwards can be missed.
	streams chan string
}

type envOpts struct {
	limits     protocol.Limits
	identities int          // default 2; -1 for none
	log        *slog.Logger // the server's logger; nil: none
}

// flushSignal tells the test when the event stream has subscribed: the
// server flushes for the first time only after the subscription exists.
type flushSignal struct {
	http.ResponseWriter
	once  sync.Once
	ready chan<- string
	query string
}

func (f *flushSignal) Flush() {
	f.ResponseWriter.(http.Flusher).Flush()
	f.once.Do(func() { f.ready <- f.query })
}

func newEnv(t *testing.T, o envOpts) *testEnv {
	t.Helper()
	ctx := context.Background()
	// A clock that moves 1 ms per reading makes creation orders strict.
	var tick atomic.Int64
	start := time.UnixMilli(1_750_000_000_000)
	n, err := node.New(ctx, node.Config{
		Home:        t.TempDir(),
		Unencrypted: true,
		Limits:      o.limits,
		Now:         func() time.Time { return start.Add(time.Duration(tick.Add(1)) * time.Millisecond) },
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, n: n, streams: make(chan string, 16)}
	ids := o.identities
	if ids == 0 {
		ids = 2
	}
	for i := range max(ids, 0) {
		u, err := n.CreateIdentity(ctx, []string{"alice", "bob", "carol"}[i])
		if err != nil {
			t.Fatal(err)
		}
		switch i {
		case 0:
			e.alice = u
		case 1:
			e.bob = u
		}
	}
	s := api.NewServer(n, testToken, o.log)
	e.s = s
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/events" {
			w = &flushSignal{ResponseWriter: w, ready: e.streams, query: r.URL.RawQuery}
		}
		s.ServeHTTP(w, r)
	}))
	// Cleanups run last first: close the node first, which ends any event
	// stream still open, so that closing the server does not wait for it.
	t.Cleanup(e.srv.Close)
	t.Cleanup(func() { n.Close() })
	e.c = api.NewClient(strings.TrimPrefix(e.srv.URL, "http://"), testToken)
	return e
}

// waitStream waits until an event stream has subscribed.
func (e *testEnv) waitStream() {
	e.t.Helper()
	select {
	case <-e.streams:
	case <-time.After(10 * time.Second):
		e.t.Fatal("event stream did not start")
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// raw sends a request with the test token (unless headers set
// Authorization, "" removing it) and returns the whole response.
func (e *testEnv) raw(method, path, body string, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// as acts as another local identity through X-Weft-User.
func (e *testEnv) as(u crypto.UserID, method, path, body string) response {
	e.t.Helper()
	return e.raw(method, path, body, "X-Weft-User", u.String())
}

// errorBody is the exact shape of every error response.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// wantError checks an error response: status, JSON content type, the exact
// {"error":{"code","message"}} shape, the code, and that the message
// contains each of msgParts.
func wantError(t *testing.T, r response, status int, code string, msgParts ...string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status %d, want %d (body %s)", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var eb errorBody
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&eb); err != nil {
		t.Fatalf("error body %s is not {\"error\":{\"code\",\"message\"}}: %v", r.body, err)
	}
	if eb.Error.Code != code {
		t.Errorf("code %q, want %q (message %q)", eb.Error.Code, code, eb.Error.Message)
	}
	if eb.Error.Message == "" {
		t.Errorf("empty error message")
	}
	for _, p := range msgParts {
		if !strings.Contains(eb.Error.Message, p) {
			t.Errorf("message %q does not mention %q", eb.Error.Message, p)
		}
	}
}

// wantAPIError checks an error returned by api.Client.
func wantAPIError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var ae *api.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T), want *api.Error %s", err, err, code)
	}
	if ae.Status != status || ae.Code != code {
		t.Errorf("error %d %s (%s), want %d %s", ae.Status, ae.Code, ae.Message, status, code)
	}
}

func decodeJSON[T any](t *testing.T, r response, status int) T {
	t.Helper()
	var v T
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
	return v
}

// allEndpoints are every route of the API, with a placeholder ID.
var allEndpoints = []struct{ method, path string }{
	{"GET", "/v1/id"},
	{"GET", "/v1/peers"},
	{"POST", "/v1/connect"},
	{"POST", "/v1/threads"},
	{"GET", "/v1/threads"},
	{"GET", "/v1/threads/" + strings.Repeat("ab", 32)},
	{"PATCH", "/v1/threads/" + strings.Repeat("ab", 32)},
	{"DELETE", "/v1/threads/" + strings.Repeat("ab", 32)},
	{"POST", "/v1/threads/" + strings.Repeat("ab", 32) + "/messages"},
	{"GET", "/v1/threads/" + strings.Repeat("ab", 32) + "/messages"},
	{"GET", "/v1/messages/" + strings.Repeat("ab", 32)},
	{"PATCH", "/v1/messages/" + strings.Repeat("ab", 32)},
	{"DELETE", "/v1/messages/" + strings.Repeat("ab", 32)},
	{"GET", "/v1/events"},
	{"GET", "/v1/status"},
	{"GET", "/v1/backup"},
	{"GET", "/metrics"},
	{"GET", "/v1/no-such-endpoint"},
}

func TestAuth(t *testing.T) {
	e := newEnv(t, envOpts{})
	bad := []struct{ name, auth string }{
		{"no header", ""},
		{"wrong token", "Bearer not-the-token"},
		{"token prefix", "Bearer " + testToken[:10]},
		{"token plus more", "Bearer " + testToken + "x"},
		{"empty bearer", "Bearer "},
		{"basic scheme", "Basic " + testToken},
		{"bare token", testToken},
		{"token scheme", "Token " + testToken},
	}
	for _, ep := range allEndpoints {
		for _, b := range bad {
			t.Run(ep.method+" "+ep.path+"/"+b.name, func(t *testing.T) {
				r := e.raw(ep.method, ep.path, `{}`, "Authorization", b.auth)
				wantError(t, r, http.StatusUnauthorized, api.CodeUnauthorized, "token")
				if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Errorf("WWW-Authenticate %q, want a Bearer challenge", got)
				}
			})
		}
	}
	// Nothing was done by the refused requests.
	l, err := e.c.ListThreads(context.Background(), node.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if l.TotalAvailable != 0 {
		t.Errorf("refused POST /v1/threads created %d threads", l.TotalAvailable)
	}

	// With the token: 200.
	for _, path := range []string{"/v1/id", "/v1/peers", "/v1/threads", "/metrics"} {
		if r := e.raw("GET", path, ""); r.status != http.StatusOK {
			t.Errorf("GET %s with the token: %d %s", path, r.status, r.body)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("GET /v1/events with the token: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	resp.Body.Close()

	// The client reports a wrong token as an *api.Error.
	wrong := api.NewClient(strings.TrimPrefix(e.srv.URL, "http://"), "nope")
	_, err = wrong.ID(context.Background())
	wantAPIError(t, err, http.StatusUnauthorized, api.CodeUnauthorized)
	_, err = wrong.Metrics(context.Background())
	wantAPIError(t, err, http.StatusUnauthorized, api.CodeUnauthorized)
	err = wrong.Events(context.Background(), nil, func(node.Event) error { return nil })
	wantAPIError(t, err, http.StatusUnauthorized, api.CodeUnauthorized)
}

func TestIDPeersConnect(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	id, err := e.c.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id.UserID != e.alice || id.Version != api.Version || id.PeerID != "" || id.Addrs == nil || len(id.Addrs) != 0 {
		t.Errorf("ID of an offline node = %+v", id)
	}
	if r := e.raw("GET", "/v1/id", ""); !bytes.Contains(r.body, []byte(`"addrs":[]`)) {
		t.Errorf("offline addrs should be [], got %s", r.body)
	}
	peers, err := e.c.Peers(ctx)
	if err != nil || len(peers) != 0 {
		t.Errorf("Peers = %v, %v", peers, err)
	}
	if r := e.raw("GET", "/v1/peers", ""); strings.TrimSpace(string(r.body)) != "[]" {
		t.Errorf("GET /v1/peers offline = %s, want []", r.body)
	}
	err = e.c.Connect(ctx, "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN")
	wantAPIError(t, err, http.StatusBadGateway, api.CodeOffline)
}

func TestFlow(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	c := e.c

	// Create: alice (the default user) with bob as a member.
	t1, err := c.CreateThread(ctx, api.CreateThreadRequest{
		Users:       []crypto.UserID{e.bob},
		PublicMeta:  []byte("public title"),
		PrivateMeta: []byte("secret title"),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := e.raw("POST", "/v1/threads", `{"users":[],"managers":[],"publicMeta":"","privateMeta":""}`)
	created := decodeJSON[api.CreateThreadResponse](t, r, http.StatusCreated)
	threads := []protocol.ThreadID{t1, created.ThreadID}
	for range 2 {
		tid, err := c.CreateThread(ctx, api.CreateThreadRequest{})
		if err != nil {
			t.Fatal(err)
		}
		threads = append(threads, tid)
	}

	// List and page.
	ids := func(l node.List[node.Thread]) []protocol.ThreadID {
		var out []protocol.ThreadID
		for _, th := range l.Items {
			out = append(out, th.ThreadID)
		}
		return out
	}
	last := func(i int) protocol.EventID { return protocol.EventID(threads[i]) }
	for _, tc := range []struct {
		name string
		p    node.Page
		want []protocol.ThreadID
	}{
		{"all", node.Page{}, threads},
		{"limit", node.Page{Limit: 2}, threads[:2]},
		{"skip", node.Page{Skip: 2, Limit: 2}, threads[2:]},
		{"skip past end", node.Page{Skip: 10}, nil},
		{"desc", node.Page{Desc: true, Limit: 1}, threads[3:]},
		{"lastId", node.Page{LastID: last(1)}, threads[2:]},
		{"lastId desc", node.Page{LastID: last(2), Desc: true}, []protocol.ThreadID{threads[1], threads[0]}},
		{"lastId skip limit", node.Page{LastID: last(0), Skip: 1, Limit: 1}, threads[2:3]},
	} {
		l, err := c.ListThreads(ctx, tc.p)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if l.TotalAvailable != 4 || !slices.Equal(ids(l), tc.want) {
			t.Errorf("%s: total %d items %v, want 4 %v", tc.name, l.TotalAvailable, ids(l), tc.want)
		}
	}
	if r := e.raw("GET", "/v1/threads?skip=10", ""); !bytes.Contains(r.body, []byte(`"items":[]`)) {
		t.Errorf("an empty page should have items [], got %s", r.body)
	}
	_, err = c.ListThreads(ctx, node.Page{LastID: protocol.EventID{1}})
	wantAPIError(t, err, http.StatusNotFound, api.CodeNotFound)
	// Bob is in one thread only.
	bl := decodeJSON[node.List[node.Thread]](t, e.as(e.bob, "GET", "/v1/threads", ""), http.StatusOK)
	if bl.TotalAvailable != 1 || len(bl.Items) != 1 || bl.Items[0].ThreadID != t1 {
		t.Errorf("bob's threads: %+v", bl)
	}

	// Get.
	th, err := c.GetThread(ctx, t1)
	if err != nil {
		t.Fatal(err)
	}
	if th.ThreadID != t1 || th.Creator != e.alice || th.LastModifier != e.alice ||
		!slices.Contains(th.Users, e.alice) || !slices.Contains(th.Users, e.bob) ||
		!slices.Equal(th.Managers, []crypto.UserID{e.alice}) || th.Version != 1 || th.Epoch != 0 ||
		string(th.PublicMeta) != "public title" || string(th.PrivateMeta) != "secret title" ||
		th.Policy != protocol.DefaultPolicy() || th.StatusCode != node.StatusOK || th.CreateDate != th.LastModificationDate {
		t.Errorf("GetThread = %+v", th)
	}
	// Bob decrypts the private title with the key wrapped to him.
	bt := decodeJSON[node.Thread](t, e.as(e.bob, "GET", "/v1/threads/"+t1.String(), ""), http.StatusOK)
	if string(bt.PrivateMeta) != "secret title" || bt.StatusCode != node.StatusOK {
		t.Errorf("bob's view of the thread: %+v", bt)
	}
	// A thread that does not exist.
	_, err = c.GetThread(ctx, protocol.ThreadID{9})
	wantAPIError(t, err, http.StatusNotFound, api.CodeNotFound)

	// Update: add and remove a member, metadata, rotate, version checks.
	carolID, err := crypto.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	carol := carolID.UserID()
	th, err = c.UpdateThread(ctx, t1, api.UpdateThreadRequest{AddUsers: []crypto.UserID{carol}, Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(th.Users, carol) || th.Version != 2 || th.Epoch != 0 {
		t.Errorf("after adding carol: users %v version %d epoch %d", th.Users, th.Version, th.Epoch)
	}
	th, err = c.UpdateThread(ctx, t1, api.UpdateThreadRequest{RemoveUsers: []crypto.UserID{carol}, Version: 2})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(th.Users, carol) || th.Version != 3 || th.Epoch != 1 {
		t.Errorf("after removing carol: users %v version %d epoch %d (removal must rotate the key)", th.Users, th.Version, th.Epoch)
	}
	th, err = c.UpdateThread(ctx, t1, api.UpdateThreadRequest{PublicMeta: api.Set([]byte("new public")), PrivateMeta: api.Set([]byte("new secret"))})
	if err != nil {
		t.Fatal(err)
	}
	if string(th.PublicMeta) != "new public" || string(th.PrivateMeta) != "new secret" || th.Version != 4 {
		t.Errorf("after metadata update: %+v", th)
	}
	th, err = c.UpdateThread(ctx, t1, api.UpdateThreadRequest{RotateKey: true})
	if err != nil {
		t.Fatal(err)
	}
	if th.Epoch != 2 || th.Version != 5 || string(th.PrivateMeta) != "new secret" {
		t.Errorf("after rotation: epoch %d version %d private %q", th.Epoch, th.Version, th.PrivateMeta)
	}
	_, err = c.UpdateThread(ctx, t1, api.UpdateThreadRequest{PublicMeta: api.Set([]byte("stale")), Version: 3})
	wantAPIError(t, err, http.StatusConflict, api.CodeVersionMismatch)
	wantError(t, e.raw("PATCH", "/v1/threads/"+t1.String(), `{"publicMeta":"c3RhbGU=","version":1}`),
		http.StatusConflict, api.CodeVersionMismatch, "version")
	th, err = c.UpdateThread(ctx, t1, api.UpdateThreadRequest{PublicMeta: api.Set([]byte("forced")), Version: 3, Force: true})
	if err != nil || string(th.PublicMeta) != "forced" || th.Version != 6 {
		t.Errorf("forced update: %+v, %v", th, err)
	}
	pol := protocol.Policy{Post: protocol.RoleMember, EditMessage: protocol.RoleAuthorOrManager, DeleteMessage: protocol.RoleAuthorOrManager}
	th, err = c.UpdateThread(ctx, t1, api.UpdateThreadRequest{Policy: api.PatchOf(pol)})
	if err != nil || th.Policy != pol {
		t.Errorf("policy update: %+v, %v", th.Policy, err)
	}
	// Bob is a member, not a manager.
	wantError(t, e.as(e.bob, "PATCH", "/v1/threads/"+t1.String(), `{"publicMeta":"Ym9i"}`), http.StatusForbidden, api.CodeNotManager)
	// Bob still decrypts after the rotations.
	bt = decodeJSON[node.Thread](t, e.as(e.bob, "GET", "/v1/threads/"+t1.String(), ""), http.StatusOK)
	if string(bt.PrivateMeta) != "new secret" {
		t.Errorf("bob's view after rotation: %+v", bt)
	}

	// Send and list messages.
	var msgs []protocol.EventID
	for i := range 5 {
		m, err := c.Send(ctx, t1, api.SendRequest{PublicMeta: []byte{'p', byte('0' + i)}, PrivateMeta: []byte("pm"), Data: []byte{'m', byte('0' + i)}})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	mids := func(l node.List[node.Message]) []protocol.EventID {
		var out []protocol.EventID
		for _, m := range l.Items {
			out = append(out, m.MessageID)
		}
		return out
	}
	rev := func(s []protocol.EventID) []protocol.EventID { s = slices.Clone(s); slices.Reverse(s); return s }
	for _, tc := range []struct {
		name string
		p    node.Page
		want []protocol.EventID
	}{
		{"all", node.Page{}, msgs},
		{"limit", node.Page{Limit: 2}, msgs[:2]},
		{"skip limit", node.Page{Skip: 1, Limit: 2}, msgs[1:3]},
		{"desc limit", node.Page{Desc: true, Limit: 2}, rev(msgs[3:])},
		{"lastId", node.Page{LastID: msgs[1]}, msgs[2:]},
		{"lastId desc", node.Page{LastID: msgs[3], Desc: true}, rev(msgs[:3])},
		{"lastId skip limit", node.Page{LastID: msgs[0], Skip: 1, Limit: 2}, msgs[2:4]},
		{"skip past end", node.Page{Skip: 9}, nil},
	} {
		l, err := c.ListMessages(ctx, t1, tc.p)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if l.TotalAvailable != 5 || !slices.Equal(mids(l), tc.want) {
			t.Errorf("%s: total %d items %v, want 5 %v", tc.name, l.TotalAvailable, mids(l), tc.want)
		}
	}
	_, err = c.ListMessages(ctx, t1, node.Page{LastID: protocol.EventID{7}})
	wantAPIError(t, err, http.StatusNotFound, api.CodeNotFound)
	l, err := c.ListMessages(ctx, t1, node.Page{Limit: 1})
	if err != nil || len(l.Items) != 1 || string(l.Items[0].Data) != "m0" || string(l.Items[0].PrivateMeta) != "pm" {
		t.Errorf("first message listed: %+v, %v", l, err)
	}

	// Get a message.
	m0, err := c.GetMessage(ctx, msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	if m0.MessageID != msgs[0] || m0.ThreadID != t1 || m0.Author != e.alice || string(m0.Data) != "m0" ||
		string(m0.PublicMeta) != "p0" || string(m0.PrivateMeta) != "pm" || m0.Updates == nil || len(m0.Updates) != 0 ||
		m0.StatusCode != node.StatusOK || m0.CreateDate == 0 {
		t.Errorf("GetMessage = %+v", m0)
	}
	if r := e.raw("GET", "/v1/messages/"+msgs[0].String(), ""); !bytes.Contains(r.body, []byte(`"updates":[]`)) {
		t.Errorf("a message without updates should have updates [], got %s", r.body)
	}
	bm := decodeJSON[node.Message](t, e.as(e.bob, "GET", "/v1/messages/"+msgs[0].String(), ""), http.StatusOK)
	if string(bm.Data) != "m0" || bm.StatusCode != node.StatusOK {
		t.Errorf("bob's view of the message: %+v", bm)
	}

	// Update a message: the updates list grows.
	for i, text := range []string{"edit one", "edit two"} {
		m, err := c.UpdateMessage(ctx, msgs[0], api.UpdateMessageRequest{PublicMeta: api.Set([]byte("p0")), Data: api.Set([]byte(text))})
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Data) != text || len(m.Updates) != i+1 || m.Updates[i].Author != e.alice || m.Updates[i].Date < m.CreateDate || m.CreateDate != m0.CreateDate {
			t.Errorf("after edit %d: %+v", i+1, m)
		}
	}
	// Bob may neither edit nor delete alice's message.
	wantError(t, e.as(e.bob, "PATCH", "/v1/messages/"+msgs[0].String(), `{"data":"aGFja2Vk"}`), http.StatusForbidden, api.CodeNotAuthor)
	wantError(t, e.as(e.bob, "DELETE", "/v1/messages/"+msgs[0].String(), ""), http.StatusForbidden, api.CodeNotAuthor)
	// But he may post, and alice (a manager) may edit his message.
	bobMsg := decodeJSON[api.SendResponse](t, e.as(e.bob, "POST", "/v1/threads/"+t1.String()+"/messages", `{"data":"ZnJvbSBib2I="}`), http.StatusCreated)
	m, err := c.UpdateMessage(ctx, bobMsg.MessageID, api.UpdateMessageRequest{Data: api.Set([]byte("moderated"))})
	if err != nil || m.Author != e.bob || string(m.Data) != "moderated" || len(m.Updates) != 1 || m.Updates[0].Author != e.alice {
		t.Errorf("manager edit of bob's message: %+v, %v", m, err)
	}
	// Bob may not write to a thread he is not in.
	wantError(t, e.as(e.bob, "POST", "/v1/threads/"+threads[1].String()+"/messages", `{"data":"eA=="}`), http.StatusForbidden, api.CodeNotMember)
	wantError(t, e.as(e.bob, "GET", "/v1/threads/"+threads[1].String(), ""), http.StatusForbidden, api.CodeNotMember)

	// Delete a message.
	if err := c.DeleteMessage(ctx, msgs[0]); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetMessage(ctx, msgs[0])
	wantAPIError(t, err, http.StatusNotFound, api.CodeNotFound)
	wantAPIError(t, c.DeleteMessage(ctx, msgs[0]), http.StatusNotFound, api.CodeNotFound)
	_, err = c.UpdateMessage(ctx, msgs[0], api.UpdateMessageRequest{Data: api.Set([]byte("x"))})
	wantAPIError(t, err, http.StatusNotFound, api.CodeNotFound)
	wantAPIError(t, c.DeleteMessage(ctx, protocol.EventID{3}), http.StatusNotFound, api.CodeNotFound)
	l, err = c.ListMessages(ctx, t1, node.Page{})
	if err != nil || l.TotalAvailable != 5 || slices.Contains(mids(l), msgs[0]) {
		t.Errorf("after deleting one of 6: total %d items %v, %v", l.TotalAvailable, mids(l), err)
	}
	th, err = c.GetThread(ctx, t1)
	if err != nil || th.MessagesCount != 5 || th.LastMsgDate == 0 {
		t.Errorf("thread stats after delete: count %d last %d, %v", th.MessagesCount, th.LastMsgDate, err)
	}

	// Delete the thread: bob may not, alice may.
	wantError(t, e.as(e.bob, "DELETE", "/v1/threads/"+t1.String(), ""), http.StatusForbidden, api.CodeNotManager)
	if err := c.DeleteThread(ctx, t1); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetThread(ctx, t1)
	wantAPIError(t, err, http.StatusNotFound, api.CodeNotFound)
	_, err = c.ListMessages(ctx, t1, node.Page{})
	wantAPIError(t, err, http.StatusNotFound, api.CodeNotFound)
	_, err = c.Send(ctx, t1, api.SendRequest{Data: []byte("late")})
	wantAPIError(t, err, http.StatusGone, api.CodeThreadDeleted)
	_, err = c.UpdateThread(ctx, t1, api.UpdateThreadRequest{RotateKey: true})
	wantAPIError(t, err, http.StatusGone, api.CodeThreadDeleted)
	wantAPIError(t, c.DeleteThread(ctx, t1), http.StatusGone, api.CodeThreadDeleted)
	tl, err := c.ListThreads(ctx, node.Page{})
	if err != nil || tl.TotalAvailable != 3 || slices.Contains(ids(tl), t1) {
		t.Errorf("after delete: %v, %v", ids(tl), err)
	}
	wantAPIError(t, c.DeleteThread(ctx, protocol.ThreadID{5}), http.StatusNotFound, api.CodeNotFound)

	// Status codes of the raw calls.
	r = e.raw("POST", "/v1/threads/"+threads[1].String()+"/messages", `{"data":"aGk="}`)
	sent := decodeJSON[api.SendResponse](t, r, http.StatusCreated)
	if r = e.raw("DELETE", "/v1/messages/"+sent.MessageID.String(), ""); r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Errorf("DELETE message: %d %q, want 204 and no body", r.status, r.body)
	}
	if r = e.raw("DELETE", "/v1/threads/"+threads[1].String(), ""); r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Errorf("DELETE thread: %d %q, want 204 and no body", r.status, r.body)
	}
}

// TestActingUser checks X-Weft-User.
func TestActingUser(t *testing.T) {
	e := newEnv(t, envOpts{})
	r := e.as(e.bob, "POST", "/v1/threads", `{"users":[]}`)
	tid := decodeJSON[api.CreateThreadResponse](t, r, http.StatusCreated).ThreadID
	th := decodeJSON[node.Thread](t, e.as(e.bob, "GET", "/v1/threads/"+tid.String(), ""), http.StatusOK)
	if th.Creator != e.bob || !slices.Equal(th.Managers, []crypto.UserID{e.bob}) {
		t.Errorf("thread created as bob: %+v", th)
	}
	// Alice (the default) is not in bob's thread.
	_, err := e.c.GetThread(context.Background(), tid)
	wantAPIError(t, err, http.StatusForbidden, api.CodeNotMember)
	// The thread's policy binds bob as well as alice: here only managers
	// post (not_manager for bob) and nobody edits (not_permitted even for
	// the author).
	pol := fmt.Sprintf(`{"users":[%q],"policy":{"post":"manager","editMessage":"nobody","deleteMessage":"author","shareHistory":false}}`, e.bob)
	strict := decodeJSON[api.CreateThreadResponse](t, e.raw("POST", "/v1/threads", pol), http.StatusCreated).ThreadID
	wantError(t, e.as(e.bob, "POST", "/v1/threads/"+strict.String()+"/messages", `{"data":"eA=="}`), http.StatusForbidden, api.CodeNotManager)
	sent := decodeJSON[api.SendResponse](t, e.raw("POST", "/v1/threads/"+strict.String()+"/messages", `{"data":"eA=="}`), http.StatusCreated)
	wantError(t, e.raw("PATCH", "/v1/messages/"+sent.MessageID.String(), `{"data":"eQ=="}`), http.StatusForbidden, api.CodeNotPermitted)
	// A well-formed user ID that is not a local identity.
	other, err := crypto.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, e.as(other.UserID(), "GET", "/v1/threads", ""), http.StatusConflict, api.CodeNoIdentity, other.UserID().String())
	wantError(t, e.as(other.UserID(), "GET", "/v1/events", ""), http.StatusConflict, api.CodeNoIdentity)
	// A malformed one.
	wantError(t, e.raw("GET", "/v1/threads", "", "X-Weft-User", "weft1nope"), http.StatusBadRequest, api.CodeBadRequest, "X-Weft-User", "malformed user ID")
	typo := userIDTypo(e.bob)
	wantError(t, e.raw("GET", "/v1/threads", "", "X-Weft-User", string(typo)), http.StatusBadRequest, api.CodeBadRequest, "X-Weft-User", "checksum")
}

func TestNoIdentity(t *testing.T) {
	e := newEnv(t, envOpts{identities: -1})
	id := decodeJSON[map[string]any](t, e.raw("GET", "/v1/id", ""), http.StatusOK)
	if id["userId"] != "" {
		t.Errorf("GET /v1/id without identity: userId %v, want \"\"", id["userId"])
	}
	tid := strings.Repeat("ab", 32)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/threads", ""},
		{"POST", "/v1/threads", `{}`},
		{"GET", "/v1/threads/" + tid, ""},
		{"PATCH", "/v1/threads/" + tid, `{}`},
		{"DELETE", "/v1/threads/" + tid, ""},
		{"POST", "/v1/threads/" + tid + "/messages", `{}`},
		{"GET", "/v1/threads/" + tid + "/messages", ""},
		{"GET", "/v1/messages/" + tid, ""},
		{"PATCH", "/v1/messages/" + tid, `{}`},
		{"DELETE", "/v1/messages/" + tid, ""},
		{"GET", "/v1/events", ""},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			wantError(t, e.raw(c.method, c.path, c.body), http.StatusConflict, api.CodeNoIdentity, "identity")
		})
	}
	if r := e.raw("GET", "/metrics", ""); r.status != http.StatusOK || !strings.Contains(string(r.body), "weft_identities 0\n") {
		t.Errorf("metrics without identity: %d %s", r.status, r.body)
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t, envOpts{limits: protocol.Limits{MaxData: 1024, MaxMeta: 256}})
	ctx := context.Background()
	tid, err := e.c.CreateThread(ctx, api.CreateThreadRequest{Users: []crypto.UserID{e.bob}})
	if err != nil {
		t.Fatal(err)
	}
	mid, err := e.c.Send(ctx, tid, api.SendRequest{Data: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	T := "/v1/threads/" + tid.String()
	M := "/v1/messages/" + mid.String()
	// The body limit of a node with these limits: over it is 413
	// body_too_large before anything is decoded.
	huge := `{"data":"` + strings.Repeat("A", 200<<10) + `"}`
	bigData := `{"data":"` + strings.Repeat("QUFB", 1025/3+1) + `"}` // 1026 bytes > MaxData
	bigMeta := `{"publicMeta":"` + strings.Repeat("QUFB", 86) + `"}` // 258 bytes > MaxMeta
	badUID := userIDTypo(e.bob)

	cases := []struct {
		name         string
		method, path string
		body         string
		status       int
		code         string
		msg          []string
	}{
		{"syntax error", "POST", "/v1/threads", `{"users":`, 400, api.CodeInvalidJSON, []string{"invalid JSON"}},
		{"not json", "POST", T + "/messages", `hello`, 400, api.CodeInvalidJSON, []string{"invalid JSON"}},
		{"wrong type", "POST", "/v1/threads", `[1,2]`, 400, api.CodeInvalidJSON, []string{"invalid JSON"}},
		{"wrong field type", "POST", T + "/messages", `{"data":5}`, 400, api.CodeInvalidJSON, []string{"data"}},
		{"unknown field", "POST", "/v1/threads", `{"users":[],"title":"x"}`, 400, api.CodeInvalidJSON, []string{"unknown field", "title"}},
		{"unknown field patch", "PATCH", T, `{"addUser":[]}`, 400, api.CodeInvalidJSON, []string{"unknown field", "addUser"}},
		{"unknown field message", "PATCH", M, `{"text":"hi"}`, 400, api.CodeInvalidJSON, []string{"unknown field", "text"}},
		{"empty body", "POST", "/v1/threads", ``, 400, api.CodeInvalidJSON, []string{"empty body"}},
		{"empty body send", "POST", T + "/messages", ``, 400, api.CodeInvalidJSON, []string{"empty body"}},
		{"empty body patch", "PATCH", T, ``, 400, api.CodeInvalidJSON, []string{"empty body"}},
		{"empty body connect", "POST", "/v1/connect", ``, 400, api.CodeInvalidJSON, []string{"empty body"}},
		{"blank body", "POST", "/v1/threads", "  \n", 400, api.CodeInvalidJSON, []string{"empty body"}},
		{"trailing object", "POST", "/v1/threads", `{} {}`, 400, api.CodeInvalidJSON, []string{"after"}},
		{"trailing garbage", "POST", T + "/messages", `{"data":"eA=="} x`, 400, api.CodeInvalidJSON, []string{"after"}},
		{"trailing number", "PATCH", M, `{"data":"eA=="}1`, 400, api.CodeInvalidJSON, []string{"after"}},
		{"trailing brace", "POST", "/v1/threads", `{}}`, 400, api.CodeInvalidJSON, []string{"after"}},
		{"trailing bracket", "POST", T + "/messages", `{"data":"YnVn"}]`, 400, api.CodeInvalidJSON, []string{"after"}},
		{"bad base64", "POST", T + "/messages", `{"data":"not base64!"}`, 400, api.CodeInvalidJSON, []string{"base64"}},
		{"body too large", "POST", T + "/messages", huge, 413, api.CodeBodyTooLarge, []string{"bytes"}},
		{"body too large create", "POST", "/v1/threads", huge, 413, api.CodeBodyTooLarge, []string{"bytes"}},
		{"data too large", "POST", T + "/messages", bigData, 413, api.CodeTooLarge, []string{"data", "1024"}},
		{"data too large edit", "PATCH", M, bigData, 413, api.CodeTooLarge, []string{"data", "1024"}},
		{"meta too large create", "POST", "/v1/threads", bigMeta, 413, api.CodeTooLarge, []string{"publicMeta", "256"}},
		{"meta too large update", "PATCH", T, bigMeta, 413, api.CodeTooLarge, []string{"publicMeta", "256"}},
		{"meta too large send", "POST", T + "/messages", bigMeta, 413, api.CodeTooLarge, []string{"publicMeta", "256"}},
		{"short thread ID", "GET", "/v1/threads/abc", "", 400, api.CodeBadRequest, []string{"thread ID", "64 hex"}},
		{"non-hex thread ID", "GET", "/v1/threads/" + strings.Repeat("zz", 32), "", 400, api.CodeBadRequest, []string{"thread ID"}},
		{"bad thread ID patch", "PATCH", "/v1/threads/abc", `{}`, 400, api.CodeBadRequest, []string{"thread ID"}},
		{"bad thread ID delete", "DELETE", "/v1/threads/abc", "", 400, api.CodeBadRequest, []string{"thread ID"}},
		{"bad thread ID send", "POST", "/v1/threads/abc/messages", `{}`, 400, api.CodeBadRequest, []string{"thread ID"}},
		{"bad thread ID list", "GET", "/v1/threads/abc/messages", "", 400, api.CodeBadRequest, []string{"thread ID"}},
		{"bad message ID", "GET", "/v1/messages/" + tid.String()[:63], "", 400, api.CodeBadRequest, []string{"event ID", "64 hex"}},
		{"bad message ID patch", "PATCH", "/v1/messages/xyz", `{}`, 400, api.CodeBadRequest, []string{"event ID"}},
		{"bad message ID delete", "DELETE", "/v1/messages/xyz", "", 400, api.CodeBadRequest, []string{"event ID"}},
		{"bad events filter", "GET", "/v1/events?threadId=xyz", "", 400, api.CodeBadRequest, []string{"threadId", "thread ID"}},
		// A user ID that does not parse fails in the JSON decoding.
		{"malformed user ID", "POST", "/v1/threads", `{"users":["weft1abc"]}`, 400, api.CodeInvalidJSON, []string{"malformed user ID"}},
		{"user ID typo", "POST", "/v1/threads", `{"users":["` + badUID + `"]}`, 400, api.CodeInvalidJSON, []string{"malformed user ID", "checksum"}},
		{"upper-case user ID", "POST", "/v1/threads", `{"managers":["` + strings.ToUpper(e.bob.String()) + `"]}`, 400, api.CodeInvalidJSON, []string{"malformed user ID", "lower case"}},
		{"malformed user ID patch", "PATCH", T, `{"addUsers":["bob"]}`, 400, api.CodeInvalidJSON, []string{"malformed user ID"}},
		{"not a user ID", "POST", "/v1/threads", `{"users":[42]}`, 400, api.CodeInvalidJSON, []string{"users"}},
		{"bad role", "POST", "/v1/threads", `{"policy":{"post":"everyone","editMessage":"author","deleteMessage":"author"}}`, 400, api.CodeInvalidJSON, []string{"unknown role", "everyone"}},
		{"role not allowed", "POST", "/v1/threads", `{"policy":{"post":"author","editMessage":"author","deleteMessage":"author"}}`, 400, api.CodeBadRequest, []string{"policy", "post"}},
		{"role not allowed patch", "PATCH", T, `{"policy":{"post":"authorOrManager","editMessage":"author","deleteMessage":"author"}}`, 400, api.CodeBadRequest, []string{"policy"}},
		{"bad peer address", "POST", "/v1/connect", `{"addr":5}`, 400, api.CodeInvalidJSON, []string{"addr"}},
		{"negative limit", "GET", "/v1/threads?limit=-1", "", 400, api.CodeBadRequest, []string{"limit", "-1"}},
		{"negative skip", "GET", T + "/messages?skip=-3", "", 400, api.CodeBadRequest, []string{"skip", "-3"}},
		{"non-numeric limit", "GET", T + "/messages?limit=ten", "", 400, api.CodeBadRequest, []string{"limit", "ten"}},
		{"bad sort", "GET", "/v1/threads?sort=sideways", "", 400, api.CodeBadRequest, []string{"sort", "sideways"}},
		{"bad sort messages", "GET", T + "/messages?sort=DESC", "", 400, api.CodeBadRequest, []string{"sort", "DESC"}},
		{"bad lastId", "GET", T + "/messages?lastId=123", "", 400, api.CodeBadRequest, []string{"lastId"}},
		{"bad lastId threads", "GET", "/v1/threads?lastId=" + strings.Repeat("g", 64), "", 400, api.CodeBadRequest, []string{"lastId"}},
		{"unknown endpoint", "GET", "/v1/nothing", "", 404, api.CodeNotFound, []string{"endpoint"}},
		{"unknown version", "GET", "/v2/id", "", 404, api.CodeNotFound, []string{"endpoint"}},
		{"root", "GET", "/", "", 404, api.CodeNotFound, []string{"endpoint"}},
		{"unknown sub-resource", "GET", T + "/members", "", 404, api.CodeNotFound, []string{"endpoint"}},
		{"trailing slash", "GET", "/v1/threads/", "", 404, api.CodeNotFound, []string{"endpoint"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.raw(c.method, c.path, c.body)
			wantError(t, r, c.status, c.code, c.msg...)
		})
	}

	// The Go client reports the same errors.
	_, err = e.c.Send(ctx, tid, api.SendRequest{Data: make([]byte, 1025)})
	wantAPIError(t, err, http.StatusRequestEntityTooLarge, api.CodeTooLarge)
	_, err = e.c.ListThreads(ctx, node.Page{Limit: -1}) // the client drops a negative limit
	if err != nil {
		t.Errorf("ListThreads with Limit -1: %v", err)
	}
	// Nothing was stored by the refused writes (but for the known bug's
	// message "bug"): one message.
	l, err := e.c.ListMessages(ctx, tid, node.Page{})
	if err != nil {
		t.Fatal(err)
	}
	l.Items = slices.DeleteFunc(l.Items, func(m node.Message) bool { return string(m.Data) == "bug" })
	if len(l.Items) != 1 || string(l.Items[0].Data) != "x" {
		t.Errorf("after refused writes: %+v", l)
	}
}

// userIDTypo returns u's text form with one character changed to another
// valid one: it parses as bech32 but fails the checksum.
func userIDTypo(u crypto.UserID) string {
	const charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
	b := []byte(u.String())
	i := strings.IndexByte(charset, b[10])
	b[10] = charset[(i+1)%len(charset)]
	return string(b)
}

// readEvent waits for the next event.
func readEvent(t *testing.T, ch <-chan node.Event) node.Event {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
		return node.Event{}
	}
}

// stream runs api.Client.Events in a goroutine until the test ends.
func (e *testEnv) stream(thread *protocol.ThreadID) <-chan node.Event {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan node.Event, 64)
	done := make(chan error, 1)
	go func() {
		done <- e.c.Events(ctx, thread, func(ev node.Event) error {
			ch <- ev
			return nil
		})
	}()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			e.t.Errorf("Events ended with %v, want context.Canceled", err)
		}
	})
	e.waitStream()
	return ch
}

func TestEvents(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	ch := e.stream(nil)

	tid, err := e.c.CreateThread(ctx, api.CreateThreadRequest{Users: []crypto.UserID{e.bob}, PrivateMeta: []byte("title")})
	if err != nil {
		t.Fatal(err)
	}
	ev := readEvent(t, ch)
	if ev.Type != node.EventThreadCreated || ev.ThreadID != tid || ev.Thread == nil || string(ev.Thread.PrivateMeta) != "title" || ev.Message != nil {
		t.Errorf("threadCreated event: %+v", ev)
	}

	mid, err := e.c.Send(ctx, tid, api.SendRequest{PublicMeta: []byte("pub"), PrivateMeta: []byte("priv"), Data: []byte("hello, Bob")})
	if err != nil {
		t.Fatal(err)
	}
	ev = readEvent(t, ch)
	if ev.Type != node.EventThreadNewMessage || ev.ThreadID != tid || ev.MessageID == nil || *ev.MessageID != mid || ev.Message == nil {
		t.Fatalf("threadNewMessage event: %+v", ev)
	}
	if m := ev.Message; m.MessageID != mid || m.Author != e.alice || string(m.Data) != "hello, Bob" ||
		string(m.PrivateMeta) != "priv" || string(m.PublicMeta) != "pub" || m.StatusCode != node.StatusOK {
		t.Errorf("message in the event (should be decrypted): %+v", m)
	}
	ev = readEvent(t, ch)
	if ev.Type != node.EventThreadStats || ev.ThreadID != tid || ev.Stats == nil || ev.Stats.MessagesCount != 1 || ev.Stats.LastMsgDate == 0 {
		t.Errorf("threadStats event: %+v", ev)
	}

	if _, err := e.c.UpdateMessage(ctx, mid, api.UpdateMessageRequest{Data: api.Set([]byte("edited"))}); err != nil {
		t.Fatal(err)
	}
	ev = readEvent(t, ch)
	if ev.Type != node.EventThreadUpdatedMessage || ev.Message == nil || string(ev.Message.Data) != "edited" || len(ev.Message.Updates) != 1 {
		t.Errorf("threadUpdatedMessage event: %+v", ev)
	}
	if _, err := e.c.UpdateThread(ctx, tid, api.UpdateThreadRequest{PublicMeta: api.Set([]byte("renamed"))}); err != nil {
		t.Fatal(err)
	}
	ev = readEvent(t, ch)
	if ev.Type != node.EventThreadUpdated || ev.Thread == nil || string(ev.Thread.PublicMeta) != "renamed" || ev.Thread.Version != 2 {
		t.Errorf("threadUpdated event: %+v", ev)
	}
	if err := e.c.DeleteMessage(ctx, mid); err != nil {
		t.Fatal(err)
	}
	ev = readEvent(t, ch)
	if ev.Type != node.EventThreadMessageDeleted || ev.MessageID == nil || *ev.MessageID != mid || ev.Message == nil || ev.Message.StatusCode != node.StatusDeleted {
		t.Errorf("threadMessageDeleted event: %+v", ev)
	}
	ev = readEvent(t, ch)
	if ev.Type != node.EventThreadStats || ev.Stats == nil || ev.Stats.MessagesCount != 0 {
		t.Errorf("threadStats after delete: %+v", ev)
	}
	if err := e.c.DeleteThread(ctx, tid); err != nil {
		t.Fatal(err)
	}
	ev = readEvent(t, ch)
	if ev.Type != node.EventThreadDeleted || ev.ThreadID != tid || ev.Thread == nil || ev.Thread.StatusCode != node.StatusDeleted {
		t.Errorf("threadDeleted event: %+v", ev)
	}
	select {
	case ev := <-ch:
		t.Errorf("unexpected extra event %+v", ev)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestEventsFilter(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	t1, err := e.c.CreateThread(ctx, api.CreateThreadRequest{})
	if err != nil {
		t.Fatal(err)
	}
	t2, err := e.c.CreateThread(ctx, api.CreateThreadRequest{})
	if err != nil {
		t.Fatal(err)
	}
	only1 := e.stream(&t1)
	all := e.stream(nil)

	// The other thread's message comes first: a stream delivers events in
	// order, so if the filtered stream's first event is t1's, t2's was
	// excluded.
	m2, err := e.c.Send(ctx, t2, api.SendRequest{Data: []byte("to t2")})
	if err != nil {
		t.Fatal(err)
	}
	m1, err := e.c.Send(ctx, t1, api.SendRequest{Data: []byte("to t1")})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		typ string
		t   protocol.ThreadID
	}{{node.EventThreadNewMessage, t1}, {node.EventThreadStats, t1}} {
		ev := readEvent(t, only1)
		if ev.Type != want.typ || ev.ThreadID != want.t {
			t.Errorf("filtered stream: got %s of %s, want %s of %s", ev.Type, ev.ThreadID, want.typ, want.t)
		}
		if ev.MessageID != nil && *ev.MessageID != m1 {
			t.Errorf("filtered stream: message %s, want %s", ev.MessageID, m1)
		}
	}
	var got []string
	for range 4 {
		ev := readEvent(t, all)
		got = append(got, ev.Type+"/"+ev.ThreadID.String()[:8])
	}
	want := []string{
		node.EventThreadNewMessage + "/" + t2.String()[:8], node.EventThreadStats + "/" + t2.String()[:8],
		node.EventThreadNewMessage + "/" + t1.String()[:8], node.EventThreadStats + "/" + t1.String()[:8],
	}
	if !slices.Equal(got, want) {
		t.Errorf("unfiltered stream: %v, want %v (m2 %s)", got, want, m2)
	}
}

// TestEventsWire checks the server-sent event format itself, as a client
// in another language sees it, and that events go to each member decrypted
// for that member (bob here, through X-Weft-User).
func TestEventsWire(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("X-Weft-User", e.bob.String())
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("stream response: %d %v", resp.StatusCode, resp.Header)
	}
	e.waitStream()
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("stream ended")
			}
			return l
		case <-time.After(10 * time.Second):
			t.Fatal("no line within 10s")
		}
		return ""
	}
	if l := next(); l != ": weft events" {
		t.Errorf("first line %q, want the comment \": weft events\"", l)
	}
	if l := next(); l != "" {
		t.Errorf("second line %q, want blank", l)
	}
	// A thread bob is not in: nothing for him.
	if _, err := e.c.CreateThread(ctx, api.CreateThreadRequest{}); err != nil {
		t.Fatal(err)
	}
	tid, err := e.c.CreateThread(ctx, api.CreateThreadRequest{Users: []crypto.UserID{e.bob}})
	if err != nil {
		t.Fatal(err)
	}
	mid, err := e.c.Send(ctx, tid, api.SendRequest{Data: []byte("for bob")})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{node.EventThreadCreated, node.EventThreadNewMessage, node.EventThreadStats} {
		if l := next(); l != "event: "+want {
			t.Fatalf("line %q, want \"event: %s\"", l, want)
		}
		l := next()
		data, ok := strings.CutPrefix(l, "data: ")
		if !ok {
			t.Fatalf("line %q, want \"data: {...}\"", l)
		}
		var ev node.Event
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("data %s: %v", data, err)
		}
		if ev.Type != want || ev.ThreadID != tid {
			t.Errorf("event %s of %s, want %s of %s", ev.Type, ev.ThreadID, want, tid)
		}
		if want == node.EventThreadNewMessage && (ev.Message == nil || ev.Message.MessageID != mid || string(ev.Message.Data) != "for bob") {
			t.Errorf("bob's threadNewMessage: %s", data)
		}
		if l := next(); l != "" {
			t.Errorf("line %q after data, want blank", l)
		}
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	tid, err := e.c.CreateThread(ctx, api.CreateThreadRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Send(ctx, tid, api.SendRequest{Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	r := e.raw("GET", "/metrics", "")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", r.status, r.header.Get("Content-Type"))
	}
	text := string(r.body)
	for _, want := range []string{
		"# TYPE weft_threads gauge\nweft_threads 1\n",
		"# TYPE weft_identities gauge\nweft_identities 2\n",
		"# TYPE weft_peers gauge\nweft_peers 0\n",
		"# TYPE weft_events_stored_total counter\nweft_events_stored_total 2\n",
		"# TYPE weft_events_rejected_total counter\n",
		"weft_held_events 0\n",
		"weft_sync_lag_seconds -1",
		"weft_gossip_dropped_total 0\n",
		"weft_gossip_undeliverable_total 0\n",
		"weft_gossip_rejected_total 0\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "weft_events_rejected_total{") {
		t.Errorf("rejections before any bad event:\n%s", text)
	}

	// Ingest bad events: an empty one (malformed), one of an unknown wire
	// version, and one that decodes as nothing.
	res, err := e.n.Ingest(ctx, [][]byte{{}, []byte("garbage"), {protocol.WireVersion, 0xee, 1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rejected != 3 || res.Accepted != 0 {
		t.Fatalf("ingest of garbage: %+v", res)
	}
	text, err = e.c.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"weft_events_rejected_total{reason=\"malformed\"} 2\n",
		"weft_events_rejected_total{reason=\"unknown_version\"} 1\n",
		"weft_events_stored_total 2\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q:\n%s", want, text)
		}
	}
	// Every sample line is "name[{labels}] value" and every name has TYPE.
	typed := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		if name, ok := strings.CutPrefix(l, "# TYPE "); ok {
			typed[strings.Fields(name)[0]] = true
			continue
		}
		if strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Fields(l)
		name, _, _ := strings.Cut(f[0], "{")
		if len(f) != 2 || !typed[name] {
			t.Errorf("bad sample line %q", l)
		}
	}
}

// TestClientUnreachable checks the client's error for a daemon that is
// not there.
func TestClientUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	c := api.NewClient(addr, testToken)
	if _, err := c.ID(context.Background()); !errors.Is(err, api.ErrUnreachable) {
		t.Errorf("ID of a closed address: %v, want ErrUnreachable", err)
	}
	if err := c.Events(context.Background(), nil, func(node.Event) error { return nil }); !errors.Is(err, api.ErrUnreachable) {
		t.Errorf("Events of a closed address: %v, want ErrUnreachable", err)
	}
}

// TestEndpointFile checks the endpoint file round trip.
func TestEndpointFile(t *testing.T) {
	home := t.TempDir()
	if _, err := api.ReadEndpoint(home); !errors.Is(err, api.ErrNoDaemon) {
		t.Errorf("ReadEndpoint of an empty home: %v, want ErrNoDaemon", err)
	}
	tok, err := api.NewToken()
	if err != nil || len(tok) != 64 {
		t.Fatalf("NewToken = %q, %v", tok, err)
	}
	ep := api.Endpoint{Addr: "127.0.0.1:4567", Token: tok, PID: 42}
	if err := api.WriteEndpoint(home, ep); err != nil {
		t.Fatal(err)
	}
	got, err := api.ReadEndpoint(home)
	if err != nil || got != ep {
		t.Errorf("ReadEndpoint = %+v, %v, want %+v", got, err, ep)
	}
	api.RemoveEndpoint(home)
	if _, err := api.ReadEndpoint(home); !errors.Is(err, api.ErrNoDaemon) {
		t.Errorf("ReadEndpoint after remove: %v, want ErrNoDaemon", err)
	}
}

// TestNodeClosed checks what clients see when the node shuts down under
// the server: an open event stream ends with an "error" event, and calls
// fail with 503 unavailable.
func TestNodeClosed(t *testing.T) {
	e := newEnv(t, envOpts{})
	done := make(chan error, 1)
	go func() {
		done <- e.c.Events(context.Background(), nil, func(node.Event) error { return nil })
	}()
	e.waitStream()
	if err := e.n.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		wantAPIError(t, err, 0, api.CodeUnavailable) // an error event carries no HTTP status
	case <-time.After(10 * time.Second):
		t.Fatal("the event stream did not end when the node closed")
	}
	wantError(t, e.raw("GET", "/v1/threads", ""), http.StatusServiceUnavailable, api.CodeUnavailable, "closed")
	wantError(t, e.raw("POST", "/v1/threads", `{}`), http.StatusServiceUnavailable, api.CodeUnavailable, "closed")
}

// TestServerClose: when the daemon stops (Server.Close, then the HTTP
// server's shutdown cancels the requests), an open event stream ends with
// the documented "error" event of code unavailable, on the wire and
// through the Go client; a stream opened afterwards ends at once the same
// way. A stream that just ends, with no error event, is ErrUnreachable
// to the client, not a clean end.
func TestServerClose(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	e.waitStream()
	done := make(chan error, 1)
	go func() {
		done <- e.c.Events(context.Background(), nil, func(node.Event) error { return nil })
	}()
	e.waitStream()
	e.s.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the stream: %v (read %q)", err, body)
	}
	if want := "event: error\ndata: {\"error\":{\"code\":\"unavailable\","; !strings.Contains(string(body), want) {
		t.Errorf("stream ended with %q, want an error event of code unavailable", body)
	}
	select {
	case err := <-done:
		wantAPIError(t, err, 0, api.CodeUnavailable)
	case <-time.After(10 * time.Second):
		t.Fatal("the client's stream did not end on Close")
	}
	err = e.c.Events(context.Background(), nil, func(node.Event) error { return nil })
	wantAPIError(t, err, 0, api.CodeUnavailable)

	// A stream cut with no error event.
	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, ": weft events\n\n")
	}))
	defer cut.Close()
	err = api.NewClient(strings.TrimPrefix(cut.URL, "http://"), testToken).Events(context.Background(), nil, func(node.Event) error { return nil })
	if !errors.Is(err, api.ErrUnreachable) {
		t.Errorf("a stream that ended without an error event: %v, want ErrUnreachable", err)
	}
}

// A policy in a request sets only the rules it names: a new thread keeps
// the defaults for the others, an update keeps the thread's current ones.
func TestPartialPolicy(t *testing.T) {
	e := newEnv(t, envOpts{})
	r := e.raw("POST", "/v1/threads", `{"policy":{"post":"manager"}}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var created api.CreateThreadResponse
	if err := json.Unmarshal(r.body, &created); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	th, err := e.c.GetThread(ctx, created.ThreadID)
	if err != nil {
		t.Fatal(err)
	}
	want := protocol.DefaultPolicy()
	want.Post = protocol.RoleManager
	if th.Policy != want {
		t.Fatalf("created with %+v, want %+v", th.Policy, want)
	}
	r = e.raw("PATCH", "/v1/threads/"+created.ThreadID.String(), `{"policy":{"shareHistory":false}}`)
	if r.status != http.StatusOK {
		t.Fatalf("update: %d %s", r.status, r.body)
	}
	th, _ = e.c.GetThread(ctx, created.ThreadID)
	want.ShareHistory = false
	if th.Policy != want {
		t.Fatalf("updated to %+v, want %+v", th.Policy, want)
	}
}

// TestPartialMessageUpdate: PATCH /v1/messages/{id} changes only the
// fields it names; "" empties a field, null or absence keeps it.
func TestPartialMessageUpdate(t *testing.T) {
	e := newEnv(t, envOpts{})
	created := decodeJSON[api.CreateThreadResponse](t, e.raw("POST", "/v1/threads", `{}`), http.StatusCreated)
	path := "/v1/threads/" + created.ThreadID.String() + "/messages"
	// publicMeta "pub", privateMeta "priv", data "data" (base64).
	sent := decodeJSON[api.SendResponse](t, e.raw("POST", path, `{"publicMeta":"cHVi","privateMeta":"cHJpdg==","data":"ZGF0YQ=="}`), http.StatusCreated)
	msg := "/v1/messages/" + sent.MessageID.String()
	steps := []struct {
		body            string
		pub, priv, data string
		wantUpdates     int
	}{
		{`{"data":"bmV3"}`, "pub", "priv", "new", 1},                   // data only
		{`{"publicMeta":"UFVC","data":null}`, "PUB", "priv", "new", 2}, // null keeps
		{`{"privateMeta":""}`, "PUB", "", "new", 3},                    // "" empties
	}
	for _, s := range steps {
		m := decodeJSON[node.Message](t, e.raw("PATCH", msg, s.body), http.StatusOK)
		if string(m.PublicMeta) != s.pub || string(m.PrivateMeta) != s.priv || string(m.Data) != s.data || len(m.Updates) != s.wantUpdates {
			t.Errorf("after PATCH %s: publicMeta %q privateMeta %q data %q updates %d, want %q %q %q %d",
				s.body, m.PublicMeta, m.PrivateMeta, m.Data, len(m.Updates), s.pub, s.priv, s.data, s.wantUpdates)
		}
	}
	// Naming no field is a mistake, not an edit.
	wantError(t, e.raw("PATCH", msg, `{}`), http.StatusBadRequest, api.CodeBadRequest, "nothing to change")
	if m := decodeJSON[node.Message](t, e.raw("GET", msg, ""), http.StatusOK); len(m.Updates) != 3 {
		t.Errorf("an empty PATCH changed the message: %d updates", len(m.Updates))
	}
}

// TestClearThreadMeta: a thread's metadata can be cleared, through the Go
// client (Set(nil), or a pointer to an empty slice) and in JSON (""),
// while Keep (null, absent) leaves it.
func TestClearThreadMeta(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	tid, err := e.c.CreateThread(ctx, api.CreateThreadRequest{PublicMeta: []byte("pub"), PrivateMeta: []byte("priv")})
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, th node.Thread, pub, priv string) {
		t.Helper()
		if string(th.PublicMeta) != pub || string(th.PrivateMeta) != priv {
			t.Errorf("%s: publicMeta %q privateMeta %q, want %q %q", what, th.PublicMeta, th.PrivateMeta, pub, priv)
		}
	}
	th, err := e.c.UpdateThread(ctx, tid, api.UpdateThreadRequest{PublicMeta: api.Set(nil), PrivateMeta: api.Keep})
	if err != nil {
		t.Fatal(err)
	}
	check("Set(nil) public, Keep private", th, "", "priv")
	empty := []byte{}
	th, err = e.c.UpdateThread(ctx, tid, api.UpdateThreadRequest{PrivateMeta: &empty})
	if err != nil {
		t.Fatal(err)
	}
	check("pointer to empty private", th, "", "")
	path := "/v1/threads/" + tid.String()
	check("JSON set", decodeJSON[node.Thread](t, e.raw("PATCH", path, `{"publicMeta":"cHVi","privateMeta":"cHJpdg=="}`), http.StatusOK), "pub", "priv")
	check("JSON null keeps, \"\" clears", decodeJSON[node.Thread](t, e.raw("PATCH", path, `{"publicMeta":null,"privateMeta":""}`), http.StatusOK), "pub", "")
	check("JSON absent keeps", decodeJSON[node.Thread](t, e.raw("PATCH", path, `{"privateMeta":"eA=="}`), http.StatusOK), "pub", "x")
	check("JSON \"\" clears", decodeJSON[node.Thread](t, e.raw("PATCH", path, `{"publicMeta":""}`), http.StatusOK), "", "x")
	if th, _ := e.c.GetThread(ctx, tid); th.Version != 7 {
		t.Errorf("version %d after 6 updates, want 7", th.Version)
	}
}

// levels records the level of every log record.
type levels struct {
	mu  sync.Mutex
	got []string
}

func (l *levels) Enabled(context.Context, slog.Level) bool { return true }
func (l *levels) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, r.Level.String()+" "+r.Message)
	return nil
}
func (l *levels) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *levels) WithGroup(string) slog.Handler      { return l }

func (l *levels) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(l.got), func(s string) bool { return !strings.HasPrefix(s, "ERROR") })
}

// TestClientMistakes: a thread update that cannot be done as asked —
// removing the last manager, removing someone who is not a member (or not
// a manager), adding only who is already there — is a 4xx, logged below
// ERROR, and writes nothing.
func TestClientMistakes(t *testing.T) {
	logs := &levels{}
	e := newEnv(t, envOpts{log: slog.New(logs)})
	ctx := context.Background()
	tid, err := e.c.CreateThread(ctx, api.CreateThreadRequest{Users: []crypto.UserID{e.bob}})
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := crypto.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	T := "/v1/threads/" + tid.String()
	A, B, S := e.alice.String(), e.bob.String(), stranger.UserID().String()
	before, err := e.c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, body string
		status     int
		code       string
		msg        []string
	}{
		{"remove the last manager", `{"removeManagers":["` + A + `"]}`, 400, api.CodeBadRequest, []string{"manager"}},
		{"remove the last manager as a member", `{"removeUsers":["` + A + `"]}`, 400, api.CodeBadRequest, []string{"manager"}},
		{"remove a non-member", `{"removeUsers":["` + S + `"]}`, 400, api.CodeBadRequest, []string{S, "not a member"}},
		{"remove a non-member among members", `{"removeUsers":["` + B + `","` + S + `"]}`, 400, api.CodeBadRequest, []string{S, "not a member"}},
		{"remove a member who is not a manager", `{"removeManagers":["` + B + `"]}`, 400, api.CodeBadRequest, []string{B, "not a manager"}},
		{"add a member again", `{"addUsers":["` + B + `"]}`, 400, api.CodeBadRequest, []string{"changes nothing"}},
		{"add a manager again", `{"addManagers":["` + A + `"]}`, 400, api.CodeBadRequest, []string{"changes nothing"}},
		{"empty update", `{}`, 400, api.CodeBadRequest, []string{"changes nothing"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, e.raw("PATCH", T, c.body), c.status, c.code, c.msg...)
		})
	}
	// Not a manager: the node's answer, not ours.
	wantError(t, e.as(e.bob, "PATCH", T, `{"removeUsers":["`+S+`"]}`), http.StatusForbidden, api.CodeNotManager)

	th, err := e.c.GetThread(ctx, tid)
	if err != nil {
		t.Fatal(err)
	}
	after, err := e.c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if th.Version != 1 || after.EventsStored != before.EventsStored {
		t.Errorf("refused updates wrote: thread version %d (want 1), events stored %d -> %d", th.Version, before.EventsStored, after.EventsStored)
	}
	if errs := logs.errors(); len(errs) > 0 {
		t.Errorf("client mistakes logged at ERROR: %q", errs)
	}
	// What is allowed still works.
	if th, err := e.c.UpdateThread(ctx, tid, api.UpdateThreadRequest{AddManagers: []crypto.UserID{e.bob}, RemoveManagers: []crypto.UserID{e.alice}}); err != nil || !slices.Equal(th.Managers, []crypto.UserID{e.bob}) {
		t.Errorf("handing over the manager role: %v, managers %v", err, th.Managers)
	}
}

// TestDocumentedRefusals: what docs/api.md promises and main did not do.
// A well-formed lastId that is not in the list is 404; the scheme is
// exactly "Bearer"; a path with ".", ".." or empty segments is a JSON 400,
// not the mux's 307 redirect with an HTML body.
func TestDocumentedRefusals(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.srv.Client().CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	ctx := context.Background()
	t1, err := e.c.CreateThread(ctx, api.CreateThreadRequest{})
	if err != nil {
		t.Fatal(err)
	}
	t2, err := e.c.CreateThread(ctx, api.CreateThreadRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []protocol.EventID
	for _, d := range []string{"one", "two", "three"} {
		m, err := e.c.Send(ctx, t1, api.SendRequest{Data: []byte(d)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m)
	}
	other, err := e.c.Send(ctx, t2, api.SendRequest{Data: []byte("elsewhere")})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.c.DeleteMessage(ctx, ids[2]); err != nil {
		t.Fatal(err)
	}
	absent := strings.Repeat("ab", 32)
	M := "/v1/threads/" + t1.String() + "/messages?lastId="
	wantError(t, e.raw("GET", M+absent, ""), http.StatusNotFound, api.CodeNotFound, "lastId", absent)
	wantError(t, e.raw("GET", M+other.String(), ""), http.StatusNotFound, api.CodeNotFound, "lastId")
	wantError(t, e.raw("GET", M+ids[2].String(), ""), http.StatusNotFound, api.CodeNotFound, "lastId") // deleted
	wantError(t, e.raw("GET", M+t2.String(), ""), http.StatusNotFound, api.CodeNotFound, "lastId")
	wantError(t, e.raw("GET", "/v1/threads?lastId="+absent, ""), http.StatusNotFound, api.CodeNotFound, "lastId")
	l := decodeJSON[node.List[node.Message]](t, e.raw("GET", M+ids[0].String(), ""), http.StatusOK)
	if len(l.Items) != 1 || l.Items[0].MessageID != ids[1] {
		t.Errorf("the page after the first message: %+v, want the second only", l.Items)
	}
	_, err = e.c.ListMessages(ctx, t1, node.Page{LastID: protocol.EventID(t2)})
	wantAPIError(t, err, http.StatusNotFound, api.CodeNotFound)

	for _, auth := range []string{"bearer " + testToken, "BEARER " + testToken, "Bearer  " + testToken} {
		wantError(t, e.raw("GET", "/v1/id", "", "Authorization", auth), http.StatusUnauthorized, api.CodeUnauthorized, "token")
	}

	for _, p := range []string{"/v1/threads/../id", "/v1/./id", "/v1//id", "/../v1/id", "/v1/threads/" + t1.String() + "/messages/..", "/v1/threads//"} {
		r := e.raw("GET", p, "")
		wantError(t, r, http.StatusBadRequest, api.CodeBadRequest, "path")
		if loc := r.header.Get("Location"); loc != "" {
			t.Errorf("GET %s: redirects to %s", p, loc)
		}
	}
	// Refused before anything else: the token.
	wantError(t, e.raw("GET", "/v1/../v1/id", "", "Authorization", ""), http.StatusUnauthorized, api.CodeUnauthorized)
}

// TestErrorTexts: invalid_json messages speak of JSON fields and types,
// not of Go structs, packages and types, and name the field at fault,
// base64 and user ID errors included.
func TestErrorTexts(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	tid, err := e.c.CreateThread(ctx, api.CreateThreadRequest{})
	if err != nil {
		t.Fatal(err)
	}
	mid, err := e.c.Send(ctx, tid, api.SendRequest{Data: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	T, M := "/v1/threads/"+tid.String(), "/v1/messages/"+mid.String()
	cases := []struct {
		method, path, body string
		msg                []string
	}{
		{"POST", "/v1/threads", `{"users":[42]}`, []string{`field "users"`, "a number where a string is expected"}},
		{"POST", "/v1/threads", `{"users":"x"}`, []string{`field "users"`, "a string where an array is expected"}},
		{"POST", "/v1/threads", `{"users":["weft1abc"]}`, []string{`field "users"`, "malformed user ID"}},
		{"POST", "/v1/threads", `{"publicMeta":"%%"}`, []string{`field "publicMeta"`, "base64"}},
		{"POST", "/v1/threads", `{"policy":{"shareHistory":"yes"}}`, []string{`field "policy.shareHistory"`, "true or false"}},
		{"POST", "/v1/threads", `{"policy":{"post":"everyone"}}`, []string{`field "policy"`, "unknown role"}},
		{"POST", "/v1/threads", `{"users":`, []string{"unexpected end"}},
		{"POST", T + "/messages", `{"data":5}`, []string{`field "data"`, "a number where a base64 string is expected"}},
		{"POST", T + "/messages", `{"publicMeta":"","data":"not base64!"}`, []string{`field "data"`, "base64"}},
		{"PATCH", M, `{"privateMeta":"@@@@"}`, []string{`field "privateMeta"`, "base64"}},
		{"PATCH", T, `{"addUsers":["bob"]}`, []string{`field "addUsers"`, "malformed user ID"}},
		{"PATCH", T, `{"version":"2"}`, []string{`field "version"`, "a string where a number is expected"}},
		{"POST", "/v1/connect", `{"addr":5}`, []string{`field "addr"`, "a number where a string is expected"}},
	}
	for _, c := range cases {
		r := e.raw(c.method, c.path, c.body)
		wantError(t, r, http.StatusBadRequest, api.CodeInvalidJSON, c.msg...)
		for _, leak := range []string{"Go struct", "Go value", "crypto.", "api.", "protocol.", "[]", "json:", "Request"} {
			if bytes.Contains(r.body, []byte(leak)) {
				t.Errorf("%s %s %s: the message shows Go internals (%q): %s", c.method, c.path, c.body, leak, r.body)
			}
		}
	}
}

// TestLogLevels: answers that are not the node's own failure — a peer
// that cannot be reached (502), a node shutting down (503), a refused
// request (4xx) — are not logged at ERROR.
func TestLogLevels(t *testing.T) {
	logs := &levels{}
	e := newEnv(t, envOpts{log: slog.New(logs)})
	wantError(t, e.raw("POST", "/v1/connect", `{"addr":"/ip4/127.0.0.1/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"}`), http.StatusBadGateway, api.CodeOffline)
	wantError(t, e.raw("GET", "/v1/threads/"+strings.Repeat("ab", 32), ""), http.StatusNotFound, api.CodeNotFound)
	wantError(t, e.raw("GET", "/v1/id", "", "Authorization", ""), http.StatusUnauthorized, api.CodeUnauthorized)
	if err := e.n.Close(); err != nil {
		t.Fatal(err)
	}
	wantError(t, e.raw("GET", "/v1/threads", ""), http.StatusServiceUnavailable, api.CodeUnavailable)
	if errs := logs.errors(); len(errs) > 0 {
		t.Errorf("logged at ERROR: %q", errs)
	}
}

// TestStatus: GET /v1/status reports what the node holds, in the JSON
// field names docs/api.md gives.
func TestStatus(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	st, err := e.c.Status(ctx)
	if err != nil || st.Threads != 0 || st.Identities < 1 || st.HeldEvents != 0 || st.LastSync != 0 {
		t.Fatalf("status of a fresh node: %+v, %v", st, err)
	}
	created := decodeJSON[api.CreateThreadResponse](t, e.raw("POST", "/v1/threads", `{}`), http.StatusCreated)
	decodeJSON[api.SendResponse](t, e.raw("POST", "/v1/threads/"+created.ThreadID.String()+"/messages", `{"data":"eA=="}`), http.StatusCreated)
	st, err = e.c.Status(ctx)
	if err != nil || st.Threads != 1 || st.EventsStored < 2 {
		t.Fatalf("status after a thread and a message: %+v, %v", st, err)
	}
	r := e.raw("GET", "/v1/status", "")
	for _, field := range []string{`"peers":`, `"threads":1`, `"eventsStored":`, `"eventsRejected":{}`, `"heldEvents":0`, `"lastSync":0`, `"gossip":{"droppedRpcs":0`} {
		if !bytes.Contains(r.body, []byte(field)) {
			t.Errorf("status body lacks %s: %s", field, r.body)
		}
	}
}

// TestBackupEndpoint: GET /v1/backup streams a tar that node.Restore turns
// into a home holding the thread.
func TestBackupEndpoint(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	created := decodeJSON[api.CreateThreadResponse](t, e.raw("POST", "/v1/threads", `{}`), http.StatusCreated)
	r := e.raw("GET", "/v1/backup", "")
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/x-tar" {
		t.Fatalf("backup: %d %q", r.status, r.header.Get("Content-Type"))
	}
	var buf bytes.Buffer
	if err := e.c.Backup(ctx, &buf); err != nil || buf.Len() == 0 {
		t.Fatalf("client backup: %d bytes, %v", buf.Len(), err)
	}
	home := filepath.Join(t.TempDir(), "restored")
	if err := node.Restore(home, &buf); err != nil {
		t.Fatal(err)
	}
	all, err := storage.Open(filepath.Join(home, "store"), storage.Options{GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	threads, err := all.LoadThreads()
	if err != nil || threads[created.ThreadID] == nil {
		t.Fatalf("restored store lacks the thread: %v (%d threads)", err, len(threads))
	}
}

// TestThreadDevices: GET /v1/threads/{id}/devices lists the devices that
// wrote in the thread, from its own records; this node's is marked.
func TestThreadDevices(t *testing.T) {
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	created := decodeJSON[api.CreateThreadResponse](t, e.raw("POST", "/v1/threads", `{}`), http.StatusCreated)
	ds, err := e.c.ThreadDevices(ctx, created.ThreadID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || !ds[0].ThisNode || ds[0].Device.IsZero() || ds[0].Events != 1 {
		t.Fatalf("devices %+v", ds)
	}
	r := e.raw("GET", "/v1/threads/"+created.ThreadID.String()+"/devices", "")
	if r.status != http.StatusOK || !bytes.Contains(r.body, []byte(`"device":"weftdev1`)) {
		t.Fatalf("raw: %d %s", r.status, r.body)
	}
	if r := e.raw("GET", "/v1/threads/"+strings.Repeat("ab", 32)+"/devices", ""); r.status != http.StatusNotFound {
		t.Fatalf("unknown thread: %d %s", r.status, r.body)
	}
}
