package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/protocol"
)

func printJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// errNoDaemon: no daemon runs for the home; errDaemonStopped: it stopped
// while a command (watch) was using it.
var (
	errNoDaemon      = errors.New("no daemon running")
	errDaemonStopped = errors.New("the daemon stopped")
)

// connectDaemon finds the home's daemon and checks that it answers.
func connectDaemon(e *env, c *common) (*api.Client, error) {
	home, err := c.resolveHome(e)
	if err != nil {
		return nil, err
	}
	noDaemon := fmt.Errorf("%w for home %s; start it with weft daemon", errNoDaemon, home)
	cl, err := api.NewClientForHome(home)
	if errors.Is(err, api.ErrNoDaemon) {
		return nil, noDaemon
	}
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cl.ID(ctx); errors.Is(err, api.ErrUnreachable) {
		return nil, noDaemon
	} else if err != nil {
		return nil, err
	}
	return cl, nil
}

// dial finds the home's daemon and gives a context for one call to it.
func dial(e *env, c *common) (*api.Client, context.Context, context.CancelFunc, error) {
	cl, err := connectDaemon(e, c)
	if err != nil {
		return nil, nil, nil, err
	}
	cx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	return cl, cx, cancel, nil
}

func cmdID(e *env, args []string) error {
	fs, c := newFlags(e, "id", "")
	if _, err := parseN(fs, args, 0, ""); err != nil {
		return err
	}
	cl, cx, cancel, err := dial(e, c)
	if err != nil {
		return err
	}
	defer cancel()
	id, err := cl.ID(cx)
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(e, map[string]any{"userId": id.UserID, "peerId": id.PeerID, "addrs": id.Addrs})
	}
	fmt.Fprintf(e.stdout, "user  %s\npeer  %s\n", id.UserID, id.PeerID)
	for _, a := range id.Addrs {
		fmt.Fprintf(e.stdout, "addr  %s\n", a)
	}
	return nil
}

func cmdPeers(e *env, args []string) error {
	fs, c := newFlags(e, "peers", "")
	if _, err := parseN(fs, args, 0, ""); err != nil {
		return err
	}
	cl, cx, cancel, err := dial(e, c)
	if err != nil {
		return err
	}
	defer cancel()
	ps, err := cl.Peers(cx)
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(e, ps)
	}
	if len(ps) == 0 {
		fmt.Fprintln(e.stdout, "no peers connected")
	}
	for _, p := range ps {
		path := "direct"
		if p.Relayed {
			path = "relayed"
		}
		fmt.Fprintf(e.stdout, "%s  %-7s  %-8s  score %.1f  %s\n", p.PeerID, path, p.Direction, p.Score, p.Addr)
	}
	return nil
}

func cmdStatus(e *env, args []string) error {
	fs, c := newFlags(e, "status", "")
	if _, err := parseN(fs, args, 0, ""); err != nil {
		return err
	}
	cl, cx, cancel, err := dial(e, c)
	if err != nil {
		return err
	}
	defer cancel()
	st, err := cl.Status(cx)
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(e, st)
	}
	lastSync := "never"
	if st.LastSync != 0 {
		lastSync = time.Since(time.UnixMilli(st.LastSync)).Round(time.Second).String() + " ago"
	}
	rejected := uint64(0)
	for _, n := range st.EventsRejected {
		rejected += n
	}
	fmt.Fprintf(e.stdout, "peers          %d\nthreads        %d\nidentities     %d\nevents stored  %d (since start)\nrejected       %d\nheld           %d\nlast sync      %s\n",
		st.Peers, st.Threads, st.Identities, st.EventsStored, rejected, st.HeldEvents, lastSync)
	reasons := slices.Sorted(maps.Keys(st.EventsRejected))
	for _, r := range reasons {
		fmt.Fprintf(e.stdout, "  %-12s %d\n", r, st.EventsRejected[r])
	}
	g := st.Gossip
	fmt.Fprintf(e.stdout, "gossip         dropped %d, undeliverable %d, rejected %d, ignored %d, throttled %d\n", g.DroppedRPCs, g.Undeliverable, g.Rejected, g.Ignored, g.Throttled)
	nw := st.Network
	relaying := "no"
	if nw.RelayService {
		relaying = "yes"
	}
	fmt.Fprintf(e.stdout, "reachability   %s\npeers by path  %d direct, %d relayed\nrelay service  %s\ndht            %s, %d peers in routing table, %d records published (%d failed), %d of %d lookups found\n",
		nw.Reachability, nw.DirectPeers, nw.RelayedPeers, relaying, nw.DHT, nw.DHTPeers, nw.RecordsPublished, nw.RecordPublishFailures, nw.LookupsFound, nw.Lookups)
	list := func(label string, vals []string) {
		if len(vals) == 0 {
			fmt.Fprintf(e.stdout, "%-14s none\n", label)
		}
		for _, v := range vals {
			fmt.Fprintf(e.stdout, "%-14s %s\n", label, v)
			label = ""
		}
	}
	list("listen", nw.ListenAddrs)
	list("advertised", nw.Addrs)
	var observed []string
	for _, o := range nw.ObservedAddrs {
		observed = append(observed, fmt.Sprintf("%s (seen by %d)", o.Addr, o.Observers))
	}
	list("observed", observed)
	list("relays", nw.Relays)
	return nil
}

