package main

import (
	"fmt"
	"sync"
)

// Two goroutines ping-pong a turn through one sync.Mutex and one
// sync.Cond (bench_condvar.c): each waits until it is its turn, passes
// the turn and signals. One op = one round trip (main -> other -> main).
// Then the same ping-pong through two unbuffered channels, the idiomatic
// Go way (chan_ns_per_op; the C program has no such key).
//
//	gobench condvar [ops=50000]
//	prints: RESULT name=condvar ops=N ns_per_op=X chan_ns_per_op=Y
func benchCondvar(args []string) {
	ops := argCount(args, 0, 50000)

	var m sync.Mutex
	c := sync.NewCond(&m)
	turn := 0 // 0: main's turn, 1: the other goroutine's
	var otherRounds int64
	done := make(chan struct{})
	go func() {
		m.Lock()
		for i := int64(0); i < ops; i++ {
			for turn != 1 {
				c.Wait()
			}
			turn = 0
			otherRounds++
			c.Signal()
		}
		m.Unlock()
		close(done)
	}()
	start := nowNs()
	m.Lock()
	for i := int64(0); i < ops; i++ {
		turn = 1
		c.Signal()
		for turn != 0 {
			c.Wait()
		}
	}
	m.Unlock()
	ns := (nowNs() - start) / float64(ops)
	<-done
	if otherRounds != ops {
		fail("condvar", fmt.Errorf("other goroutine did %d rounds, want %d", otherRounds, ops))
	}

	// channels: ping carries the round number there, pong brings it back
	ping, pong := make(chan int64), make(chan int64)
	go func() {
		for i := range ping {
			pong <- i
		}
	}()
	start = nowNs()
	for i := int64(0); i < ops; i++ {
		ping <- i
		if <-pong != i {
			fail("condvar", fmt.Errorf("channel ping-pong: wrong round"))
		}
	}
	chanNs := (nowNs() - start) / float64(ops)
	close(ping)

	fmt.Printf("RESULT name=condvar ops=%d ns_per_op=%.1f chan_ns_per_op=%.1f\n", ops, ns, chanNs)
}
