package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

var errHelp = errors.New("help shown")

// flagError is a flag the flag package refused (and, without --json,
// already explained on stderr); it is a usage error.
type flagError struct{ err error }

func (f *flagError) Error() string        { return errUsage.Error() + ": " + f.err.Error() }
func (f *flagError) Is(target error) bool { return target == errUsage }

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// common are the flags every command has.
type common struct {
	home string
	json bool
}

// newFlags makes a command's flag set with --home and --json.
func newFlags(e *env, name, args string) (*flag.FlagSet, *common) {
	fs := flag.NewFlagSet("weft "+name, flag.ContinueOnError)
	fs.SetOutput(e.usageOut())
	c := &common{}
	fs.StringVar(&c.home, "home", "", "node home `directory` (default $WEFT_HOME, else the user config directory)")
	fs.BoolVar(&c.json, "json", false, "print JSON for scripts")
	fs.Usage = func() {
		fmt.Fprintf(e.usageOut(), "Usage: weft %s %s\n\nFlags:\n", name, args)
		fs.PrintDefaults()
	}
	return fs, c
}

// parse parses flags; flags may come before or after positional args.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, &flagError{err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func (c *common) resolveHome(e *env) (string, error) {
	h := c.home
	if h == "" {
		h = e.getenv("WEFT_HOME")
	}
	if h == "" {
		d, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("no home: pass --home or set WEFT_HOME (%v)", err)
		}
		h = filepath.Join(d, "weft")
	}
	return filepath.Abs(h)
}

func wantArgs(fs *flag.FlagSet, pos []string, n int, what string) error {
	if len(pos) != n {
		fs.Usage()
		if n == 0 {
			return fmt.Errorf("%w: unexpected argument %q", errUsage, pos[0])
		}
		return fmt.Errorf("%w: want %s", errUsage, what)
	}
	return nil
}

type flagT = flag.Flag
type flagSet = flag.FlagSet

// parseN parses flags and checks that exactly n arguments remain.
func parseN(fs *flag.FlagSet, args []string, n int, what string) ([]string, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return nil, err
	}
	return pos, wantArgs(fs, pos, n, what)
}
