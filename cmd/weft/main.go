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
	"bytes"
	"encoding/json"
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
	// usage is where flag sets print usage (nil: stderr); with --json,
	// a buffer shown only for --help, so that stderr carries one JSON
	// error.
	usage io.Writer
}

func (e *env) usageOut() io.Writer {
	if e.usage != nil {
		return e.usage
	}
	return e.stderr
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
		{"device", "list THREAD", "list the devices that wrote in a thread, by user", cmdDevice},
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
	jsonErrors := wantsJSON(args[1:])
	var usageBuf bytes.Buffer
	if jsonErrors {
		e.usage = &usageBuf
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(e, args[1:])
			var fe *flagError
			switch {
			case err == nil:
				return 0
			case errors.Is(err, errHelp):
				_, _ = usageBuf.WriteTo(e.stderr)
				return 0
			case errors.As(err, &fe) && !jsonErrors: // the flag package already said why
				return 2
			}
			code, status := errorCode(err), 1
			msg := message(err)
			if errors.Is(err, errUsage) {
				status = 2
				msg = strings.TrimPrefix(msg, errUsage.Error()+": ")
			}
			printError(e, jsonErrors, code, msg)
			return status
		}
	}
	printError(e, jsonErrors, "usage", fmt.Sprintf("unknown command %q (see weft --help)", args[0]))
	return 2
}

// wantsJSON reports whether a command's arguments ask for --json (before
// a "--" that ends the flags).
func wantsJSON(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "--json", "-json", "--json=true", "-json=true":
			return true
		}
	}
	return false
}

// printError writes the one line of a failed command on stderr: text for
// people, or with --json {"error":{"code","message"}} as the API's.
func printError(e *env, asJSON bool, code, msg string) {
	if asJSON {
		b, _ := json.Marshal(map[string]*api.Error{"error": {Code: code, Message: oneLine(msg)}})
		fmt.Fprintln(e.stderr, string(b))
		return
	}
	fmt.Fprintln(e.stderr, "weft: "+oneLine(msg))
}

// Error codes of the CLI's own errors, besides the API's (api.Code...).
const (
	codeUsage         = "usage"          // exit status 2: the command line is wrong
	codeNoDaemon      = "no_daemon"      // no daemon runs for the home
	codeDaemonStopped = "daemon_stopped" // the daemon stopped during watch
	codeFailed        = "failed"         // anything else
)

// errorCode is the stable code of a command's error.
func errorCode(err error) string {
	var ae *api.Error
	switch {
	case errors.Is(err, errUsage):
		return codeUsage
	case errors.Is(err, errNoDaemon):
		return codeNoDaemon
	case errors.Is(err, errDaemonStopped):
		return codeDaemonStopped
	case errors.As(err, &ae):
		return ae.Code
	}
	return codeFailed
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
