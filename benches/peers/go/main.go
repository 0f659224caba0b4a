// Go peer of benches/suite.rs: the same cases, the same output lines.
//
//	go build -o ../../../target/peers/go-bench .
//	ERLANGEN_BENCH_CASE=ping_pong_1w ./go-bench [--quick]
//
// Goroutines and channels: a channel plays the agent's mailbox. Workers are
// GOMAXPROCS (1w = 1, 2w = 2).
package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func perNs(d time.Duration, n int) string {
	return fmt.Sprintf("%.1f", float64(d.Nanoseconds())/float64(n))
}
func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Nanoseconds())/1e6) }

func statusKiB(field string) int64 {
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, field) {
			var v int64
			fmt.Sscan(strings.Fields(line)[1], &v)
			return v
		}
	}
	return 0
}

func pingPong(workers, div int, label string) {
	runtime.GOMAXPROCS(workers)
	rounds := 1000000 / div
	ping, pong := make(chan int), make(chan int)
	go func() {
		for i := 0; i < rounds; i++ {
			pong <- <-ping
		}
	}()
	start := time.Now()
	for i := 0; i < rounds; i++ {
		ping <- i
		<-pong
	}
	fmt.Printf("B1 ping-pong %s rounds=%d rtt_ns=%s\n", label, rounds, perNs(time.Since(start), rounds))
}

func counting(workers, div int, label string) {
	runtime.GOMAXPROCS(workers)
	n := 1000000 / div
	ch := make(chan int, 1024)
	total := make(chan int)
	go func() {
		sum := 0
		for v := range ch {
			sum += v
		}
		total <- sum
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		ch <- i
	}
	close(ch)
	sum := <-total
	elapsed := time.Since(start)
	if sum != n*(n-1)/2 {
		panic("counting lost messages")
	}
	fmt.Printf("B2 counting %s messages=%d per_msg_ns=%s\n", label, n, perNs(elapsed, n))
}

func ring(workers, size, div int, label string) {
	runtime.GOMAXPROCS(workers)
	hops := 1000000 / div
	chans := make([]chan int, size)
	for i := range chans {
		chans[i] = make(chan int)
	}
	done := make(chan bool)
	for i := 0; i < size; i++ {
		in, out := chans[i], chans[(i+1)%size]
		go func() {
			for {
				t := <-in
				if t == 0 {
					done <- true
					return
				}
				out <- t - 1
			}
		}()
	}
	start := time.Now()
	chans[0] <- hops
	<-done
	fmt.Printf("B3 ring %s agents=%d hops=%d per_hop_ns=%s\n", label, size, hops, perNs(time.Since(start), hops))
}

func skynetNode(c chan int, num, size int) {
	if size == 1 {
		c <- num
		return
	}
	rc := make(chan int)
	step := size / 10
	for i := 0; i < 10; i++ {
		go skynetNode(rc, num+i*step, step)
	}
	sum := 0
	for i := 0; i < 10; i++ {
		sum += <-rc
	}
	c <- sum
}

func skynet(div int) {
	runtime.GOMAXPROCS(2)
	leaves := 1000000 / div
	start := time.Now()
	c := make(chan int)
	go skynetNode(c, 0, leaves)
	sum := <-c
	elapsed := time.Since(start)
	if sum != leaves*(leaves-1)/2 {
		panic("skynet sum")
	}
	fmt.Printf("B4 skynet 2w agents=%d sum=%d wall_ms=%s peak_rss_mib=%.1f\n", leaves+leaves/9, sum, ms(elapsed), float64(statusKiB("VmHWM:"))/1024)
}

func parked(div int) {
	runtime.GOMAXPROCS(2)
	n := 1000000 / div
	before := statusKiB("VmRSS:")
	for round := 0; round < 2; round++ {
		var started, done sync.WaitGroup
		started.Add(n)
		done.Add(n)
		chans := make([]chan struct{}, n)
		t0 := time.Now()
		for i := 0; i < n; i++ {
			ch := make(chan struct{})
			chans[i] = ch
			go func() {
				started.Done()
				<-ch
				done.Done()
			}()
		}
		started.Wait()
		spawn := time.Since(t0)
		rss := statusKiB("VmRSS:")
		t1 := time.Now()
		for _, ch := range chans {
			ch <- struct{}{}
		}
		done.Wait()
		label := "2w cold"
		if round == 1 {
			label = "2w warm"
		}
		fmt.Printf("B5 parked %s agents=%d spawn_ns_per_agent=%s rss_bytes_per_agent=%d teardown_ns_per_agent=%s\n",
			label, n, perNs(spawn, n), (rss-before)*1024/int64(n), perNs(time.Since(t1), n))
	}
}

