package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Parallel pread of one regular file (bench_fileread.c): <threads>
// goroutines read it in 64 KiB blocks with (*os.File).ReadAt (pread).
// The file (<mib> MiB) is created in $BENCH_FILE_DIR, else $TMPDIR, else
// /tmp, written, fsync'd and unlinked at once. Two phases, each timed
// from the first reader's start to the last reader's end:
//
//	warm    from the page cache: <warm_mib> MiB in all, split evenly
//	direct  through an O_DIRECT descriptor (aligned buffers): <direct_mib>
//	        MiB in all; skipped where the file system refuses O_DIRECT
//	        (direct=unsupported) or when direct_mib is 0 (direct=off)
//
// mode seq: reader i reads blocks in order from block i x blocks / threads,
// wrapping; mode rand: each picks blocks with its own xorshift. Every read
// must return a whole block whose first 8 bytes match the pattern.
//
//	gobench fileread [mib=64] [threads=16] [seq|rand] [warm_mib=4096] [direct_mib=256]
//	prints: RESULT name=file-read file_mib=M threads=T mode=seq
//	        warm_mib=X warm_ms=Y warm_mib_s=Z
//	        direct_mib=X direct_ms=Y direct_mib_s=Z | direct=unsupported
//	        maxrss_kib=K
const (
	frBlock = 64 * 1024
	frAlign = 4096 // O_DIRECT buffer alignment
)

// frPattern is the 8-byte word stored at file offset off (a multiple of 8).
func frPattern(off uint64) uint64 {
	return (off/8)*0x9e3779b97f4a7c15 ^ 0x5bd1e995deadbeef
}

// alignedBlock returns a frBlock-byte slice starting on a frAlign boundary.
func alignedBlock() []byte {
	b := make([]byte, frBlock+frAlign)
	skip := int(-uintptr(unsafe.Pointer(&b[0])) & (frAlign - 1))
	return b[skip : skip+frBlock]
}

// frPhase: every reader reads blocksEach blocks from f; returns the ms
// from the first reader's start to the last one's end.
func frPhase(name string, f *os.File, nblocks int64, nthreads int, random bool, blocksEach int64) float64 {
	var wg sync.WaitGroup
	var mu sync.Mutex
	first, last := -1.0, 0.0
	var bad int64
	startGate := make(chan struct{}) // closed once all readers are started
	for id := 0; id < nthreads; id++ {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			buf := alignedBlock()
			rng := 0x2545f4914f6cdd1d * uint64(id+1)
			blk := int64(id) * nblocks / int64(nthreads)
			var myBad int64
			<-startGate
			t0 := nowMs()
			for k := int64(0); k < blocksEach; k++ {
				if random {
					rng ^= rng << 13
					rng ^= rng >> 7
					rng ^= rng << 17
					blk = int64(rng % uint64(nblocks))
				}
				off := blk * frBlock
				n, _ := f.ReadAt(buf, off)
				if n != frBlock || binary.LittleEndian.Uint64(buf) != frPattern(uint64(off)) {
					myBad++
				}
				if !random {
					if blk++; blk == nblocks {
						blk = 0
					}
				}
			}
			t1 := nowMs()
			mu.Lock()
			if first < 0 || t0 < first {
				first = t0
			}
			if t1 > last {
				last = t1
			}
			bad += myBad
			mu.Unlock()
		}(id)
	}
	close(startGate)
	wg.Wait()
	if bad != 0 {
		fail("file-read", fmt.Errorf("%s: %d blocks short or with wrong contents", name, bad))
	}
	return last - first
}

func benchFileRead(args []string) {
	mib := argCount(args, 0, 64)
	nthreads := int(argCount(args, 1, 16))
	mode := argStr(args, 2, "seq")
	warmTotal := argInt(args, 3, 4096)
	directMiB := argInt(args, 4, 256)
	if mode != "seq" && mode != "rand" {
		fail("file-read", fmt.Errorf("mode must be seq or rand"))
	}
	random := mode == "rand"
	nblocks := mib * (1 << 20 / frBlock)

	dir := os.Getenv("BENCH_FILE_DIR")
	if dir == "" {
		dir = os.Getenv("TMPDIR")
	}
	if dir == "" {
		dir = "/tmp"
	}
	f, err := os.CreateTemp(dir, "gshim-fileread.")
	if err != nil {
		fail(dir, err)
	}
	df, derr := os.OpenFile(f.Name(), os.O_RDONLY|syscall.O_DIRECT, 0)
	os.Remove(f.Name())
	if derr != nil {
		fmt.Fprintf(os.Stderr, "gobench fileread: O_DIRECT refused in %s (%v): skipping the direct phase\n",
			dir, derr)
		df = nil
	}
	chunk := make([]byte, 1<<20)
	for m := int64(0); m < mib; m++ {
		base := uint64(m) << 20
		for i := 0; i < len(chunk); i += 8 {
			binary.LittleEndian.PutUint64(chunk[i:], frPattern(base+uint64(i)))
		}
		if _, err := f.WriteAt(chunk, int64(base)); err != nil {
			fail("pwrite", err)
		}
	}
	if err := f.Sync(); err != nil { // the direct phase must read the disk
		fail("fsync", err)
	}
	warm := make([]byte, frBlock) // every page in the cache
	for b := int64(0); b < nblocks; b++ {
		if _, err := f.ReadAt(warm, b*frBlock); err != nil {
			fail("pread (warm-up)", err)
		}
	}

	warmBlocks := warmTotal * (1 << 20 / frBlock) / int64(nthreads)
	if warmBlocks < 1 {
		warmBlocks = 1
	}
	warmMs := frPhase("warm", f, nblocks, nthreads, random, warmBlocks)
	warmMiB := float64(warmBlocks) * float64(nthreads) * frBlock / (1 << 20)
	fmt.Printf("RESULT name=file-read file_mib=%d threads=%d mode=%s warm_mib=%.0f warm_ms=%.1f "+
		"warm_mib_s=%.0f", mib, nthreads, mode, warmMiB, warmMs, warmMiB/(warmMs/1e3))

	if df != nil && directMiB > 0 {
		directBlocks := directMiB * (1 << 20 / frBlock) / int64(nthreads)
		if directBlocks < 1 {
			directBlocks = 1
		}
		directMs := frPhase("direct", df, nblocks, nthreads, random, directBlocks)
		dmib := float64(directBlocks) * float64(nthreads) * frBlock / (1 << 20)
		fmt.Printf(" direct_mib=%.0f direct_ms=%.1f direct_mib_s=%.0f", dmib, directMs,
			dmib/(directMs/1e3))
	} else if df != nil {
		fmt.Printf(" direct=off")
	} else {
		fmt.Printf(" direct=unsupported")
	}
	fmt.Printf(" maxrss_kib=%d\n", maxRSSKiB())
}
