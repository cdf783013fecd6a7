package main

import (
	"context"
	"errors"
	"fmt"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/internal/config"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/protocol"
	"github.com/weftnet/weft/storage"
)

// secrets says where the keystore passphrase comes from.
type secrets struct {
	file   string
	noPass bool
}

func (s *secrets) flags(fs interface {
	StringVar(*string, string, string, string)
	BoolVar(*bool, string, bool, string)
}) {
	fs.StringVar(&s.file, "passphrase-file", "", "read the keystore passphrase from this `file` (else $WEFT_PASSPHRASE, else a prompt)")
	fs.BoolVar(&s.noPass, "no-passphrase", false, "keep user keys unencrypted (headless nodes; the file is still mode 0600)")
}

// check refuses conflicting flags: a passphrase file and no passphrase.
func (s *secrets) check() error {
	if s.noPass && s.file != "" {
		return fmt.Errorf("%w: --no-passphrase and --passphrase-file conflict: give one", errUsage)
	}
	return nil
}

// passphrase returns the passphrase; confirm asks twice at a prompt.
func (s *secrets) passphrase(e *env, confirm bool) ([]byte, error) {
	if s.file != "" {
		b, err := os.ReadFile(s.file)
		if err != nil {
			return nil, fmt.Errorf("reading passphrase file: %w", err)
		}
		p := strings.TrimRight(string(b), "\r\n")
		if p == "" {
			return nil, fmt.Errorf("passphrase file %s is empty", s.file)
		}
		return []byte(p), nil
	}
	if p := e.getenv("WEFT_PASSPHRASE"); p != "" {
		return []byte(p), nil
	}
	f, ok := e.stdin.(*os.File)
	if !ok || !isTerminal(f) {
		return nil, errors.New("a keystore passphrase is needed: use --passphrase-file, set WEFT_PASSPHRASE, run in a terminal, or pass --no-passphrase for a headless node")
	}
	p, err := prompt(e, f, "Keystore passphrase: ")
	if err != nil {
		return nil, err
	}
	if confirm {
		again, err := prompt(e, f, "Again: ")
		if err != nil {
			return nil, err
		}
		if again != p {
			return nil, errors.New("the passphrases do not match")
		}
	}
	if p == "" {
		return nil, errors.New("empty passphrase")
	}
	return []byte(p), nil
}

func cmdInit(e *env, args []string) error {
	fs, c := newFlags(e, "init", "[--passphrase-file F | --no-passphrase]")
	var sec secrets
	sec.flags(fs)
	name := fs.String("name", "default", "local `name` of the first identity")
	if _, err := parseN(fs, args, 0, ""); err != nil {
		return err
	}
	if err := sec.check(); err != nil {
		return err
	}
	home, err := c.resolveHome(e)
	if err != nil {
		return err
	}
	if initialized(home) {
		return fmt.Errorf("home %s is already initialised", home)
	}
	uid, err := initHome(e, home, &sec, *name)
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(e, map[string]any{"home": home, "userId": uid})
	}
	fmt.Fprintf(e.stdout, "initialised %s\nuser %s\n", home, uid)
	return nil
}

func initialized(home string) bool {
	_, err := os.Stat(filepath.Join(home, config.FileName))
	return err == nil
}

// initHome creates the home: config file, keystore with one identity, and
// (through node.New) the store; the node key is made when the network
// first starts.
func initHome(e *env, home string, sec *secrets, name string) (crypto.UserID, error) {
	cfg := node.Config{Home: home, Unencrypted: sec.noPass}
	if !sec.noPass {
		p, err := sec.passphrase(e, true)
		if err != nil {
			return crypto.UserID{}, err
		}
		cfg.Passphrase = p
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return crypto.UserID{}, err
	}
	ctx := context.Background()
	n, err := node.New(ctx, cfg)
	if err != nil {
		return crypto.UserID{}, openError(home, err)
	}
	defer n.Close()
	uid, err := n.CreateIdentity(ctx, name)
	if err != nil {
		return crypto.UserID{}, err
	}
	if err := os.WriteFile(filepath.Join(home, config.FileName), []byte(config.Template), 0o600); err != nil {
		return crypto.UserID{}, err
	}
	return uid, nil
}

