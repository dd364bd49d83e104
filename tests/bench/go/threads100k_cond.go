package main

import (
	"fmt"
	"sync"
)

// Many goroutines waiting on one sync.Cond (bench_100k_cond.c): each
// locks the mutex, counts itself and waits until main broadcasts; main
// starts them all, waits until every one waits, broadcasts once and
// waits for all to finish (a sync.WaitGroup: the joins). stack_kib is
// accepted and ignored, as in gobench 100k.
//
//	gobench 100k_cond [threads=100000] [stack_kib=0]
//	prints: RESULT name=threads-100k-cond requested=N created=K complete=0|1
//	        wall_ms=X wake_ms=W maxrss_kib=Y kib_per_thread=Z
//
// wall_ms: first go statement to the last exit; wake_ms: broadcast to the
// last exit.
func bench100kCond(args []string) {
	n := argCount(args, 0, 100000)
	var m sync.Mutex
	crowd := sync.NewCond(&m) // the crowd waits here
	allIn := sync.NewCond(&m) // main waits here
	var waiting, woke int64
	target := int64(-1)
	goFlag := false
	var wg sync.WaitGroup
	waiter := func() {
		defer wg.Done()
		m.Lock()
		waiting++
		if waiting == target {
			allIn.Signal()
		}
		for !goFlag {
			crowd.Wait()
		}
		woke++
		m.Unlock()
	}

	start := nowMs()
	var created int64
	for ; created < n; created++ {
		wg.Add(1)
		go waiter()
	}
	m.Lock()
	target = created
	for waiting < created {
		allIn.Wait()
	}
	bcast := nowMs()
	goFlag = true
	crowd.Broadcast()
	m.Unlock()
	wg.Wait()
	end := nowMs()
	if woke != created {
		fail("threads-100k-cond", fmt.Errorf("%d goroutines woke, want %d", woke, created))
	}
	rss, complete := maxRSSKiB(), boolInt(created == n)
	fmt.Printf("RESULT name=threads-100k-cond requested=%d created=%d complete=%d wall_ms=%.1f "+
		"wake_ms=%.1f maxrss_kib=%d kib_per_thread=%.2f\n",
		n, created, complete, end-start, end-bcast, rss, float64(rss)/float64(created))
}
