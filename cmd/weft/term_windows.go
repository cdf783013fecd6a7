//go:build windows

package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/windows"
)

func isTerminal(f *os.File) bool {
	var mode uint32
	return windows.GetConsoleMode(windows.Handle(f.Fd()), &mode) == nil
}

// prompt reads a line from the console with echo off.
func prompt(e *env, f *os.File, label string) (string, error) {
	fmt.Fprint(e.stderr, label)
	h := windows.Handle(f.Fd())
	var old uint32
	if err := windows.GetConsoleMode(h, &old); err == nil {
		_ = windows.SetConsoleMode(h, old&^windows.ENABLE_ECHO_INPUT)
		defer func() { _ = windows.SetConsoleMode(h, old); fmt.Fprintln(e.stderr) }()
	}
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("reading passphrase: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
