// Command cairn snapshots whole web sites (files, databases, configuration)
// into a deduplicated, encrypted repository and restores them.
//
// This package is wiring only: each command is a plain function taking a
// context and options; exit codes are mapped in exit.go.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
)

// defaultMemoryLimit is the soft heap limit cairn runs under unless
// $GOMEMLIMIT says otherwise: the garbage collector works harder rather
// than let a large snapshot or restore grow past it (peak RSS stays under
// about 300 MB; see bench/README.md).
const defaultMemoryLimit = 200 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	os.Exit(Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Main runs cairn with args and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	if stopProfiling := startProfiling(); stopProfiling != nil {
		defer stopProfiling()
	}
	cmd := app.rootCommand()
	cmd.SetArgs(args)
	cmd.SetIn(stdin)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	err := cmd.ExecuteContext(ctx)
	if app.pool != nil {
		app.pool.Close() //nolint:errcheck // the run is over; its hosts' connections end
	}
	return app.exit(ctx, err)
}

// startProfiling writes CPU and heap profiles when $CAIRN_CPUPROFILE or
// $CAIRN_MEMPROFILE name files: a debugging aid for benchmarks.
func startProfiling() func() {
	cpu, mem := os.Getenv("CAIRN_CPUPROFILE"), os.Getenv("CAIRN_MEMPROFILE")
	if cpu == "" && mem == "" {
		return nil
	}
	var cpuFile *os.File
	if cpu != "" {
		f, err := os.Create(cpu)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			cpuFile = f
		}
	}
	return func() {
		if cpuFile != nil {
			pprof.StopCPUProfile()
			cpuFile.Close()
		}
		if mem != "" {
			if f, err := os.Create(mem); err == nil {
				pprof.WriteHeapProfile(f) //nolint:errcheck
				f.Close()
			}
		}
	}
}