func cmdConnect(e *env, args []string) error {
	fs, c := newFlags(e, "connect", "MULTIADDR | USERID")
	pos, err := parseN(fs, args, 1, "one multiaddr ending in /p2p/PEERID, or a user ID (weft1...) to find through the DHT")
	if err != nil {
		return err
	}
	cl, cx, cancel, err := dial(e, c)
	if err != nil {
		return err
	}
	defer cancel()
	if err := cl.Connect(cx, pos[0]); err != nil {
		return err
	}
	if c.json {
		return printJSON(e, map[string]any{"connected": pos[0]})
	}
	fmt.Fprintf(e.stdout, "connected to %s\n", pos[0])
	return nil
}

func parseUsers(flag string, vals []string) ([]crypto.UserID, error) {
	var out []crypto.UserID
	for _, v := range vals {
		u, err := crypto.ParseUserID(v)
		if err != nil {
			return nil, fmt.Errorf("--%s %q: %w", flag, v, err)
		}
		out = append(out, u)
	}
	return out, nil
}

func cmdThread(e *env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: want weft thread create|list|get|update|delete", errUsage)
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "create":
		return threadCreate(e, args)
	case "list":
		return threadList(e, args)
	case "get":
		return threadGet(e, args)
	case "update":
		return threadUpdate(e, args)
	case "delete":
		return threadDelete(e, args)
	}
	return fmt.Errorf("%w: unknown thread command %q (want create, list, get, update or delete)", errUsage, sub)
}

func threadCreate(e *env, args []string) error {
	fs, c := newFlags(e, "thread create", "--member UID... [--manager UID...] [--public-meta S] [--private-meta S]")
	var members, managers multi
	fs.Var(&members, "member", "member `user ID` (repeatable)")
	fs.Var(&managers, "manager", "manager `user ID` (repeatable; you are one)")
	pub := fs.String("public-meta", "", "public metadata (readable by bridges)")
	priv := fs.String("private-meta", "", "private metadata (encrypted)")
	if _, err := parseN(fs, args, 0, ""); err != nil {
		return err
	}
	us, err := parseUsers("member", members)
	if err != nil {
		return err
	}
	ms, err := parseUsers("manager", managers)
	if err != nil {
		return err
	}
	cl, cx, cancel, err := dial(e, c)
	if err != nil {
		return err
	}
	defer cancel()
	t, err := cl.CreateThread(cx, api.CreateThreadRequest{Users: us, Managers: ms, PublicMeta: []byte(*pub), PrivateMeta: []byte(*priv)})
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(e, map[string]any{"threadId": t})
	}
	fmt.Fprintln(e.stdout, t)
	return nil
}

func pageFlags(fs interface {
	IntVar(*int, string, int, string)
	BoolVar(*bool, string, bool, string)
	StringVar(*string, string, string, string)
}) func() (node.Page, error) {
	var p node.Page
	var last string
	fs.IntVar(&p.Limit, "limit", 0, "at most `N` items (0: all)")
	fs.IntVar(&p.Skip, "skip", 0, "skip `N` items")
	fs.BoolVar(&p.Desc, "desc", false, "newest first")
	fs.StringVar(&last, "last-id", "", "start after this `ID`")
	return func() (node.Page, error) {
		if last != "" {
			id, err := protocol.ParseEventID(last)
			if err != nil {
				return p, fmt.Errorf("%w: --last-id: %w", errUsage, err)
			}
			p.LastID = id
		}
		if p.Limit < 0 || p.Skip < 0 {
			return p, fmt.Errorf("%w: --limit and --skip must not be negative", errUsage)
		}
		return p, nil
	}
}

