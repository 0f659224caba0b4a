// B11 mixed load, Go's version of benches/suite/mixed.rs: the same load and
// the same figures, written the way Go is written.
//
//   - A scanner goroutine per P (GOMAXPROCS = 2): Go has no selective
//     receive, so its "mailbox" is a slice it owns: it fills it with 500,000
//     unrelated messages, then 100 times appends a marker and searches the
//     slice for it (the same type check per message as ours), then makes a
//     2 s blocking system call (nanosleep, as std::thread::sleep does; Go's
//     sysmon hands the P to another thread while it blocks).
//   - Two ping-pong pairs over unbuffered channels.
//   - 1,000 goroutines looping on a select with a 10 ms timer.
package main

import (
	"fmt"
	"runtime"
	"sort"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	mixedWorkers       = 2
	mixedTimed         = 1000
	mixedTimeout       = 10 * time.Millisecond
	mixedScans         = 100
	mixedNoise         = 500000
	mixedBlocking      = 2 * time.Second
	mixedSolo          = time.Second
	mixedRoundsPerLook = 64
)

type mixedPair struct {
	rounds atomic.Int64
	stop   atomic.Bool
	done   chan struct{}
}

func startPairs() []*mixedPair {
	pairs := make([]*mixedPair, mixedWorkers)
	for i := range pairs {
		p := &mixedPair{done: make(chan struct{})}
		pairs[i] = p
		ping, pong := make(chan struct{}), make(chan struct{})
		go func() {
			for range ping {
				pong <- struct{}{}
			}
		}()
		go func() {
			for !p.stop.Load() {
				for r := 0; r < mixedRoundsPerLook; r++ {
					ping <- struct{}{}
					<-pong
				}
				p.rounds.Add(mixedRoundsPerLook)
			}
			close(ping)
			close(p.done)
		}()
	}
	return pairs
}

func stopPairs(pairs []*mixedPair) {
	for _, p := range pairs {
		p.stop.Store(true)
	}
	for _, p := range pairs {
		<-p.done
	}
}

func totalRounds(pairs []*mixedPair) int64 {
	var n int64
	for _, p := range pairs {
		n += p.rounds.Load()
	}
	return n
}

func countRounds(pairs []*mixedPair, during func()) float64 {
	before := totalRounds(pairs)
	start := time.Now()
	during()
	return float64(totalRounds(pairs)-before) / time.Since(start).Seconds()
}

func timedReceiver(stop <-chan struct{}, results chan<- []time.Duration) {
	var late []time.Duration
	timer := time.NewTimer(mixedTimeout)
	for {
		start := time.Now()
		select {
		case <-stop:
			timer.Stop()
			results <- late
			return
		case <-timer.C:
			late = append(late, time.Since(start)-mixedTimeout)
			timer.Reset(mixedTimeout)
		}
	}
}

func scanner(noise, scans int, blocking time.Duration, filled, scanned, done chan<- struct{}) {
	pending := make([]any, 0, noise+1)
	for n := 0; n < noise; n++ {
		pending = append(pending, uint32(n))
	}
	filled <- struct{}{}
	for k := 0; k < scans; k++ {
		pending = append(pending, uint64(k))
		found := -1
		for i, m := range pending {
			if v, ok := m.(uint64); ok && v == uint64(k) {
				found = i
				break
			}
		}
		if found < 0 {
			panic("the marker is lost")
		}
		pending = append(pending[:found], pending[found+1:]...)
	}
	scanned <- struct{}{}
	ts := syscall.NsecToTimespec(blocking.Nanoseconds())
	for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
	}
	if len(pending) != noise {
		panic("the noise is touched")
	}
	done <- struct{}{}
}

func mixedLoad(div int) {
	runtime.GOMAXPROCS(mixedWorkers)
	noise, scans := mixedNoise/div, mixedScans/div
	blocking, solo := mixedBlocking/time.Duration(div), mixedSolo/time.Duration(div)

	pairs := startPairs()
	soloRate := countRounds(pairs, func() { time.Sleep(solo) })
	stopPairs(pairs)

	stop := make(chan struct{})
	results := make(chan []time.Duration)
	for i := 0; i < mixedTimed; i++ {
		go timedReceiver(stop, results)
	}
	filled, scanned, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	for w := 0; w < mixedWorkers; w++ {
		go scanner(noise, scans, blocking, filled, scanned, done)
	}
	for w := 0; w < mixedWorkers; w++ {
		<-filled
	}
	pairs = startPairs()
	start := time.Now()
	var scannedIn time.Duration
	scanRate := countRounds(pairs, func() {
		for w := 0; w < mixedWorkers; w++ {
			<-scanned
		}
		scannedIn = time.Since(start)
	})
	for w := 0; w < mixedWorkers; w++ {
		<-done
	}
	loadRate := float64(totalRounds(pairs)) / time.Since(start).Seconds()
	stopPairs(pairs)
	close(stop)
	var late []time.Duration
	for i := 0; i < mixedTimed; i++ {
		late = append(late, <-results...)
	}
	if len(late) == 0 {
		panic("the timed receivers never fired")
	}
	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	at := func(q float64) float64 {
		return float64(late[int(float64(len(late)-1)*q+0.5)].Nanoseconds()) / 1e3
	}
	fmt.Printf("B11 mixed-load 2w noise=%d timed=%d samples=%d solo_rtt_ns=%.1f scan_ms=%.0f "+
		"pairs_slowdown_scan=%.2f pairs_slowdown=%.2f late_p50_us=%.0f late_p99_us=%.0f late_max_us=%.0f\n",
		noise, mixedTimed, len(late), 1e9/soloRate, float64(scannedIn.Milliseconds()),
		soloRate/scanRate, soloRate/loadRate, at(0.5), at(0.99), at(1.0))
}