// openError turns node.New's errors into what a person needs to read.
func openError(home string, err error) error {
	switch {
	case errors.Is(err, storage.ErrLocked):
		return fmt.Errorf("home %s is in use by another weft daemon (the store is locked)", home)
	case errors.Is(err, crypto.ErrWrongPassphrase):
		return fmt.Errorf("wrong keystore passphrase for home %s", home)
	}
	return err
}

func cmdDaemon(e *env, args []string) error {
	fs, c := newFlags(e, "daemon", "[flags]")
	var sec secrets
	sec.flags(fs)
	var listen, peers, serve, bootstrap multi
	fs.Var(&listen, "listen", "libp2p listen `multiaddr` (repeatable; overrides the config file)")
	fs.Var(&peers, "peer", "peer `multiaddr` to dial at start and keep (repeatable)")
	fs.Var(&serve, "serve", "serve this `user ID` as a bridge (repeatable)")
	apiAddr := fs.String("api", "", "local API `host:port` (port 0 picks a free one; default from config, 127.0.0.1:0)")
	noMDNS := fs.Bool("no-mdns", false, "turn off LAN discovery")
	fs.Var(&bootstrap, "bootstrap", "bootstrap node `multiaddr`: seeds the DHT and relays when this node is behind NAT (repeatable)")
	noDHT := fs.Bool("no-dht", false, "turn off the DHT (no user records published or looked up)")
	reachability := fs.String("reachability", "", "auto, public or private (default from config, auto: AutoNAT finds out)")
	relayService := fs.String("relay-service", "", "relay for NATed nodes: auto (while public), on or off")
	noPortMap := fs.Bool("no-port-map", false, "do not ask the router for a port mapping (UPnP / NAT-PMP)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error")
	logFormat := fs.String("log-format", "", "text or json")
	if _, err := parseN(fs, args, 0, ""); err != nil {
		return err
	}
	if err := sec.check(); err != nil {
		return err
	}
	home, err := c.resolveHome(e)
	if err != nil {
		return err
	}
	if !initialized(home) {
		uid, err := initHome(e, home, &sec, "default")
		if err != nil {
			return fmt.Errorf("initialising %s: %w", home, err)
		}
		fmt.Fprintf(e.stderr, "initialised %s (user %s)\n", home, uid)
	}
	cfg, err := config.Load(filepath.Join(home, config.FileName))
	if err != nil {
		return err
	}
	if len(listen) > 0 {
		cfg.Listen = listen
	}
	cfg.Peers = append(cfg.Peers, peers...)
	cfg.Serve = append(cfg.Serve, serve...)
	if *apiAddr != "" {
		cfg.API = *apiAddr
	}
	if *noMDNS {
		cfg.MDNS = false
	}
	cfg.Bootstrap = append(cfg.Bootstrap, bootstrap...)
	if *noDHT {
		cfg.DHT = false
	}
	if *reachability != "" {
		cfg.Reachability = *reachability
	}
	if *relayService != "" {
		cfg.RelayService = *relayService
	}
	if *noPortMap {
		cfg.PortMapping = false
	}
	if *logLevel != "" {
		cfg.LogLevel = *logLevel
	}
	if *logFormat != "" {
		cfg.LogFormat = *logFormat
	}
	log, err := newLogger(e, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	// Some dependencies (mDNS's zeroconf) print through the standard
	// logger; their lines become debug records of ours.
	stdlog.SetFlags(0)
	stdlog.SetOutput(slog.NewLogLogger(log.Handler(), slog.LevelDebug).Writer())
	var served []crypto.UserID
	for _, s := range cfg.Serve {
		u, err := crypto.ParseUserID(s)
		if err != nil {
			return fmt.Errorf("--serve: %w", err)
		}
		served = append(served, u)
	}
	ncfg := node.Config{
		Home: home, Logger: log,
		Limits: protocol.Limits{MaxData: cfg.MaxData, MaxMeta: cfg.MaxMeta},
		Network: &node.NetworkConfig{
			Listen: cfg.Listen, Peers: cfg.Peers, Serve: served, NoMDNS: !cfg.MDNS, SyncInterval: cfg.SyncInterval,
			Bootstrap: cfg.Bootstrap, NoDHT: !cfg.DHT, Reachability: cfg.Reachability, RelayService: cfg.RelayService,
			NoPortMap: !cfg.PortMapping,
		},
	}
	encrypted, err := crypto.KeystoreIsEncrypted(filepath.Join(home, "keystore.json"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if encrypted {
		if ncfg.Passphrase, err = sec.passphrase(e, false); err != nil {
			return err
		}
	} else {
		ncfg.Unencrypted = true
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := node.New(ctx, ncfg)
	if err != nil {
		return openError(home, err)
	}
	defer n.Close()

	ln, err := net.Listen("tcp", cfg.API)
	if err != nil {
		return fmt.Errorf("API address %s: %w", cfg.API, err)
	}
	token, err := api.NewToken()
	if err != nil {
		return err
	}
	// Long-lived requests (event streams) end when the server shuts down,
	// instead of holding the shutdown for its whole timeout.
	// The API server first ends them with an "unavailable" error event, so
	// that a client (weft watch) knows the daemon stopped.
	apiCtx, endRequests := context.WithCancel(context.Background())
	handler := api.NewServer(n, token, log)
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return apiCtx },
	}
	srv.RegisterOnShutdown(func() { handler.Close(); endRequests() })
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("API server", "err", err)
		}
	}()
	endpoint := api.Endpoint{Addr: ln.Addr().String(), Token: token, PID: os.Getpid()}
	if err := api.WriteEndpoint(home, endpoint); err != nil {
		return err
	}
	defer api.RemoveEndpoint(home)
	// api.json is how every other command finds this daemon: if it is
	// deleted while the daemon runs, write it again, so the daemon can
	// still be reached and stopped.
	keepCtx, stopKeeping := context.WithCancel(ctx)
	kept := make(chan struct{})
	go func() { defer close(kept); keepEndpoint(keepCtx, home, endpoint, log) }()
	defer func() { stopKeeping(); <-kept }() // before api.json is removed

	pid, _ := n.PeerID()
	info := map[string]any{"home": home, "peerId": pid.String(), "addrs": n.Addrs(), "api": ln.Addr().String()}
	if ids := n.Identities(); len(ids) > 0 {
		info["userId"] = ids[0].UserID
	}
	if c.json {
		if err := printJSON(e, info); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "weft daemon running\n  home  %s\n", home)
		if u, ok := info["userId"]; ok {
			fmt.Fprintf(e.stdout, "  user  %s\n", u)
		}
		fmt.Fprintf(e.stdout, "  peer  %s\n  api   %s\n", pid, ln.Addr())
		for _, a := range n.Addrs() {
			fmt.Fprintf(e.stdout, "  addr  %s\n", a)
		}
	}
	<-ctx.Done()
	log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	return n.Close()
}

func newLogger(e *env, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(e.stderr, opts)), nil
	case "text", "":
		return slog.New(slog.NewTextHandler(e.stderr, opts)), nil
	}
	return nil, fmt.Errorf("log format must be text or json, not %q", format)
}

// endpointCheck is how often the daemon checks that its api.json exists.
const endpointCheck = time.Second

func keepEndpoint(ctx context.Context, home string, ep api.Endpoint, log *slog.Logger) {
	t := time.NewTicker(endpointCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := api.ReadEndpoint(home); errors.Is(err, api.ErrNoDaemon) && ctx.Err() == nil {
			if err := api.WriteEndpoint(home, ep); err != nil {
				log.Warn("writing api.json again", "err", err)
				continue
			}
			log.Warn("api.json was removed while the daemon runs; wrote it again", "home", home)
		}
	}
}
