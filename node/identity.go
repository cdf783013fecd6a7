package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/weftnet/weft/crypto"
)

func (n *Node) keystorePath() string { return filepath.Join(n.cfg.Home, keystoreFile) }

func (n *Node) loadKeystore() error {
	ks, err := crypto.ReadKeystore(n.keystorePath(), n.cfg.Passphrase)
	switch {
	case errors.Is(err, os.ErrNotExist):
		ks = &crypto.Keystore{}
	case err != nil:
		return fmt.Errorf("opening keystore: %w", err)
	}
	n.keystore = ks
	for _, e := range ks.Entries {
		n.identities[e.Identity.UserID()] = e.Identity
	}
	return nil
}

func (n *Node) saveKeystore(ks *crypto.Keystore) error {
	if n.cfg.Unencrypted {
		return crypto.WriteKeystoreUnencrypted(n.keystorePath(), ks)
	}
	params := crypto.DefaultKDFParams()
	if n.cfg.KDF != nil {
		params = *n.cfg.KDF
	}
	return crypto.WriteKeystore(n.keystorePath(), ks, n.cfg.Passphrase, params)
}

// CreateIdentity makes a new user identity, saves it in the keystore and
// returns its user ID.
func (n *Node) CreateIdentity(ctx context.Context, name string) (crypto.UserID, error) {
	id, err := crypto.GenerateIdentity()
	if err != nil {
		return crypto.UserID{}, err
	}
	return n.addIdentity(ctx, name, id)
}

// ImportIdentity adds an existing identity from its secret-key text form
// (WEFT-SECRET-KEY-1...).
func (n *Node) ImportIdentity(ctx context.Context, name, secret string) (crypto.UserID, error) {
	id, err := crypto.ParseIdentity(secret)
	if err != nil {
		return crypto.UserID{}, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	return n.addIdentity(ctx, name, id)
}

func (n *Node) addIdentity(ctx context.Context, name string, id *crypto.Identity) (crypto.UserID, error) {
	u := id.UserID()
	n.idMu.Lock()
	if _, ok := n.identities[u]; ok {
		n.idMu.Unlock()
		return u, nil
	}
	ks := &crypto.Keystore{Entries: slices.Clone(n.keystore.Entries)}
	ks.Entries = append(ks.Entries, crypto.KeyEntry{Name: name, Identity: id, Created: n.cfg.Now().UTC().Truncate(time.Second)})
	if err := n.saveKeystore(ks); err != nil {
		n.idMu.Unlock()
		return crypto.UserID{}, fmt.Errorf("saving keystore: %w", err)
	}
	n.keystore = ks
	n.identities[u] = id
	d, err := newDevice(id, n.cfg.Now())
	if err == nil {
		n.devices[u] = d
		err = n.saveDevices()
	}
	n.idMu.Unlock()
	if err != nil {
		return crypto.UserID{}, fmt.Errorf("making this home's device of %s: %w", u, err)
	}
	// Give the new identity the keys already wrapped to it.
	err = n.do(ctx, false, func(w *work) error {
		for _, ts := range n.threads {
			n.unwrapAll(id, ts)
		}
		return nil
	})
	if n.net != nil {
		n.net.requestRefresh()
	}
	return u, err
}

// Identities lists the local identities in the order they were added.
func (n *Node) Identities() []IdentityInfo {
	n.idMu.RLock()
	defer n.idMu.RUnlock()
	out := make([]IdentityInfo, 0, len(n.keystore.Entries))
	for _, e := range n.keystore.Entries {
		out = append(out, IdentityInfo{Name: e.Name, UserID: e.Identity.UserID(), Created: e.Created.UnixMilli()})
	}
	return out
}

func (n *Node) identity(u crypto.UserID) (*crypto.Identity, error) {
	n.idMu.RLock()
	defer n.idMu.RUnlock()
	id, ok := n.identities[u]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownIdentity, u)
	}
	return id, nil
}

// As returns the API of local user u. Its calls fail with
// ErrUnknownIdentity if u is not a local identity.
func (n *Node) As(u crypto.UserID) *User { return &User{n: n, id: u} }

// User is the thread and message API as one local user.
type User struct {
	n  *Node
	id crypto.UserID
}

// ID returns the user's ID.
func (u *User) ID() crypto.UserID { return u.id }