func threadList(e *env, args []string) error {
	fs, c := newFlags(e, "thread list", "[--limit N] [--skip N] [--desc] [--last-id ID]")
	getPage := pageFlags(fs)
	if _, err := parseN(fs, args, 0, ""); err != nil {
		return err
	}
	p, err := getPage()
	if err != nil {
		return err
	}
	cl, cx, cancel, err := dial(e, c)
	if err != nil {
		return err
	}
	defer cancel()
	l, err := cl.ListThreads(cx, p)
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(e, l)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "THREAD\tCREATED\tMEMBERS\tMESSAGES\tPRIVATE META\tPUBLIC META")
	for _, t := range l.Items {
		priv := printable(t.PrivateMeta)
		if t.StatusCode != 0 {
			priv = "[" + t.Status + "]"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", t.ThreadID, when(t.CreateDate), len(t.Users), t.MessagesCount, priv, printable(t.PublicMeta))
	}
	tw.Flush()
	fmt.Fprintf(e.stdout, "%d of %d threads\n", len(l.Items), l.TotalAvailable)
	return nil
}

func when(ms int64) string { return time.UnixMilli(ms).Format("2006-01-02 15:04:05") }

// printable shows bytes as text when they are text.
func printable(b []byte) string {
	s := string(b)
	for _, r := range s {
		if r == '\uFFFD' || (r < 32 && r != '\n' && r != '\t') {
			return fmt.Sprintf("<%d bytes>", len(b))
		}
	}
	return strings.ReplaceAll(s, "\n", "\\n")
}

func threadArg(fs *flagSet, pos []string) (protocol.ThreadID, error) {
	if len(pos) != 1 {
		fs.Usage()
		return protocol.ThreadID{}, fmt.Errorf("%w: want one thread ID", errUsage)
	}
	t, err := protocol.ParseThreadID(pos[0])
	if err != nil {
		return t, fmt.Errorf("%w: thread ID %q is not 64 hex characters", errUsage, pos[0])
	}
	return t, nil
}

func threadGet(e *env, args []string) error {
	fs, c := newFlags(e, "thread get", "THREAD")
	pos, err := parse(fs, args)
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
	th, err := cl.GetThread(cx, t)
	if err != nil {
		return err
	}
	return showThread(e, c, th)
}

func showThread(e *env, c *common, th node.Thread) error {
	if c.json {
		return printJSON(e, th)
	}
	fmt.Fprintf(e.stdout, "thread        %s\ncreated       %s by %s\nversion       %d (key epoch %d)\n", th.ThreadID, when(th.CreateDate), th.Creator, th.Version, th.Epoch)
	for _, u := range th.Users {
		role := "member"
		for _, m := range th.Managers {
			if m == u {
				role = "manager"
			}
		}
		fmt.Fprintf(e.stdout, "%-13s %s\n", role, u)
	}
	fmt.Fprintf(e.stdout, "messages      %d\npublic meta   %s\nprivate meta  %s\n", th.MessagesCount, printable(th.PublicMeta), printable(th.PrivateMeta))
	if th.StatusCode != 0 {
		fmt.Fprintf(e.stdout, "status        %d (%s)\n", th.StatusCode, th.Status)
	}
	return nil
}

func threadUpdate(e *env, args []string) error {
	fs, c := newFlags(e, "thread update", "THREAD [--add-member UID]... [--remove-member UID]... [--add-manager UID]... [--remove-manager UID]... [--public-meta S] [--private-meta S] [--rotate-key]")
	var addM, remM, addG, remG multi
	fs.Var(&addM, "add-member", "add a member (repeatable)")
	fs.Var(&remM, "remove-member", "remove a member (repeatable; starts a new key epoch)")
	fs.Var(&addG, "add-manager", "add a manager (repeatable)")
	fs.Var(&remG, "remove-manager", "remove a manager (repeatable)")
	pub := fs.String("public-meta", "", "new public metadata")
	priv := fs.String("private-meta", "", "new private metadata")
	rotate := fs.Bool("rotate-key", false, "start a new key epoch")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	t, err := threadArg(fs, pos)
	if err != nil {
		return err
	}
	var req api.UpdateThreadRequest
	for _, l := range []struct {
		name string
		vals multi
		dst  *[]crypto.UserID
	}{{"add-member", addM, &req.AddUsers}, {"remove-member", remM, &req.RemoveUsers}, {"add-manager", addG, &req.AddManagers}, {"remove-manager", remG, &req.RemoveManagers}} {
		if *l.dst, err = parseUsers(l.name, l.vals); err != nil {
			return err
		}
	}
	fs.Visit(func(f *flagT) {
		switch f.Name {
		case "public-meta": // "" clears it
			req.PublicMeta = api.Set([]byte(*pub))
		case "private-meta":
			req.PrivateMeta = api.Set([]byte(*priv))
		}
	})
	req.RotateKey = *rotate
	cl, cx, cancel, err := dial(e, c)
	if err != nil {
		return err
	}
	defer cancel()
	th, err := cl.UpdateThread(cx, t, req)
	if err != nil {
		return err
	}
	return showThread(e, c, th)
}

