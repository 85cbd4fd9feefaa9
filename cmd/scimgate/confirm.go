package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// confirmTimeout bounds how long a command waits for the running servers
// to confirm that they applied its change.
const confirmTimeout = 3 * time.Second

// propagationView is what a command that revokes found about the scimgate
// servers running on the database (those that reported to it in the last
// sqlstore.ServerGone): how many there are, how many confirmed that they
// applied the change, and how long after the commit the last did.
type propagationView struct {
	Servers  int                 `json:"servers"`
	Applied  int                 `json:"applied"`
	WithinMS float64             `json:"within_ms"`
	Pending  []pendingServerView `json:"pending,omitempty"`
	// Error is why the servers could not be asked; nothing is known then.
	Error string `json:"error,omitempty"`
}

type pendingServerView struct {
	Host     string    `json:"host"`
	PID      int       `json:"pid"`
	LastSeen time.Time `json:"last_seen"`
}

// confirmApplied waits until every scimgate server running on the database
// has applied the change this command committed (at most confirmTimeout),
// and returns what it found; nil if the command committed no change.
func (c *cli) confirmApplied(ctx context.Context) *propagationView {
	if c.lastChange == 0 || c.store == nil {
		return nil
	}
	p, err := c.store.AwaitServers(ctx, c.lastChange, c.committedAt, confirmTimeout)
	if err != nil {
		return &propagationView{Error: err.Error()}
	}
	v := &propagationView{Servers: len(p.Applied) + len(p.Pending), Applied: len(p.Applied),
		WithinMS: float64(p.Within.Microseconds()) / 1000}
	for _, s := range p.Pending {
		v.Pending = append(v.Pending, pendingServerView{Host: s.Host, PID: s.PID, LastSeen: s.SeenAt.UTC()})
	}
	return v
}

// sentence says what holds, for a change that running servers have
// "refused" (done) and that a server "refuses it" (does).
func (v *propagationView) sentence(done, does string) string {
	const stale = "a server that cannot read the change log stops trusting its cached tokens auth.stale_after (5s by default) after it last could"
	within := fmt.Sprintf("%.1fms", v.WithinMS)
	switch {
	case v.Error != "":
		return fmt.Sprintf("which running scimgate servers %s is unknown (%s); each does once it reads the change log, and %s", does, v.Error, stale)
	case v.Servers == 0:
		return "no scimgate server is running on this database; any that starts " + does
	case v.Applied == v.Servers && v.Servers == 1:
		return fmt.Sprintf("%s by the one scimgate server running on this database, %s after the commit", done, within)
	case v.Applied == v.Servers:
		return fmt.Sprintf("%s by all %d scimgate servers running on this database, the last %s after the commit", done, v.Servers, within)
	}
	var pending []string
	for _, s := range v.Pending {
		pending = append(pending, fmt.Sprintf("%s (pid %d, last heard from %s ago)", s.Host, s.PID, time.Since(s.LastSeen).Round(time.Second)))
	}
	applied := fmt.Sprintf("%s by %d of the %d scimgate servers running on this database", done, v.Applied, v.Servers)
	if v.Applied > 0 {
		applied += ", the last " + within + " after the commit"
	}
	return fmt.Sprintf("%s; not confirmed within %s by %s: each %s once it reads the change log, and %s",
		applied, confirmTimeout, strings.Join(pending, ", "), does, stale)
}
