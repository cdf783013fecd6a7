package node

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/protocol"
)

// A home writes as its own device of each local user: a device key of its
// own, certified by the user key, that signs the home's events with its own
// sequence numbers (docs/design.md §7). Two homes of one user (a laptop and
// a desktop, a restored backup beside the original) are two writers, so
// they never write the same sequence number twice.
//
// The device keys live in HOME/devices.json, each sealed with a key derived
// from its user's secret key (so the file is as safe as the keystore), and
// never leave the home: backups leave the file out, and a home without it
// (a new one, a restored one, one from before devices) makes new devices
// when it opens. Copying a home by hand copies its devices: use weft
// backup and restore instead.
const devicesFile = "devices.json"

type deviceFile struct {
	Version int            `json:"version"`
	Devices []deviceRecord `json:"devices"`
}

type deviceRecord struct {
	User   crypto.UserID `json:"user"`
	Sealed []byte        `json:"sealedKey"` // the device seed, sealed (see deviceSealKey)
	Cert   []byte        `json:"cert"`
}

// deviceSealKey is the key a device seed is sealed with: only the holder of
// the user key opens it.
func deviceSealKey(id *crypto.Identity) crypto.ThreadKey {
	return crypto.ThreadKey(sha256.Sum256(append([]byte("weft-device-seal-v1\x00"), id.Seed()...)))
}

func (n *Node) devicesPath() string { return filepath.Join(n.cfg.Home, devicesFile) }

// loadDevices reads this home's devices and makes one for every local
// user that has none. Called with idMu held or before the node runs.
func (n *Node) loadDevices() error {
	var f deviceFile
	b, err := os.ReadFile(n.devicesPath())
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("reading devices: %w", err)
	default:
		if err := json.Unmarshal(b, &f); err != nil {
			return fmt.Errorf("reading %s: %w", n.devicesPath(), err)
		}
	}
	n.devices = map[crypto.UserID]*protocol.Device{}
	for _, r := range f.Devices {
		id, ok := n.identities[r.User]
		if !ok {
			continue // the identity is gone from the keystore
		}
		d, err := openDevice(id, r)
		if err != nil {
			n.log.Warn("a device key of this home does not open; making a new device", "user", r.User, "err", err)
			continue
		}
		n.devices[r.User] = d
	}
	changed := false
	for u, id := range n.identities {
		if n.devices[u] != nil {
			continue
		}
		d, err := newDevice(id, n.cfg.Now())
		if err != nil {
			return err
		}
		n.devices[u] = d
		changed = true
		n.log.Info("this home writes as a new device of its user", "user", u, "device", d.Key.DeviceID())
	}
	if changed || len(f.Devices) != len(n.devices) {
		return n.saveDevices()
	}
	return nil
}

func openDevice(id *crypto.Identity, r deviceRecord) (*protocol.Device, error) {
	seed, err := crypto.Open(deviceSealKey(id), r.Sealed, []byte("weft-device-v1"))
	if err != nil {
		return nil, err
	}
	key, err := crypto.NewDeviceIdentityFromSeed(seed)
	if err != nil {
		return nil, err
	}
	cert, err := crypto.ParseDeviceCert(r.Cert)
	if err != nil {
		return nil, err
	}
	if err := cert.Verify(id.UserID()); err != nil {
		return nil, err
	}
	if cert.Device() != key.DeviceID() {
		return nil, fmt.Errorf("the certificate is for another device")
	}
	return &protocol.Device{Key: key, Cert: cert}, nil
}

func newDevice(id *crypto.Identity, now time.Time) (*protocol.Device, error) {
	key, err := crypto.GenerateDeviceIdentity()
	if err != nil {
		return nil, err
	}
	name, _ := os.Hostname()
	if name == "" || len(name) > 64 {
		name = "weft"
	}
	cert, err := id.CertifyDevice(key.DeviceID(), name, now, 1)
	if err != nil {
		// A host name a certificate cannot carry: use a plain one.
		if cert, err = id.CertifyDevice(key.DeviceID(), "weft", now, 1); err != nil {
			return nil, err
		}
	}
	return &protocol.Device{Key: key, Cert: cert}, nil
}

func (n *Node) saveDevices() error {
	f := deviceFile{Version: 1}
	for u, d := range n.devices {
		id := n.identities[u]
		sealed, err := crypto.Seal(deviceSealKey(id), d.Key.Seed(), []byte("weft-device-v1"))
		if err != nil {
			return err
		}
		f.Devices = append(f.Devices, deviceRecord{User: u, Sealed: sealed, Cert: d.Cert.Bytes()})
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(n.devicesPath(), b); err != nil {
		return fmt.Errorf("saving devices: %w", err)
	}
	return nil
}

// writer returns what local user u writes with on this home: its device.
func (n *Node) writer(u crypto.UserID) (protocol.Signer, error) {
	n.idMu.RLock()
	defer n.idMu.RUnlock()
	d, ok := n.devices[u]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownIdentity, u)
	}
	return d, nil
}

// DeviceID returns the device local user u writes as on this home.
func (n *Node) DeviceID(u crypto.UserID) (crypto.DeviceID, error) {
	w, err := n.writer(u)
	if err != nil {
		return crypto.DeviceID{}, err
	}
	return w.(*protocol.Device).Key.DeviceID(), nil
}

// DeviceInfo is a device of a user, as a thread's own records show it.
type DeviceInfo struct {
	User     crypto.UserID   `json:"user"`
	Device   crypto.DeviceID `json:"device"`
	Name     string          `json:"name"`
	Created  int64           `json:"created"` // Unix milliseconds, from its certificate
	Events   uint64          `json:"events"`  // its highest sequence number in the thread
	ThisNode bool            `json:"thisNode,omitempty"`
}

// Devices lists the devices that have written in thread t, by user, from
// the thread's own records (each device's certificate came with its first
// event there): what any member can know of another member's devices with
// no server. Users writing with their own key are not listed.
func (u *User) Devices(ctx context.Context, t protocol.ThreadID) ([]DeviceInfo, error) {
	if _, err := u.n.identity(u.id); err != nil {
		return nil, err
	}
	var out []DeviceInfo
	err := u.n.do(ctx, false, func(w *work) error {
		ts, err := u.readable(t)
		if err != nil {
			return err
		}
		for writer, user := range ts.Authors {
			id, err := u.n.store.SeqID(t, writer, 1)
			if err != nil || id.IsZero() {
				continue
			}
			ev, err := u.n.store.Event(t, id)
			if err != nil {
				continue
			}
			cert, err := ev.DeviceCert()
			if err != nil || cert == nil {
				continue
			}
			info := DeviceInfo{User: user, Device: cert.Device(), Name: cert.Name(), Created: cert.Created().UnixMilli(), Events: ts.Tips[writer].Seq}
			u.n.idMu.RLock()
			if d, ok := u.n.devices[user]; ok && d.Key.DeviceID() == cert.Device() {
				info.ThisNode = true
			}
			u.n.idMu.RUnlock()
			out = append(out, info)
		}
		return nil
	})
	slices.SortFunc(out, func(a, b DeviceInfo) int {
		if c := bytes.Compare(a.User[:], b.User[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.Created, b.Created)
	})
	return out, err
}