func churn(workers, div int, label string) {
	runtime.GOMAXPROCS(workers)
	n := 1000000 / div
	var wg sync.WaitGroup
	wg.Add(n)
	var sink uint64
	start := time.Now()
	for i := 0; i < n; i++ {
		ch := make(chan float64, 1)
		go func() {
			x := <-ch
			y := math.Abs(math.Sin(x) * math.Cos(x))
			atomic.AddUint64(&sink, uint64(y))
			wg.Done()
		}()
		ch <- float64(i)
	}
	wg.Wait()
	fmt.Printf("B6 churn %s agents=%d per_agent_ns=%s\n", label, n, perNs(time.Since(start), n))
}

type meet struct {
	reply  chan int
	colour int
}

func chameneos(workers, div int, label string) {
	runtime.GOMAXPROCS(workers)
	const creatures = 100
	meetings := 200000 / div
	broker := make(chan meet, 2*creatures)
	results := make(chan int, creatures)
	start := time.Now()
	for i := 0; i < creatures; i++ {
		go func(colour int) {
			reply := make(chan int, 1)
			met := 0
			for {
				broker <- meet{reply, colour}
				other := <-reply
				if other < 0 {
					break
				}
				if other != colour {
					colour = 3 - colour - other
				}
				met++
			}
			results <- met
		}(i % 3)
	}
	var waiting *meet
	for m := 0; m < meetings; {
		mt := <-broker
		if waiting == nil {
			w := mt
			waiting = &w
			continue
		}
		waiting.reply <- mt.colour
		mt.reply <- waiting.colour
		waiting = nil
		m++
	}
	left := creatures
	if waiting != nil {
		waiting.reply <- -1
		left--
	}
	for i := 0; i < left; i++ {
		mt := <-broker
		mt.reply <- -1
	}
	total := 0
	for i := 0; i < creatures; i++ {
		total += <-results
	}
	elapsed := time.Since(start)
	if total != 2*meetings {
		panic("chameneos meetings")
	}
	fmt.Printf("B7 chameneos %s meetings=%d total_ms=%s\n", label, meetings, ms(elapsed))
}

type bigMsg struct {
	kind int // 0 ping, 1 pong, 2 stop
	from int
}

func big(workers, div int, label string) {
	runtime.GOMAXPROCS(workers)
	const agents = 120
	pings := 20000 / div
	boxes := make([]chan bigMsg, agents)
	for i := range boxes {
		boxes[i] = make(chan bigMsg, 4*agents)
	}
	done := make(chan int, agents)
	start := time.Now()
	for i := 0; i < agents; i++ {
		go func(index int) {
			seed := uint64(index)*0x9e3779b97f4a7c15 + 1
			next := func() int {
				seed ^= seed << 13
				seed ^= seed >> 7
				seed ^= seed << 17
				t := int(seed % agents)
				if t == index {
					t = (t + 1) % agents
				}
				return t
			}
			sent := 0
			boxes[next()] <- bigMsg{0, index}
			for m := range boxes[index] {
				switch m.kind {
				case 0:
					boxes[m.from] <- bigMsg{1, index}
				case 1:
					sent++
					if sent == pings {
						done <- pings
					} else {
						boxes[next()] <- bigMsg{0, index}
					}
				case 2:
					return
				}
			}
		}(i)
	}
	total := 0
	for i := 0; i < agents; i++ {
		total += <-done
	}
	elapsed := time.Since(start)
	for _, b := range boxes {
		b <- bigMsg{2, 0}
	}
	if total != agents*pings {
		panic("big pings")
	}
	fmt.Printf("B7 big %s messages=%d total_ms=%s\n", label, 2*agents*pings, ms(elapsed))
}

func main() {
	div := 1
	for _, a := range os.Args[1:] {
		if a == "--quick" {
			div = 10
		}
	}
	switch c := os.Getenv("ERLANGEN_BENCH_CASE"); c {
	case "ping_pong_1w":
		pingPong(1, div, "1w")
	case "ping_pong_2w":
		pingPong(2, div, "2w")
	case "counting_1w":
		counting(1, div, "1w")
	case "counting_2w":
		counting(2, div, "2w")
	case "ring_100":
		ring(1, 100, div, "100 1w")
	case "ring_10000":
		ring(1, 10000, div, "10000 1w")
	case "ring_100_2w":
		ring(2, 100, div, "100 2w")
	case "skynet":
		skynet(div)
	case "parked":
		parked(div)
	case "churn_1w":
		churn(1, div, "1w")
	case "churn_2w":
		churn(2, div, "2w")
	case "chameneos_1w":
		chameneos(1, div, "1w")
	case "chameneos_2w":
		chameneos(2, div, "2w")
	case "big_1w":
		big(1, div, "1w")
	case "big_2w":
		big(2, div, "2w")
	case "mixed_load":
		mixedLoad(div)
	default:
		fmt.Fprintf(os.Stderr, "DNF: case %q has no Go version\n", c)
		os.Exit(3)
	}
}
