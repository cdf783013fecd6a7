package api

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// EndpointFile is where a running daemon records its API address and
// token, in its home, so the weft command finds it.
const EndpointFile = "api.json"

// ErrNoDaemon means a home has no running daemon.
var ErrNoDaemon = errors.New("no daemon running")

// Endpoint is the content of the endpoint file.
type Endpoint struct {
	Addr  string `json:"addr"`
	Token string `json:"token"`
	PID   int    `json:"pid"`
}

// NewToken returns a fresh random API token.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// WriteEndpoint records the daemon's endpoint in home (mode 0600).
func WriteEndpoint(home string, ep Endpoint) error {
	b, err := json.MarshalIndent(ep, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(home, EndpointFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// RemoveEndpoint deletes the endpoint file when the daemon stops.
func RemoveEndpoint(home string) { os.Remove(filepath.Join(home, EndpointFile)) }

// ReadEndpoint reads a home's endpoint file; ErrNoDaemon if there is none.
func ReadEndpoint(home string) (Endpoint, error) {
	var ep Endpoint
	b, err := os.ReadFile(filepath.Join(home, EndpointFile))
	if errors.Is(err, os.ErrNotExist) {
		return ep, fmt.Errorf("%w for home %s", ErrNoDaemon, home)
	}
	if err != nil {
		return ep, err
	}
	if err := json.Unmarshal(b, &ep); err != nil || ep.Addr == "" {
		return ep, fmt.Errorf("%w for home %s (unreadable %s)", ErrNoDaemon, home, EndpointFile)
	}
	return ep, nil
}
