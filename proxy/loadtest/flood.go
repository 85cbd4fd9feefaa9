package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scimgate/scimgate/tokens"
)

// runFlood sends, at once and each at its own fixed rate, legitimate
// requests with the tokens of a file (one per line, used in turn, so that
// they stay cached) and a flood of distinct made-up tokens with valid
// checksums. It prints the latency of the legitimate requests and what
// became of both. Requests go over kept-alive connections, written and read
// by hand, so that the sender spends little of the CPU it shares with the
// server; a pool of connections per stream keeps the rate independent of
// how long an answer takes (up to the pool's size).
func runFlood(args []string) {
	fs := flag.NewFlagSet("flood", flag.ExitOnError)
	target := fs.String("target", "http://127.0.0.1:19002/orders", "URL to send every request to")
	file := fs.String("tokens", "", "file of legitimate tokens, one per line")
	floodRate := fs.Int("flood-rate", 10000, "made-up tokens per second, each distinct (0: none)")
	floodConns := fs.Int("flood-conns", 512, "connections for the flood")
	legitRate := fs.Int("legit-rate", 200, "legitimate requests per second")
	legitConns := fs.Int("legit-conns", 16, "connections for the legitimate requests")
	duration := fs.Duration("duration", 10*time.Second, "how long to send")
	malformed := fs.Bool("malformed", false, "flood with tokens whose checksum is wrong, refused before any lookup: the cost of the requests themselves")
	fs.Parse(args)
	legit, err := readTokens(*file)
	if err != nil {
		log.Fatal(err)
	}
	u, err := url.Parse(*target)
	if err != nil || u.Scheme != "http" {
		log.Fatalf("-target: want an http:// URL, not %q", *target)
	}
	request := func(token string) []byte {
		return []byte("GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nAuthorization: Bearer " + token + "\r\n\r\n")
	}
	// Made-up tokens are minted ahead, so that minting does not pace the sender.
	made := make([][]byte, *floodRate*int(duration.Seconds()+1))
	for i := range made {
		t := tokens.NewSecret(tokens.KindUser).Plaintext()
		if *malformed {
			t = t[:len(t)-6] + "000000"[:6]
			if _, err := tokens.Parse(t); err == nil {
				t = t[:len(t)-1] + "1"
			}
		}
		made[i] = request(t)
	}
	legitReqs := make([][]byte, len(legit))
	for i, t := range legit {
		legitReqs[i] = request(t)
	}

	legitStats, floodStats := newStream(), newStream()
	var wg sync.WaitGroup
	start := time.Now()
	legitStats.run(&wg, u.Host, *legitConns, *legitRate, *duration, start, func(i int) []byte { return legitReqs[i%len(legitReqs)] })
	floodStats.run(&wg, u.Host, *floodConns, *floodRate, *duration, start, func(i int) []byte { return made[i%len(made)] })
	wg.Wait()
	took := time.Since(start)

	l := legitStats.latencies
	slices.Sort(l)
	pct := func(p float64) string {
		if len(l) == 0 {
			return "-"
		}
		d := l[min(len(l)-1, int(p*float64(len(l))))]
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	}
	fmt.Printf("legit: %d answered (%.0f/s): %s; %d late (no free connection), %d errors; p50 %s p90 %s p99 %s\n",
		len(l), float64(len(l))/took.Seconds(), legitStats.statuses(), legitStats.late.Load(), legitStats.errors.Load(),
		pct(0.5), pct(0.9), pct(0.99))
	if *floodRate > 0 {
		n := len(floodStats.latencies)
		fmt.Printf("flood: %d answered (%.0f/s): %s; %d late (no free connection), %d errors\n",
			n, float64(n)/took.Seconds(), floodStats.statuses(), floodStats.late.Load(), floodStats.errors.Load())
	}
}

// stream is one kind of request: its latencies and answers.
type stream struct {
	mu        sync.Mutex
	latencies []time.Duration
	status    map[int]int
	late      atomic.Int64 // not sent: every connection was busy
	errors    atomic.Int64
}

func newStream() *stream { return &stream{status: map[int]int{}} }

// run sends rate requests a second for d over conns connections. A request
// that finds every connection busy is counted late and dropped, so the rate
// never falls behind its schedule unnoticed.
func (s *stream) run(wg *sync.WaitGroup, host string, conns, rate int, d time.Duration, start time.Time, req func(i int) []byte) {
	if rate <= 0 {
		return
	}
	work := make(chan int, conns)
	for range conns {
		wg.Go(func() { s.worker(host, work, req) })
	}
	wg.Go(func() {
		defer close(work)
		interval := time.Second / time.Duration(rate)
		for i := 0; ; i++ {
			at := start.Add(time.Duration(i) * interval)
			if at.Sub(start) >= d {
				return
			}
			if w := time.Until(at); w > 50*time.Microsecond {
				time.Sleep(w)
			}
			select {
			case work <- i:
			default:
				s.late.Add(1)
			}
		}
	})
}

func (s *stream) worker(host string, work <-chan int, req func(i int) []byte) {
	var conn net.Conn
	var r *bufio.Reader
	for i := range work {
		if conn == nil {
			c, err := net.Dial("tcp", host)
			if err != nil {
				s.errors.Add(1)
				continue
			}
			conn, r = c, bufio.NewReader(c)
		}
		sent := time.Now()
		_, err := conn.Write(req(i))
		var resp *http.Response
		if err == nil {
			resp, err = http.ReadResponse(r, nil)
		}
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if err != nil {
			s.errors.Add(1)
			conn.Close()
			conn = nil
			continue
		}
		took := time.Since(sent)
		s.mu.Lock()
		s.status[resp.StatusCode]++
		if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
			s.latencies = append(s.latencies, took)
		}
		s.mu.Unlock()
		if resp.Close {
			conn.Close()
			conn = nil
		}
	}
	if conn != nil {
		conn.Close()
	}
}

func (s *stream) statuses() string {
	var out []string
	for code, n := range s.status {
		out = append(out, fmt.Sprintf("%d×%d", n, code))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func readTokens(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("-tokens: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if t := strings.TrimSpace(sc.Text()); t != "" {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-tokens: %s holds no token", path)
	}
	return out, sc.Err()
}
