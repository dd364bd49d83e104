package main

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// sync.Mutex lock/unlock cost (bench_mutex.c).
//
//	gobench mutex [ops=10000000] [threads=1]
//
// threads=1: uncontended lock/inc/unlock by one goroutine, measured twice:
// first with no other goroutine of ours alive (ns_single_threaded; for Go
// it makes no difference to the lock, unlike glibc's), then with a second
// goroutine alive, parked in a sync.Cond wait (ns_per_op);
// prints: RESULT name=mutex ops=N ns_per_op=X ns_single_threaded=Y
// threads=T>1: T goroutines hammer one mutex, each ops/T lock/inc/unlock,
// starting together; the counter is checked; ns_per_op = wall time / ops;
// prints: RESULT name=mutex-contended threads=T ops=N ns_per_op=X
func benchMutex(args []string) {
	ops := argCount(args, 0, 10000000)
	threads := argCount(args, 1, 1)
	var m sync.Mutex
	var counter int64

	if threads == 1 {
		var ns [2]float64
		var idleM sync.Mutex
		idleC := sync.NewCond(&idleM)
		idleStop := false
		idleDone := make(chan struct{})
		for pass := 0; pass < 2; pass++ {
			if pass == 1 { // the second goroutine: parked until the end
				go func() {
					idleM.Lock()
					for !idleStop {
						idleC.Wait()
					}
					idleM.Unlock()
					close(idleDone)
				}()
			}
			for i := 0; i < 10000; i++ { // warm up
				m.Lock()
				m.Unlock()
			}
			counter = 0
			start := nowNs()
			for i := int64(0); i < ops; i++ {
				m.Lock()
				counter++
				m.Unlock()
			}
			ns[pass] = (nowNs() - start) / float64(ops)
			if counter != ops {
				fail("mutex", fmt.Errorf("counter %d, want %d", counter, ops))
			}
		}
		idleM.Lock()
		idleStop = true
		idleC.Signal()
		idleM.Unlock()
		<-idleDone
		fmt.Printf("RESULT name=mutex ops=%d ns_per_op=%.2f ns_single_threaded=%.2f\n",
			ops, ns[1], ns[0])
		return
	}

	perThread := ops / threads
	ops = perThread * threads
	var ready, start int32
	var wg sync.WaitGroup
	for i := int64(0); i < threads; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			atomic.AddInt32(&ready, 1)
			for atomic.LoadInt32(&start) == 0 {
				runtime.Gosched() // start together, after all were created
			}
			for i := int64(0); i < perThread; i++ {
				m.Lock()
				counter++
				m.Unlock()
			}
		}()
	}
	for atomic.LoadInt32(&ready) < int32(threads) {
		runtime.Gosched()
	}
	t0 := nowNs()
	atomic.StoreInt32(&start, 1)
	wg.Wait()
	ns := (nowNs() - t0) / float64(ops)
	if counter != ops {
		fail("mutex-contended", fmt.Errorf("counter %d, want %d", counter, ops))
	}
	fmt.Printf("RESULT name=mutex-contended threads=%d ops=%d ns_per_op=%.2f\n", threads, ops, ns)
}
