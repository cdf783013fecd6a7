package main

import (
	"fmt"
	"time"
)

// cmdDevice: the devices of users, as a thread's own records show them.
func cmdDevice(e *env, args []string) error {
	if len(args) == 0 || args[0] != "list" {
		return fmt.Errorf("%w: want weft device list THREAD (pairing and revocation are not built yet)", errUsage)
	}
	fs, c := newFlags(e, "device list", "THREAD")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	t, err := threadArg(fs, pos)
	if err != nil {
		return err
	}
	cl, cx, cancel, err := dial(e, c)
	if err != nil {
		return err
	}
	defer cancel()
	ds, err := cl.ThreadDevices(cx, t)
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(e, ds)
	}
	if len(ds) == 0 {
		fmt.Fprintln(e.stdout, "no device has written in this thread (users wrote with their own keys)")
	}
	for _, d := range ds {
		here := ""
		if d.ThisNode {
			here = "  (this node)"
		}
		fmt.Fprintf(e.stdout, "%s  %s  %-16q  since %s  %d events%s\n", d.User, d.Device, d.Name,
			time.UnixMilli(d.Created).UTC().Format(time.DateOnly), d.Events, here)
	}
	return nil
}
