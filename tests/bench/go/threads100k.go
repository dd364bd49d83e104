package main

import (
	"fmt"
	"runtime"
	"sync/atomic"
)

// Many goroutines alive at once in a join chain (bench_100k.c): goroutine
// i waits for goroutine i-1 to finish (its done channel is closed), adds
// i to i-1's result and finishes; goroutine 0 waits (Gosched) until main
// has started them all, then the chain unwinds. A go statement cannot
// fail, so created is always the number requested. The stack_kib argument
// is accepted and ignored: goroutine stacks start small and grow.
//
//	gobench 100k [threads=100000] [stack_kib=0]
//	prints: RESULT name=threads-100k requested=N created=K complete=0|1
//	        wall_ms=X maxrss_kib=Y kib_per_thread=Z
func bench100k(args []string) {
	n := argCount(args, 0, 100000)
	done := make([]chan struct{}, n) // closed when goroutine i has its result
	result := make([]int64, n)       // written before done[i] is closed
	for i := range done {
		done[i] = make(chan struct{})
	}
	var allCreated int32
	link := func(i int64) {
		if i == 0 {
			for atomic.LoadInt32(&allCreated) == 0 {
				runtime.Gosched()
			}
		} else {
			<-done[i-1]
			result[i] = result[i-1] + i
		}
		close(done[i])
	}

	start := nowMs()
	var created int64
	for ; created < n; created++ {
		go link(created)
	}
	atomic.StoreInt32(&allCreated, 1)
	<-done[created-1]
	wall := nowMs() - start
	if want := created * (created - 1) / 2; result[created-1] != want {
		fail("threads-100k", fmt.Errorf("wrong checksum %d, want %d", result[created-1], want))
	}
	rss, complete := maxRSSKiB(), boolInt(created == n)
	fmt.Printf("RESULT name=threads-100k requested=%d created=%d complete=%d wall_ms=%.1f "+
		"maxrss_kib=%d kib_per_thread=%.2f\n",
		n, created, complete, wall, rss, float64(rss)/float64(created))
}
