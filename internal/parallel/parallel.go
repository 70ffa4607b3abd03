// Package parallel splits loops across a fixed number of goroutines.
//
// Work is partitioned into contiguous, deterministic ranges: the same n and
// threads always give the same ranges, so kernels that write disjoint output
// ranges produce bit-identical results regardless of scheduling.
package parallel

import "sync"

// For calls fn(lo, hi) over [0, n) split into at most threads contiguous
// chunks of at least grain iterations each. With threads <= 1 or a single
// chunk it runs fn(0, n) on the calling goroutine.
func For(threads, n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	chunks := threads
	if maxChunks := (n + grain - 1) / grain; chunks > maxChunks {
		chunks = maxChunks
	}
	if chunks <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	wg.Add(chunks - 1)
	for c := 1; c < chunks; c++ {
		lo, hi := c*n/chunks, (c+1)*n/chunks
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	fn(0, n/chunks)
	wg.Wait()
}
