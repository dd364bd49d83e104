package main

import "fmt"

// Create + wait for a short goroutine, one at a time (bench_spawn.c):
// the goroutine sends its argument back on a channel, the counterpart of
// pthread_join's return value.
//
//	gobench spawn [ops=20000]
//	prints: RESULT name=spawn ops=N ns_per_op=X
func benchSpawn(args []string) {
	ops := argCount(args, 0, 20000)
	done := make(chan int64) // unbuffered: the receive is the join
	noop := func(i int64) { done <- i }
	for i := int64(0); i < 100; i++ { // warm up
		go noop(i)
		<-done
	}
	start := nowNs()
	for i := int64(0); i < ops; i++ {
		go noop(i)
		if <-done != i {
			fail("spawn", fmt.Errorf("wrong value back"))
		}
	}
	ns := (nowNs() - start) / float64(ops)
	fmt.Printf("RESULT name=spawn ops=%d ns_per_op=%.1f\n", ops, ns)
}
