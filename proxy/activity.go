package proxy

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/scimgate/scimgate/tokens"
)

// recorder notes the status and size of a response on its way out. Unwrap
// lets http.ResponseController reach Flush and Hijack, which server-sent
// events and WebSocket upgrades need.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	// body is the request's body, for the ErrorHandler to tell a client
	// error from an upstream failure; nil when there is none.
	body *bodyReader
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Flush() { http.NewResponseController(r.ResponseWriter).Flush() }

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// activity is one request as the activity log shows it.
type activity struct {
	at       time.Time
	identity *tokens.Identity // nil when refused or public
	refusal  string
	method   string
	path     string
	status   int
	bytes    int64
	duration time.Duration
	traceID  string
}

// ActivityLog writes one JSON line per request under the identity that made
// it. Requests never wait for it: a record is appended to a bounded batch
// under a mutex (no channel send, no goroutine to wake per request), and the
// writer takes the whole batch every flush interval. When the batch is full,
// records are dropped and counted.
type ActivityLog struct {
	mu      sync.Mutex
	pending []activity
	limit   int
	dropped atomic.Int64
	done    chan struct{}
	// TraceID, if set, returns the trace ID of a request's context.
	TraceID func(context.Context) string
}

// activityFlushInterval is how long a line may wait in memory.
const activityFlushInterval = 100 * time.Millisecond

// NewActivityLog returns a log holding at most buffer records between two
// writes. Run writes them.
func NewActivityLog(buffer int) *ActivityLog {
	return &ActivityLog{pending: make([]activity, 0, buffer), limit: buffer, done: make(chan struct{})}
}

// Dropped is how many records were lost because the buffer was full.
func (l *ActivityLog) Dropped() int64 { return l.dropped.Load() }

func (l *ActivityLog) record(r *http.Request, id *tokens.Identity, refusal error, rec *recorder, start time.Time) {
	a := activity{at: start, identity: id, method: r.Method, path: r.URL.Path, status: rec.status, bytes: rec.bytes, duration: time.Since(start)}
	// A type switch, not errors.As, which would cost two allocations per
	// request: admit returns its refusals unwrapped.
	switch e := refusal.(type) {
	case nil:
	case *tokens.AuthError:
		a.refusal = e.Reason
	case *forbiddenError:
		a.refusal = "missing_permission"
	case *requestError:
		a.refusal = e.reason
	case *assertionUnavailable:
		a.refusal = "assertion_unavailable"
	default:
		a.refusal = "store_unavailable"
	}
	if l.TraceID != nil {
		a.traceID = l.TraceID(r.Context())
	}
	l.mu.Lock()
	if len(l.pending) < l.limit {
		l.pending = append(l.pending, a)
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	l.dropped.Add(1)
}

// Run writes records to w every flush interval until ctx ends, then writes
// what is left and returns.
func (l *ActivityLog) Run(ctx context.Context, w io.Writer) {
	defer close(l.done)
	bw := bufio.NewWriterSize(w, 64*1024)
	tick := time.NewTicker(activityFlushInterval)
	defer tick.Stop()
	spare := make([]activity, 0, l.limit)
	var line []byte
	for {
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
		l.mu.Lock()
		batch := l.pending
		l.pending = spare
		l.mu.Unlock()
		for i := range batch {
			line = batch[i].appendJSON(line[:0])
			bw.Write(line)
		}
		bw.Flush()
		clear(batch) // drop the identities it points to
		spare = batch[:0]
		if ctx.Err() != nil {
			return
		}
	}
}

// Wait returns when Run has written everything and returned.
func (l *ActivityLog) Wait() { <-l.done }

// appendJSON writes the record as one JSON line. It never writes a token or
// its hash: only the token's ID and public display prefix.
func (a *activity) appendJSON(b []byte) []byte {
	b = append(b, `{"time":"`...)
	b = a.at.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if id := a.identity; id != nil {
		b = appendField(b, "kind", string(id.Kind))
		b = appendField(b, "identity_id", id.OwnerID)
		b = appendField(b, "identity_name", id.OwnerName)
		b = appendField(b, "org_id", id.OrgID)
		b = appendField(b, "org", id.OrgName)
		b = appendField(b, "token_id", id.TokenID)
		b = appendField(b, "token_prefix", id.DisplayPrefix)
	}
	if a.refusal != "" {
		b = appendField(b, "refused", a.refusal)
	}
	b = appendField(b, "method", a.method)
	b = appendField(b, "path", a.path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(a.status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, a.bytes, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(a.duration.Microseconds())/1000, 'f', 3, 64)
	if a.traceID != "" {
		b = appendField(b, "trace_id", a.traceID)
	}
	return append(b, "}\n"...)
}

func appendField(b []byte, key, value string) []byte {
	b = append(b, `,"`...)
	b = append(b, key...)
	b = append(b, `":`...)
	return appendJSONString(b, value)
}

// appendJSONString quotes s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
