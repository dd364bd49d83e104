// gobench: Go counterparts of the pthread benchmarks in tests/bench, for
// the "Go P=1" / "Go P=2" columns of scripts/bench (GOMAXPROCS=1/2).
//
//	gobench <benchmark> [args...]
//
// <benchmark> is the C program's name without "bench_" (spawn, yield,
// 100k, mutex, condvar, 100k_cond, sleepers, echo, fileread, fairness);
// the arguments and the RESULT line (name and keys) are those of the C
// program, so scripts/bench runs both the same way and parses both alike.
// Threads become goroutines; pthread_join becomes a channel receive or a
// sync.WaitGroup; mutexes and condvars become sync.Mutex and sync.Cond.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var benches = map[string]func(args []string){
	"spawn":     benchSpawn,
	"yield":     benchYield,
	"100k":      bench100k,
	"mutex":     benchMutex,
	"condvar":   benchCondvar,
	"100k_cond": bench100kCond,
	"sleepers":  benchSleepers,
	"echo":      benchEcho,
	"fileread":  benchFileRead,
	"fairness":  benchFairness,
}

func main() {
	if len(os.Args) < 2 || benches[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: gobench spawn|yield|100k|mutex|condvar|100k_cond|"+
			"sleepers|echo|fileread|fairness [args...]")
		os.Exit(2)
	}
	benches[os.Args[1]](os.Args[2:])
}

// argInt returns args[i] as an integer (atol: a bad number is 0), or def
// if there is no such argument.
func argInt(args []string, i int, def int64) int64 {
	if i >= len(args) {
		return def
	}
	n, _ := strconv.ParseInt(args[i], 10, 64)
	return n
}

// argCount is argInt for a count: at least 1, as the C programs clamp it.
func argCount(args []string, i int, def int64) int64 {
	if n := argInt(args, i, def); n >= 1 {
		return n
	}
	return 1
}

// boolInt is 1 for true, 0 for false (the RESULT lines' complete=).
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// argFloat is argInt for atof.
func argFloat(args []string, i int, def float64) float64 {
	if i >= len(args) {
		return def
	}
	f, _ := strconv.ParseFloat(args[i], 64)
	return f
}

// argStr returns args[i], or def if there is no such argument.
func argStr(args []string, i int, def string) string {
	if i >= len(args) {
		return def
	}
	return args[i]
}

// epoch is the zero of nowNs/nowMs: time.Since reads the monotonic clock.
var epoch = time.Now()

func nowNs() float64 { return float64(time.Since(epoch).Nanoseconds()) }
func nowMs() float64 { return nowNs() / 1e6 }

// maxRSSKiB is the peak RSS of the process (getrusage; KiB on Linux).
func maxRSSKiB() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return -1
	}
	return int64(ru.Maxrss)
}

// kernelThreads is the Threads: line of /proc/self/status (-1 if unread).
func kernelThreads() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "Threads:") {
			n, err := strconv.Atoi(strings.TrimSpace(line[len("Threads:"):]))
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// fail prints "gobench: <what>: <err>" and exits 1.
func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "gobench: %s: %v\n", what, err)
	os.Exit(1)
}
