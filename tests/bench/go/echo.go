package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Goroutine-per-connection TCP echo, server and clients in one process
// (bench_echo.c). The server listens on 127.0.0.1 (port 0); an acceptor
// goroutine accepts exactly <conns> connections and starts one server
// goroutine per connection, which echoes 64-byte messages until EOF.
// <conns> client goroutines each connect, wait on a barrier until every
// client is connected and every server goroutine started, then do 64-byte
// request/response round trips (write, read of the full reply, reply
// checked byte for byte) for <secs> seconds. So 2 x conns goroutines are
// blocked in socket reads most of the time, parked on Go's netpoller.
// Go sets TCP_NODELAY on TCP connections by default, as the C program
// does by hand.
//
// Timing as in the C program: the last goroutine into the barrier fixes
// the start (t0) and so the deadline; each client checks the clock after
// every round trip and stops at the deadline, recording when; wall_ms
// runs from t0 to the last client's stop; the first client past half
// time counts the kernel threads (Threads: in /proc/self/status).
//
//	gobench echo [conns=1000] [secs=3]
//	prints: RESULT name=echo conns=N secs=S round_trips=R wall_ms=W
//	        req_per_s=X tasks=T maxrss_kib=K min_conn_rt=A max_conn_rt=B
//
// The soft RLIMIT_NOFILE is raised to the hard one (Go 1.19 does that by
// itself too); if that cannot hold 2 x conns descriptors, conns is
// clamped (said on stderr). A watchdog ends a hung run (secs + 60 s).
const (
	echoMsg  = 64 // bytes per request and per reply
	spareFDs = 64 // descriptors kept free for stdio, listener, /proc
)

// barrier: n goroutines wait until all n have arrived; the last one in
// sets start (before the others are let go, so they all read it).
type barrier struct {
	mu    sync.Mutex
	left  int
	open  chan struct{}
	start float64 // ms (nowMs) when the barrier opened
}

func (b *barrier) wait() float64 {
	b.mu.Lock()
	b.left--
	if b.left == 0 {
		b.start = nowMs()
		close(b.open)
	}
	b.mu.Unlock()
	<-b.open
	return b.start
}

// echoFill is the request of round trip seq on connection id: bytes that
// differ between connections and consecutive round trips (as bench_echo.c).
func echoFill(buf []byte, id int, seq int64) {
	x := uint64(id)<<32 ^ uint64(seq) ^ 0x9e3779b97f4a7c15
	for i := range buf {
		x = x*6364136223846793005 + 1442695040888963407
		buf[i] = byte(x >> 56)
	}
}

func benchEcho(args []string) {
	nconns := int(argInt(args, 0, 1000))
	secs := argFloat(args, 1, 3)
	if nconns < 1 {
		nconns = 1
	}
	if secs <= 0 {
		secs = 3
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		if rl.Cur < rl.Max {
			rl.Cur = rl.Max
			syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
			syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
		}
		if need := uint64(2*nconns + spareFDs); rl.Cur < need {
			fit := 1
			if rl.Cur > spareFDs+2 {
				fit = int((rl.Cur - spareFDs) / 2)
			}
			fmt.Fprintf(os.Stderr, "gobench echo: RLIMIT_NOFILE is %d: clamping %d connections to %d\n",
				rl.Cur, nconns, fit)
			nconns = fit
		}
	}
	time.AfterFunc(time.Duration((secs+60)*float64(time.Second)), func() {
		fmt.Fprintln(os.Stderr, "gobench echo: watchdog: run hung, giving up")
		os.Exit(1)
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("listen", err)
	}
	addr := ln.Addr().String()
	bar := &barrier{left: 2*nconns + 1, open: make(chan struct{})}

	// server side: accept exactly nconns connections, one goroutine each,
	// echoing whole messages back until the client closes
	var servers sync.WaitGroup
	var bad int32 // server goroutines that ended without a clean EOF
	accepted := make(chan struct{})
	go func() {
		for i := 0; i < nconns; i++ {
			c, err := ln.Accept()
			if err != nil {
				fail("accept", err)
			}
			servers.Add(1)
			go func(c net.Conn) {
				defer servers.Done()
				defer c.Close()
				buf := make([]byte, echoMsg)
				bar.wait()
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						if err != io.EOF {
							atomic.AddInt32(&bad, 1)
						}
						return
					}
					if _, err := c.Write(buf); err != nil {
						atomic.AddInt32(&bad, 1)
						return
					}
				}
			}(c)
		}
		close(accepted)
	}()

	// clients
	type client struct {
		roundTrips int64
		stoppedMs  float64
	}
	clients := make([]client, nconns)
	var counting int32
	tasks := -1 // kernel threads half way, written by one client
	var cwg sync.WaitGroup
	for i := 0; i < nconns; i++ {
		cwg.Add(1)
		go func(id int) {
			defer cwg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				fail("connect", err)
			}
			req, rep := make([]byte, echoMsg), make([]byte, echoMsg)
			t0 := bar.wait()
			half, deadline := t0+secs*1e3/2, t0+secs*1e3
			var n int64
			now := t0
			for ; now < deadline; now = nowMs() {
				if now >= half && atomic.LoadInt32(&counting) == 0 &&
					atomic.SwapInt32(&counting, 1) == 0 {
					tasks = kernelThreads() // read by main after the clients finish
				}
				echoFill(req, id, n)
				if _, err := c.Write(req); err != nil {
					fail("write (client)", err)
				}
				if _, err := io.ReadFull(c, rep); err != nil {
					fail("read (client): short reply", err)
				}
				if !bytes.Equal(req, rep) {
					fmt.Fprintf(os.Stderr, "gobench echo: connection %d, round trip %d: wrong reply\n",
						id, n)
					os.Exit(1)
				}
				n++
			}
			clients[id] = client{n, now}
			c.Close() // the server goroutine sees EOF and exits
		}(i)
	}

	// the run starts when every client is connected and every server
	// goroutine started; from there main only waits
	t0 := bar.wait()
	<-accepted
	cwg.Wait()
	var total int64
	minRT, maxRT := int64(-1), int64(0)
	end := t0
	for _, c := range clients {
		total += c.roundTrips
		if minRT < 0 || c.roundTrips < minRT {
			minRT = c.roundTrips
		}
		if c.roundTrips > maxRT {
			maxRT = c.roundTrips
		}
		if c.stoppedMs > end {
			end = c.stoppedMs
		}
	}
	wall := end - t0
	servers.Wait()
	if bad != 0 {
		fmt.Fprintf(os.Stderr, "gobench echo: %d server goroutines ended without a clean EOF\n", bad)
		os.Exit(1)
	}
	ln.Close()
	fmt.Printf("RESULT name=echo conns=%d secs=%g round_trips=%d wall_ms=%.1f req_per_s=%.0f "+
		"tasks=%d maxrss_kib=%d min_conn_rt=%d max_conn_rt=%d\n",
		nconns, secs, total, wall, float64(total)/(wall/1e3), tasks, maxRSSKiB(), minRT, maxRT)
}
