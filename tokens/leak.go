package tokens

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// Leak response: plaintext tokens found where they should not be (a public
// repository, a log, a paste) are reported, and each one still live is
// stopped at once: a service token revoked (an admin can regenerate it), a
// user token deleted. The token format's prefix and checksum make them
// recognisable to a secret scanner.
//
// Holding a token's plaintext is all the authority needed to kill it:
// whoever holds it could use it, and stopping it is the safe direction. So a
// report needs no other credential. What a report answers about a token
// beyond its fate (its ID, org and owner) is shown only to a reporter who
// may see that token anyway.

// TokenPattern is a regular expression (RE2, as Go and GitHub secret
// scanning read it) that matches scimgate tokens in text: what a secret
// scanner looks for. A match is a token only if its checksum holds (Parse).
const TokenPattern = `\bsg[us]_[0-9A-Za-z]{38}\b`

// MaxLeakReportTokens bounds the tokens of one report.
const MaxLeakReportTokens = 100

// maxFoundAt bounds the length of where a token was found.
const maxFoundAt = 2000

// Leak is one token reported as leaked.
type Leak struct {
	// Token is the plaintext as found; surrounding spaces are ignored.
	Token string
	// FoundAt says where it was found (a URL, a file, a log), for the audit
	// trail. Optional.
	FoundAt string
}

// LeakOutcome is what a report did about one token.
type LeakOutcome string

const (
	// LeakRevoked: a live service token, revoked by this report.
	LeakRevoked LeakOutcome = "revoked"
	// LeakDeleted: a live user token, deleted by this report.
	LeakDeleted LeakOutcome = "deleted"
	// LeakAlreadyDead: a token of this scimgate that no longer worked
	// (revoked or expired) before the report.
	LeakAlreadyDead LeakOutcome = "already_dead"
	// LeakUnknown: a well-formed token this scimgate does not hold: never
	// issued here, deleted, or replaced by a regeneration.
	LeakUnknown LeakOutcome = "unknown"
	// LeakMalformed: not a scimgate token at all (wrong prefix, length,
	// alphabet or checksum).
	LeakMalformed LeakOutcome = "malformed"
)

// WasLive reports whether the token worked until the report stopped it.
func (o LeakOutcome) WasLive() bool { return o == LeakRevoked || o == LeakDeleted }

// ReasonLeaked is the reason of a service token revoked by a leak report.
const ReasonLeaked Reason = "leaked"

// LeakFinding is the answer about one reported token, in the order reported.
type LeakFinding struct {
	// DisplayPrefix is the token's public start, so that the answer tells
	// tokens apart without repeating a secret; empty for a malformed one.
	DisplayPrefix string
	// Kind is the kind the prefix says; empty for a malformed token.
	Kind    Kind
	Outcome LeakOutcome
	// Token describes the token as it was before the report, for a reporter
	// who may see it (PermTokens in its org, its owner, or the operator);
	// nil otherwise, and for unknown and malformed tokens.
	Token *TokenInfo
}

