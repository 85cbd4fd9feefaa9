package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) records() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func TestRepeatLogCountsRepeats(t *testing.T) {
	buf := &syncBuffer{}
	l := newRepeatLog(slog.New(slog.NewJSONHandler(buf, nil)), 200*time.Millisecond)
	ctx := context.Background()
	for range 30 {
		l.log(ctx, slog.LevelError, "store unavailable", "connection refused", slog.String("err", "connection refused"))
	}
	l.log(ctx, slog.LevelError, "store unavailable", "timeout", slog.String("err", "timeout")) // another error
	if got := buf.records(); len(got) != 2 {
		t.Fatalf("31 errors of 2 kinds logged %d lines at once, want 2: %v", len(got), got)
	}
	time.Sleep(350 * time.Millisecond)
	got := buf.records()
	if len(got) != 3 || got[2]["msg"] != "store unavailable (repeated)" || got[2]["repeated"] != float64(29) || got[2]["err"] != "connection refused" {
		t.Fatalf("after the interval: %v, want one more line saying the first error repeated 29 times", got)
	}
	// Quiet for an interval: forgotten, so that the next one is logged at once.
	time.Sleep(500 * time.Millisecond)
	l.log(ctx, slog.LevelError, "store unavailable", "connection refused", slog.String("err", "connection refused"))
	if got := buf.records(); len(got) != 4 {
		t.Errorf("an error after a quiet interval: %d lines, want 4", len(got))
	}
}
