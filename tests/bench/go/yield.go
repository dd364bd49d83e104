package main

import (
	"fmt"
	"runtime"
	"sync/atomic"
)

// Two goroutines ping-pong a turn variable; each calls runtime.Gosched
// while it is not its turn (bench_yield.c with sched_yield). One op = one
// round trip (main -> other -> main).
//
//	gobench yield [ops=100000]
//	prints: RESULT name=yield ops=N ns_per_op=X
func benchYield(args []string) {
	ops := argCount(args, 0, 100000)
	var turn int32 // 0: main's turn, 1: the other goroutine's
	done := make(chan struct{})
	go func() {
		for i := int64(0); i < ops; i++ {
			for atomic.LoadInt32(&turn) != 1 {
				runtime.Gosched()
			}
			atomic.StoreInt32(&turn, 0)
		}
		close(done)
	}()
	start := nowNs()
	for i := int64(0); i < ops; i++ {
		atomic.StoreInt32(&turn, 1)
		for atomic.LoadInt32(&turn) != 0 {
			runtime.Gosched()
		}
	}
	ns := (nowNs() - start) / float64(ops)
	<-done
	fmt.Printf("RESULT name=yield ops=%d ns_per_op=%.1f\n", ops, ns)
}