func threadDelete(e *env, args []string) error {
	fs, c := newFlags(e, "thread delete", "THREAD")
	pos, err := parse(fs, args)
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
	if err := cl.DeleteThread(cx, t); err != nil {
		return err
	}
	if c.json {
		return printJSON(e, map[string]any{"deleted": t})
	}
	fmt.Fprintf(e.stdout, "deleted thread %s\n", t)
	return nil
}

func cmdSend(e *env, args []string) error {
	fs, c := newFlags(e, "send", "THREAD [--data S | data on stdin] [--public-meta S] [--private-meta S] [--empty]")
	data := fs.String("data", "", "message data (default: read stdin)")
	pub := fs.String("public-meta", "", "public metadata")
	priv := fs.String("private-meta", "", "private metadata (encrypted)")
	empty := fs.Bool("empty", false, "send the message even if its data is empty")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	t, err := threadArg(fs, pos)
	if err != nil {
		return err
	}
	body := []byte(*data)
	dataSet := false
	fs.Visit(func(f *flagT) { dataSet = dataSet || f.Name == "data" })
	if !dataSet {
		if f, ok := e.stdin.(*os.File); ok && isTerminal(f) {
			fmt.Fprintln(e.stderr, "weft: reading the message from the terminal; end it with Ctrl-D on a line of its own (or pass --data)")
		}
		if body, err = io.ReadAll(e.stdin); err != nil {
			return fmt.Errorf("reading data from stdin: %w", err)
		}
	}
	if len(body) == 0 && !*empty {
		what := "--data is empty"
		if !dataSet {
			what = "stdin was empty"
		}
		return fmt.Errorf("%w: not sending an empty message (%s): give the data with --data or on stdin, or pass --empty to send it anyway", errUsage, what)
	}
	cl, cx, cancel, err := dial(e, c)
	if err != nil {
		return err
	}
	defer cancel()
	id, err := cl.Send(cx, t, api.SendRequest{PublicMeta: []byte(*pub), PrivateMeta: []byte(*priv), Data: body})
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(e, map[string]any{"messageId": id, "threadId": t})
	}
	fmt.Fprintln(e.stdout, id)
	return nil
}

func cmdMessages(e *env, args []string) error {
	fs, c := newFlags(e, "messages", "THREAD [--limit N] [--skip N] [--desc] [--last-id ID]")
	getPage := pageFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	t, err := threadArg(fs, pos)
	if err != nil {
		return err
	}
	p, err := getPage()
	if err != nil {
		return err
	}
	cl, cx, cancel, err := dial(e, c)
	if err != nil {
		return err
	}
	defer cancel()
	l, err := cl.ListMessages(cx, t, p)
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(e, l)
	}
	for _, m := range l.Items {
		showMessageLine(e.stdout, m)
	}
	fmt.Fprintf(e.stdout, "%d of %d messages\n", len(l.Items), l.TotalAvailable)
	return nil
}

func showMessageLine(w io.Writer, m node.Message) {
	author := m.Author.String()
	if len(author) > 16 {
		author = author[:16] + "…"
	}
	text := printable(m.Data)
	if m.StatusCode != 0 {
		text = fmt.Sprintf("[cannot show: %s]", m.Status)
	}
	edited := ""
	if len(m.Updates) > 0 {
		edited = " (edited)"
	}
	fmt.Fprintf(w, "%s  %s  %s  %s%s\n", when(m.CreateDate), m.MessageID, author, text, edited)
}

