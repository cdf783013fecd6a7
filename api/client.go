package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/protocol"
)

// ErrUnreachable means no daemon answered at the client's address.
var ErrUnreachable = errors.New("daemon unreachable")

// Client talks to a daemon's local API.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// NewClient returns a client for the API at addr (host:port) using token.
func NewClient(addr, token string) *Client {
	return &Client{base: "http://" + addr, token: token, hc: &http.Client{}}
}

// NewClientForHome finds the daemon of a home through its endpoint file.
func NewClientForHome(home string) (*Client, error) {
	ep, err := ReadEndpoint(home)
	if err != nil {
		return nil, err
	}
	return NewClient(ep.Addr, ep.Token), nil
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func decodeError(resp *http.Response) error {
	var body struct {
		Error *Error `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(b, &body) != nil || body.Error == nil {
		return &Error{Status: resp.StatusCode, Code: CodeInternal, Message: fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))}
	}
	body.Error.Status = resp.StatusCode
	return body.Error
}

func pageQuery(p node.Page) string {
	q := url.Values{}
	if p.Skip > 0 {
		q.Set("skip", strconv.Itoa(p.Skip))
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Desc {
		q.Set("sort", "desc")
	}
	if !p.LastID.IsZero() {
		q.Set("lastId", p.LastID.String())
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// ID returns the daemon's user ID, peer ID and addresses.
func (c *Client) ID(ctx context.Context) (IDResponse, error) {
	var out IDResponse
	return out, c.do(ctx, "GET", "/v1/id", nil, &out)
}

// Peers lists the daemon's connected peers.
func (c *Client) Peers(ctx context.Context) ([]Peer, error) {
	var out []Peer
	return out, c.do(ctx, "GET", "/v1/peers", nil, &out)
}

// Connect asks the daemon to dial a peer.
func (c *Client) Connect(ctx context.Context, addr string) error {
	return c.do(ctx, "POST", "/v1/connect", ConnectRequest{Addr: addr}, nil)
}

// CreateThread creates a thread.
func (c *Client) CreateThread(ctx context.Context, req CreateThreadRequest) (protocol.ThreadID, error) {
	var out CreateThreadResponse
	return out.ThreadID, c.do(ctx, "POST", "/v1/threads", req, &out)
}

// ListThreads lists the user's threads.
func (c *Client) ListThreads(ctx context.Context, p node.Page) (node.List[node.Thread], error) {
	var out node.List[node.Thread]
	return out, c.do(ctx, "GET", "/v1/threads"+pageQuery(p), nil, &out)
}

// GetThread returns a thread.
func (c *Client) GetThread(ctx context.Context, t protocol.ThreadID) (node.Thread, error) {
	var out node.Thread
	return out, c.do(ctx, "GET", "/v1/threads/"+t.String(), nil, &out)
}

// ThreadDevices lists the devices that wrote in a thread, by user.
func (c *Client) ThreadDevices(ctx context.Context, t protocol.ThreadID) ([]node.DeviceInfo, error) {
	var out DevicesResponse
	return out.Devices, c.do(ctx, "GET", "/v1/threads/"+t.String()+"/devices", nil, &out)
}

// UpdateThread changes a thread and returns it as it now is.
func (c *Client) UpdateThread(ctx context.Context, t protocol.ThreadID, req UpdateThreadRequest) (node.Thread, error) {
	var out node.Thread
	req.PublicMeta, req.PrivateMeta = setField(req.PublicMeta), setField(req.PrivateMeta)
	return out, c.do(ctx, "PATCH", "/v1/threads/"+t.String(), req, &out)
}

// DeleteThread deletes a thread.
func (c *Client) DeleteThread(ctx context.Context, t protocol.ThreadID) error {
	return c.do(ctx, "DELETE", "/v1/threads/"+t.String(), nil, nil)
}

// Send posts a message.
func (c *Client) Send(ctx context.Context, t protocol.ThreadID, req SendRequest) (protocol.EventID, error) {
	var out SendResponse
	return out.MessageID, c.do(ctx, "POST", "/v1/threads/"+t.String()+"/messages", req, &out)
}

// ListMessages lists a thread's messages.
func (c *Client) ListMessages(ctx context.Context, t protocol.ThreadID, p node.Page) (node.List[node.Message], error) {
	var out node.List[node.Message]
	return out, c.do(ctx, "GET", "/v1/threads/"+t.String()+"/messages"+pageQuery(p), nil, &out)
}

// GetMessage returns a message.
func (c *Client) GetMessage(ctx context.Context, m protocol.EventID) (node.Message, error) {
	var out node.Message
	return out, c.do(ctx, "GET", "/v1/messages/"+m.String(), nil, &out)
}

// UpdateMessage edits a message: the fields req sets replace the
// message's, the others are kept. It returns the message as it now is.
func (c *Client) UpdateMessage(ctx context.Context, m protocol.EventID, req UpdateMessageRequest) (node.Message, error) {
	var out node.Message
	req.PublicMeta, req.PrivateMeta, req.Data = setField(req.PublicMeta), setField(req.PrivateMeta), setField(req.Data)
	return out, c.do(ctx, "PATCH", "/v1/messages/"+m.String(), req, &out)
}

// DeleteMessage deletes a message.
func (c *Client) DeleteMessage(ctx context.Context, m protocol.EventID) error {
	return c.do(ctx, "DELETE", "/v1/messages/"+m.String(), nil, nil)
}

// Events streams events (of one thread if thread is not nil) to fn until
// ctx ends (it returns ctx.Err()), fn returns an error (returned), or the
// daemon stops: an *Error of code unavailable when it said so, an error
// wrapping ErrUnreachable when the stream just ended.
func (c *Client) Events(ctx context.Context, thread *protocol.ThreadID, fn func(node.Event) error) error {
	return c.Watch(ctx, thread, nil, fn)
}

// Watch is [Client.Events] with ready, if not nil, called once the daemon
// has subscribed: every change after that is streamed.
func (c *Client) Watch(ctx context.Context, thread *protocol.ThreadID, ready func(), fn func(node.Event) error) error {
	path := "/v1/events"
	if thread != nil {
		path += "?threadId=" + thread.String()
	}
	resp, err := c.stream(ctx, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if ready != nil {
		ready() // the server subscribes before it answers
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var name string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data := strings.TrimPrefix(line, "data: ")
			if name == "error" {
				var body struct{ Error *Error }
				if json.Unmarshal([]byte(data), &body) == nil && body.Error != nil {
					return body.Error
				}
				return errors.New("event stream error: " + data)
			}
			var e node.Event
			if err := json.Unmarshal([]byte(data), &e); err != nil {
				return fmt.Errorf("bad event from daemon: %w", err)
			}
			if err := fn(e); err != nil {
				return err
			}
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// The stream ended without an error event: the daemon died, or the
	// connection broke.
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: the event stream broke: %w", ErrUnreachable, err)
	}
	return fmt.Errorf("%w: the event stream ended", ErrUnreachable)
}

// Status fetches the node's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var out Status
	return out, c.do(ctx, "GET", "/v1/status", nil, &out)
}

// Metrics fetches the Prometheus metrics text.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+"/metrics", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", decodeError(resp)
	}
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// Backup streams a backup of the daemon's home (see node.Node.Backup) to w.
func (c *Client) Backup(ctx context.Context, w io.Writer) error {
	resp, err := c.stream(ctx, "/v1/backup")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("receiving the backup: %w", err)
	}
	return nil
}

// stream GETs path and returns the response to read as it comes, or the
// daemon's error if it did not answer 200.
func (c *Client) stream(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return resp, nil
}
