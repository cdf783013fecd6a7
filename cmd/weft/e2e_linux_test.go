package main

import "syscall"

// dieWithTest makes a child die with the test binary even when t.Cleanup
// cannot run (go test -timeout panics, the binary is killed).
func dieWithTest() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
