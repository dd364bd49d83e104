package main

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// N goroutines each sleeping R times 10 ms (time.Sleep), all at once
// (bench_sleepers.c): wall time, kernel threads used (entries of
// /proc/self/task once all are started) and peak RSS.
//
//	gobench sleepers [threads=100000] [rounds=5]
//	prints: RESULT name=sleepers requested=N created=K complete=0|1
//	        wall_ms=X tasks=T maxrss_kib=Y kib_per_thread=Z
func benchSleepers(args []string) {
	n := argInt(args, 0, 100000)
	rounds := argInt(args, 1, 5)
	t0 := nowMs()
	var wg sync.WaitGroup
	var made int64
	for ; made < n; made++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(0); i < rounds; i++ {
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	tasks := 0
	if ents, err := os.ReadDir("/proc/self/task"); err == nil {
		tasks = len(ents)
	}
	wg.Wait()
	wall := nowMs() - t0
	rss := maxRSSKiB()
	complete := boolInt(made == n)
	perThread := 0.0
	if made > 0 {
		perThread = float64(rss) / float64(made)
	}
	fmt.Printf("RESULT name=sleepers requested=%d created=%d complete=%d wall_ms=%.1f "+
		"tasks=%d maxrss_kib=%d kib_per_thread=%.2f\n",
		n, made, complete, wall, tasks, rss, perThread)
}
