package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Scheduling fairness and timer latency under CPU-bound load
// (bench_fairness.c): four CPU-bound goroutines spin in a pure arithmetic
// loop, counting iterations; a ticker goroutine sleeps 1 ms at a time
// (time.Sleep) and records the longest gap between two wake-ups. With
// fewer P's than runnable goroutines only Go's preemption (asynchronous,
// by signal, since Go 1.14) lets every spinner and the ticker run.
//
// Stopping does not depend on fair scheduling: main sleeps to the
// deadline and sets the stop flag, but the spinners also check the clock
// every 2^18 iterations and the ticker after each sleep.
//
//	gobench fairness [secs=2]
//	prints: RESULT name=fairness secs=S spinners=4 wall_ms=W max_gap_ms=G
//	        ticks=N share0=P ... share3=P max_dev_pct=D miter_per_s=M
const (
	fairSpinners   = 4
	fairClockEvery = 1 << 18 // iterations between deadline checks
)

type spinner struct {
	iters uint64
	sink  uint64   // the loop's result, so it is not optimised away
	_     [48]byte // keep spinners' fields off each other's cache line
}

func benchFairness(args []string) {
	secs := argFloat(args, 0, 2)
	if secs <= 0 {
		secs = 2
	}
	var spinners [fairSpinners]spinner
	var stop int32
	var ticks int64
	var maxGapNs float64
	start := nowNs()
	deadline := start + secs*1e9
	var wg sync.WaitGroup // spinners + ticker

	for i := range spinners {
		wg.Add(1)
		go func(s *spinner, seed uint64) {
			defer wg.Done()
			x, n := seed, uint64(0)
			for atomic.LoadInt32(&stop) == 0 {
				x = x*6364136223846793005 + 1442695040888963407
				x ^= x >> 29
				n++
				if n%fairClockEvery == 0 && nowNs() >= deadline {
					break
				}
			}
			s.iters, s.sink = n, x
		}(&spinners[i], uint64(i)+1)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		prev := start // a ticker that starts late has a gap already
		for {
			time.Sleep(time.Millisecond)
			t := nowNs()
			if t-prev > maxGapNs {
				maxGapNs = t - prev // counted even past the deadline: starvation
			}
			prev = t
			if atomic.LoadInt32(&stop) != 0 || t >= deadline {
				break
			}
			ticks++
		}
	}()

	time.Sleep(time.Duration(deadline - nowNs()))
	atomic.StoreInt32(&stop, 1)
	wg.Wait()
	wallMs := (nowNs() - start) / 1e6

	var total uint64
	for i := range spinners {
		total += spinners[i].iters
	}
	fmt.Printf("RESULT name=fairness secs=%g spinners=%d wall_ms=%.1f max_gap_ms=%.2f ticks=%d",
		secs, fairSpinners, wallMs, maxGapNs/1e6, ticks)
	maxDev := 0.0
	for i := range spinners {
		share := 0.0
		if total > 0 {
			share = 100 * float64(spinners[i].iters) / float64(total)
		}
		fmt.Printf(" share%d=%.1f", i, share)
		dev := share - 100.0/fairSpinners
		if dev < 0 {
			dev = -dev
		}
		if dev > maxDev {
			maxDev = dev
		}
	}
	fmt.Printf(" max_dev_pct=%.1f miter_per_s=%.1f\n", maxDev, float64(total)/(wallMs/1e3)/1e6)
}
