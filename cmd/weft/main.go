// Command weft runs a weft node: a peer-to-peer replica of end-to-end
// encrypted message threads. This first version opens (or creates) a node
// home, checks that its store and keystore work, and reports what it holds.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/weftnet/weft/node"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "weft:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("weft", flag.ContinueOnError)
	fs.SetOutput(stderr)
	home := fs.String("home", defaultHome(), "node home `directory` (env WEFT_HOME)")
	noPass := fs.Bool("no-passphrase", false, "keep user keys unencrypted (headless nodes)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: weft [--home DIR] [--no-passphrase]\n\n"+
			"Opens the node in DIR (creating it and a first identity if new), checks\n"+
			"its store and keystore, and prints what it holds. The keystore passphrase\n"+
			"comes from WEFT_PASSPHRASE unless --no-passphrase is given.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	cfg := node.Config{Home: *home, Unencrypted: *noPass, Passphrase: []byte(os.Getenv("WEFT_PASSPHRASE"))}
	if !*noPass && len(cfg.Passphrase) == 0 {
		return errors.New("set WEFT_PASSPHRASE to the keystore passphrase, or pass --no-passphrase for a headless node")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := node.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	ids := n.Identities()
	if len(ids) == 0 {
		if _, err := n.CreateIdentity(ctx, "default"); err != nil {
			return err
		}
		ids = n.Identities()
	}
	fmt.Fprintf(stdout, "weft node at %s: store and keystore OK\n", *home)
	for _, id := range ids {
		threads, err := n.As(id.UserID).ListThreads(ctx, node.Page{})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  user %s (%s): %d threads\n", id.UserID, id.Name, threads.TotalAvailable)
	}
	return nil
}

func defaultHome() string {
	if h := os.Getenv("WEFT_HOME"); h != "" {
		return h
	}
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "weft")
	}
	return ".weft"
}