func cmdMessage(e *env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: want weft message get|update|delete ID", errUsage)
	}
	sub, args := args[0], args[1:]
	if sub != "get" && sub != "update" && sub != "delete" {
		return fmt.Errorf("%w: unknown message command %q (want get, update or delete)", errUsage, sub)
	}
	fs, c := newFlags(e, "message "+sub, "ID")
	data := fs.String("data", "", "new data (update; read from stdin when no field is given)")
	pub := fs.String("public-meta", "", "new public metadata (update; kept if not given)")
	priv := fs.String("private-meta", "", "new private metadata (update; kept if not given)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return fmt.Errorf("%w: want one message ID", errUsage)
	}
	id, err := protocol.ParseEventID(pos[0])
	if err != nil {
		return fmt.Errorf("%w: message ID %q is not 64 hex characters", errUsage, pos[0])
	}
	set := map[string]bool{}
	fs.Visit(func(f *flagT) { set[f.Name] = true })
	if sub != "update" {
		for _, f := range []string{"data", "public-meta", "private-meta"} {
			if set[f] {
				fs.Usage()
				return fmt.Errorf("%w: --%s is for message update, not message %s", errUsage, f, sub)
			}
		}
	}
	// An update changes only the fields given; with none given, the new
	// data comes from stdin.
	var upd api.UpdateMessageRequest
	if sub == "update" {
		if set["public-meta"] {
			upd.PublicMeta = api.Set([]byte(*pub))
		}
		if set["private-meta"] {
			upd.PrivateMeta = api.Set([]byte(*priv))
		}
		switch {
		case set["data"]:
			upd.Data = api.Set([]byte(*data))
		case !set["public-meta"] && !set["private-meta"]:
			body, err := io.ReadAll(e.stdin)
			if err != nil {
				return err
			}
			upd.Data = api.Set(body)
		}
	}
	cl, cx, cancel, err := dial(e, c)
	if err != nil {
		return err
	}
	defer cancel()
	var m node.Message
	switch sub {
	case "get":
		m, err = cl.GetMessage(cx, id)
	case "update":
		m, err = cl.UpdateMessage(cx, id, upd)
	case "delete":
		if err := cl.DeleteMessage(cx, id); err != nil {
			return err
		}
		if c.json {
			return printJSON(e, map[string]any{"deleted": id})
		}
		fmt.Fprintf(e.stdout, "deleted message %s\n", id)
		return nil
	}
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(e, m)
	}
	fmt.Fprintf(e.stdout, "message       %s\nthread        %s\nauthor        %s\ncreated       %s\n", m.MessageID, m.ThreadID, m.Author, when(m.CreateDate))
	for _, u := range m.Updates {
		fmt.Fprintf(e.stdout, "edited        %s by %s\n", when(u.Date), u.Author)
	}
	if m.StatusCode != 0 {
		fmt.Fprintf(e.stdout, "status        %d (%s)\n", m.StatusCode, m.Status)
		return nil
	}
	fmt.Fprintf(e.stdout, "public meta   %s\nprivate meta  %s\n\n%s\n", printable(m.PublicMeta), printable(m.PrivateMeta), printable(m.Data))
	return nil
}

func cmdWatch(e *env, args []string) error {
	fs, c := newFlags(e, "watch", "[THREAD]")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	var filter *protocol.ThreadID
	switch len(pos) {
	case 0:
	case 1:
		t, err := protocol.ParseThreadID(pos[0])
		if err != nil {
			return fmt.Errorf("%w: thread ID %q is not 64 hex characters", errUsage, pos[0])
		}
		filter = &t
	default:
		fs.Usage()
		return fmt.Errorf("%w: want at most one thread ID", errUsage)
	}
	cl, err := connectDaemon(e, c)
	if err != nil {
		return err
	}
	cx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	enc := json.NewEncoder(e.stdout)
	// The ready line goes to stderr, so that stdout stays events only; a
	// script can wait for it before making the changes it watches for.
	ready := func() {
		what := "all threads"
		if filter != nil {
			what = "thread " + filter.String()
		}
		fmt.Fprintf(e.stderr, "watching %s (Ctrl-C to stop)\n", what)
	}
	err = cl.Watch(cx, filter, ready, func(ev node.Event) error {
		if c.json {
			return enc.Encode(ev)
		}
		line := ev.Type + " thread=" + ev.ThreadID.String()
		if ev.Message != nil {
			line += " message=" + ev.Message.MessageID.String() + " author=" + ev.Message.Author.String() + " data=" + printable(ev.Message.Data)
		}
		if ev.Stats != nil {
			line += fmt.Sprintf(" messages=%d", ev.Stats.MessagesCount)
		}
		_, err := fmt.Fprintln(e.stdout, line)
		return err
	})
	if errors.Is(err, context.Canceled) {
		return nil // Ctrl-C or SIGTERM: the user stopped watching
	}
	var ae *api.Error
	switch {
	case errors.As(err, &ae) && ae.Code == api.CodeUnavailable:
		return fmt.Errorf("%w: watch ended", errDaemonStopped)
	case errors.Is(err, api.ErrUnreachable):
		return fmt.Errorf("%w (it died or the connection broke): watch ended (%v)", errDaemonStopped, err)
	}
	return err
}
