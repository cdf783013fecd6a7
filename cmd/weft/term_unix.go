//go:build linux || darwin || freebsd || netbsd || openbsd

package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), ioctlGetTermios)
	return err == nil
}

// prompt reads a line from the terminal with echo off.
func prompt(e *env, f *os.File, label string) (string, error) {
	fmt.Fprint(e.stderr, label)
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
	if err == nil {
		quiet := *old
		quiet.Lflag &^= unix.ECHO
		_ = unix.IoctlSetTermios(fd, ioctlSetTermios, &quiet)
		defer func() { _ = unix.IoctlSetTermios(fd, ioctlSetTermios, old); fmt.Fprintln(e.stderr) }()
	}
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("reading passphrase: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