// ReportLeak stops every live token among leaks, for a reporter who is
// not a Caller: the operator at the command line (actor Operator, who sees
// every token's details), or an unauthenticated report named by where it
// came from (AnonymousReporter), who sees only each token's fate.
func (s *Service) ReportLeak(ctx context.Context, actor Actor, leaks []Leak) ([]LeakFinding, error) {
	if err := checkLeaks(leaks); err != nil {
		return nil, err
	}
	// Most reports made without a token name no token of ours (a scanner's
	// false positive, or a flood): they are answered from a read, and never
	// take the write lock.
	var known bool
	err := s.view(ctx, func(tx Tx) (err error) {
		known, err = anyKnown(tx, leaks)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("report leaked tokens: %w", err)
	}
	if !known {
		return unknownFindings(leaks), nil
	}
	var findings []LeakFinding
	err = s.update(ctx, actor, func(t *txn) (err error) {
		findings, err = s.reportLeaks(t, leaks, func(*Token) bool { return actor == Operator }, string(actor))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("report leaked tokens: %w", err)
	}
	return findings, nil
}

// anyKnown reports whether any well-formed token among leaks is stored.
func anyKnown(tx Tx, leaks []Leak) (bool, error) {
	for _, leak := range leaks {
		sec, err := Parse(strings.TrimSpace(leak.Token))
		if err != nil {
			continue
		}
		switch _, err := tx.TokenByHash(sec.Hash()); {
		case err == nil:
			return true, nil
		case !errors.Is(err, ErrNotFound):
			return false, err
		}
	}
	return false, nil
}

// unknownFindings answers a report of which no token is stored.
func unknownFindings(leaks []Leak) []LeakFinding {
	findings := make([]LeakFinding, len(leaks))
	for i, leak := range leaks {
		sec, err := Parse(strings.TrimSpace(leak.Token))
		if err != nil {
			findings[i] = LeakFinding{Outcome: LeakMalformed}
			continue
		}
		findings[i] = LeakFinding{DisplayPrefix: sec.DisplayPrefix(), Kind: sec.Kind, Outcome: LeakUnknown}
	}
	return findings
}

// AnonymousReporter names, in the audit trail, a leak report made without a
// token, by where it came from (the client's address as the transport saw
// it, perhaps with its user agent).
func AnonymousReporter(from string) Actor {
	return Actor("anonymous report from " + sanitize(from, 200))
}

// ReportLeak stops every live token among leaks, reported by the caller.
// Any caller may report (the plaintext is the authority); the answer
// describes a token only if the caller may see it: its own, or any of its
// org's with PermTokens.
func (m *Manager) ReportLeak(ctx context.Context, leaks []Leak) ([]LeakFinding, error) {
	if err := checkLeaks(leaks); err != nil {
		return nil, err
	}
	var findings []LeakFinding
	err := m.s.update(ctx, "", func(t *txn) error {
		a, err := m.s.authorize(t, m.c)
		if err != nil {
			return err
		}
		t.setActor(a)
		findings, err = m.s.reportLeaks(t, leaks, m.visible(a), string(t.actor))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("report leaked tokens: %w", err)
	}
	return findings, nil
}

// visible says whether the caller may see a token's details.
func (m *Manager) visible(a *authority) func(*Token) bool {
	return func(tok *Token) bool {
		if tok.OrgID != m.c.OrgID {
			return false
		}
		return tok.ID == m.c.TokenID || m.ownsUserToken(tok) || a.has(PermTokens)
	}
}

func checkLeaks(leaks []Leak) error {
	switch {
	case len(leaks) == 0:
		return Errorf(Invalid, "no tokens reported: give at least one")
	case len(leaks) > MaxLeakReportTokens:
		return Errorf(Invalid, "%d tokens in one report, more than %d: split the report", len(leaks), MaxLeakReportTokens)
	}
	return nil
}

// sanitize keeps free text for the audit trail: no control characters,
// bounded length.
func sanitize(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8Start(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

func (s *Service) reportLeaks(t *txn, leaks []Leak, visible func(*Token) bool, reporter string) ([]LeakFinding, error) {
	findings := make([]LeakFinding, len(leaks))
	seen := map[Hash]int{} // a token reported twice is answered once
	orgNames := map[string]string{}
	for i, leak := range leaks {
		sec, err := Parse(strings.TrimSpace(leak.Token))
		if err != nil {
			findings[i] = LeakFinding{Outcome: LeakMalformed}
			continue
		}
		h := sec.Hash()
		if j, ok := seen[h]; ok {
			findings[i] = findings[j]
			continue
		}
		seen[h] = i
		f := LeakFinding{DisplayPrefix: sec.DisplayPrefix(), Kind: sec.Kind, Outcome: LeakUnknown}
		tok, err := t.TokenByHash(h)
		if errors.Is(err, ErrNotFound) {
			findings[i] = f
			continue
		}
		if err != nil {
			return nil, err
		}
		if visible(tok) {
			if f.Token, err = s.describe(t, tok, orgNames[tok.OrgID]); err != nil {
				return nil, err
			}
			orgNames[tok.OrgID] = f.Token.OrgName
		}
		live := tok.Status == StatusActive && !t.now.After(tok.InactivityDeadline())
		what := fmt.Sprintf("%s token %q (%s)", tok.Kind, tok.Name, tok.DisplayPrefix)
		where := "where it was found was not given"
		if at := sanitize(leak.FoundAt, maxFoundAt); at != "" {
			where = "found at " + at
		}
		switch {
		case !live:
			f.Outcome = LeakAlreadyDead
		case tok.Kind == KindService:
			f.Outcome = LeakRevoked
			tok.Status, tok.StatusReason, tok.StatusChangedAt = StatusRevoked, ReasonLeaked, t.now
			if err := t.UpdateToken(tok); err != nil {
				return nil, err
			}
		default:
			f.Outcome = LeakDeleted
			if err := t.DeleteToken(tok.OrgID, tok.ID); err != nil {
				return nil, err
			}
		}
		detail := fmt.Sprintf("%s reported leaked by %s, %s: %s", what, reporter, where, strings.ReplaceAll(string(f.Outcome), "_", " "))
		if err := t.audit(tok.OrgID, "token.leak_report", tok.ID, detail); err != nil {
			return nil, err
		}
		if f.Outcome.WasLive() {
			if err := t.invalidate(tok.ID, ""); err != nil {
				return nil, err
			}
		}
		findings[i] = f
	}
	return findings, nil
}

// ---- Inspect ----

// InspectToken describes the token whose plaintext is given, without
// changing anything, with no caller rules: for the command line that opens
// the database itself. A malformed token is Invalid; a well-formed one this
// scimgate does not hold is NotFound.
func (s *Service) InspectToken(ctx context.Context, plaintext string) (info *TokenInfo, err error) {
	err = s.view(ctx, func(tx Tx) error {
		tok, err := tokenByPlaintext(tx, plaintext)
		if err != nil {
			return err
		}
		info, err = s.describe(tx, tok, "")
		return err
	})
	return info, err
}

// InspectToken describes the token whose plaintext is given, without
// changing anything: the caller's own token or user token, or any token of
// its org with PermTokens.
func (m *Manager) InspectToken(ctx context.Context, plaintext string) (info *TokenInfo, err error) {
	err = m.s.view(ctx, func(tx Tx) error {
		a, err := m.s.authorize(tx, m.c)
		if err != nil {
			return err
		}
		tok, err := tokenByPlaintext(tx, plaintext)
		if err != nil {
			return err
		}
		if tok.OrgID != m.c.OrgID {
			return Errorf(Forbidden, "the token belongs to another org: only that org's admins can inspect it")
		}
		if !m.visible(a)(tok) {
			return a.require(PermTokens, "inspecting another person's or a service user's token")
		}
		info, err = m.s.describe(tx, tok, a.org.Name)
		return err
	})
	return info, err
}

func tokenByPlaintext(tx Tx, plaintext string) (*Token, error) {
	sec, err := Parse(strings.TrimSpace(plaintext))
	if err != nil {
		return nil, Errorf(Invalid, "not a scimgate token: a token is sgu_ or sgs_ followed by 38 letters and digits, with a checksum that does not match if it was mistyped or cut")
	}
	tok, err := tx.TokenByHash(sec.Hash())
	if err != nil {
		return nil, notFound(err, "no such token (%s…): it was never issued here, or was deleted or regenerated", sec.DisplayPrefix())
	}
	return tok, nil
}
