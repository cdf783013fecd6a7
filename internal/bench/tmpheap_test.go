package bench

import (
	"context"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
)

func TestTmpProf(t *testing.T) {
	if os.Getenv("TMPPROF") == "" {
		t.Skip()
	}
	cf, _ := os.Create("/tmp/sync.cpu")
	testHooks.catchUpStart = func() { pprof.StartCPUProfile(cf); runtime.SetBlockProfileRate(10000) }
	testHooks.catchUpDone = func() {
		pprof.StopCPUProfile()
		runtime.SetBlockProfileRate(0)
		bf, _ := os.Create("/tmp/sync.block")
		pprof.Lookup("block").WriteTo(bf, 0)
		bf.Close()
		runtime.GC()
		f, _ := os.Create("/tmp/sync.heap")
		pprof.WriteHeapProfile(f)
		f.Close()
	}
	r, err := SyncCatchUp(context.Background(), 100000, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
}
