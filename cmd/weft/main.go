// Command weft runs a weft node and talks to it.
//
//	weft init      create a node home (keys, identity, config)
//	weft daemon    run the node and its local API
//	weft id | peers | connect | thread ... | send | messages | message ... | watch
//
// Every command takes --home (default $WEFT_HOME, else the user's config
// directory) and --json. The commands other than init and daemon talk to
// the home's running daemon through its local API (package api). This file
// and its siblings only parse flags and print; the work is in node and api.
package main

import (
	"errors"
	"flag"

	"github.com/weftnet/weft/internal/bench"

	"fmt"
	"github.com/weftnet/weft/api"
	"io"
	"os"
	"strings"
)

type command struct {
	name, args, help string
	run              func(e *env, args []string) error
}

// env is what a command runs with.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

func commands() []command {
	return []command{
		{"init", "[--passphrase-file F | --no-passphrase]", "create a node home: node key, user identity, config file", cmdInit},
		{"daemon", "[--listen MA]... [--api HOST:PORT] [--peer MA]... [--serve UID]... [--no-mdns]", "run the node (initialising the home if new)", cmdDaemon},
		{"id", "", "show the user ID, peer ID and addresses", cmdID},
		{"peers", "", "list connected peers", cmdPeers},
		{"status", "", "show the node's health: peers, threads, events, sync", cmdStatus},
		{"backup", "FILE", "write a backup of the running node's home (keys included) to FILE", cmdBackup},
		{"restore", "FILE", "create the home (--home) from a backup FILE", cmdRestore},
		{"connect", "MULTIADDR|USERID", "connect to a peer, or to a user's nodes found through the DHT", cmdConnect},
		{"thread", "create|list|get|update|delete ...", "manage threads", cmdThread},
		{"send", "THREAD [--data S | data on stdin] [--public-meta S] [--private-meta S] [--empty]", "send a message (an empty one only with --empty)", cmdSend},
		{"messages", "THREAD [--limit N] [--skip N] [--desc] [--last-id ID]", "list a thread's messages", cmdMessages},
		{"message", "get|update|delete ID ...", "read or change one message", cmdMessage},
		{"watch", "[THREAD]", "stream events as they happen", cmdWatch},
		{"bench", "[-only gossip|sync] [-n 2,5,10] [-sync 100000] [-runs K]", "measure replication against raw GossipSub in the same run", cmdBench},
	}
}

func main() {
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	os.Exit(run(e, os.Args[1:]))
}

// errUsage marks a usage error (exit status 2; usage already printed).
var errUsage = errors.New("usage")

func run(e *env, args []string) int {
	if len(args) == 0 {
		usage(e.stderr)
		return 2
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(e.stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(e, args[1:])
			switch {
			case err == nil:
				return 0
			case errors.Is(err, errHelp):
				return 0
			case err == errUsage: // flag package already said why
				return 2
			case errors.Is(err, errUsage):
				fmt.Fprintln(e.stderr, "weft: "+oneLine(strings.TrimPrefix(err.Error(), errUsage.Error()+": ")))
				return 2
			}
			fmt.Fprintln(e.stderr, "weft: "+oneLine(message(err)))
			return 1
		}
	}
	fmt.Fprintf(e.stderr, "weft: unknown command %q (see weft --help)\n", args[0])
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "weft: a peer-to-peer node for end-to-end encrypted message threads")
	fmt.Fprintln(w, "\nUsage: weft COMMAND [flags]   (every command takes --home DIR and --json)")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n            %s\n", c.name, c.args, c.help)
	}
	fmt.Fprintln(w, "\nRun 'weft COMMAND --help' for a command's flags.")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// message is what a person reads for err: an API error's message without
// its code (the code is for programs).
func message(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Message
	}
	return err.Error()
}

func cmdBench(e *env, args []string) error {
	err := bench.Main(args, e.stdout, e.stderr)
	if errors.Is(err, flag.ErrHelp) {
		return errHelp
	}
	return err
}
