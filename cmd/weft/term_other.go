//go:build !(linux || darwin || freebsd || netbsd || openbsd || windows)

package main

import (
	"errors"
	"os"
)

// On other systems the passphrase comes from --passphrase-file or
// WEFT_PASSPHRASE; there is no echo-free prompt.
func isTerminal(*os.File) bool { return false }

func prompt(*env, *os.File, string) (string, error) {
	return "", errors.New("no passphrase prompt on this system: use --passphrase-file or WEFT_PASSPHRASE")
}
