package admin

import (
	"time"

	"github.com/scimgate/scimgate/tokens"
)

// The JSON of the API. Field names are snake_case, like the command line's
// --json output; times are RFC 3339 in UTC; a time that has not happened is
// null. openapi.json describes each of these; the tests hold every response
// to it.

// Token is a token as the API shows it: never its secret or hash.
type Token struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"`
	Org   string `json:"org"`
	OrgID string `json:"org_id"`
	Name  string `json:"name"`
	// Owner is the person's user name (user tokens) or the service user's
	// name (service tokens).
	Owner           string     `json:"owner"`
	OwnerID         string     `json:"owner_id"`
	DisplayPrefix   string     `json:"display_prefix"`
	Status          string     `json:"status"`
	StatusReason    string     `json:"status_reason"`
	StatusChangedAt time.Time  `json:"status_changed_at"`
	InactivityDays  int        `json:"inactivity_days"`
	ExpiresAt       *time.Time `json:"expires_at"`
	CreatedAt       time.Time  `json:"created_at"`
	LastUsedAt      *time.Time `json:"last_used_at"`
	UseCount        int64      `json:"use_count"`
	// PermissionSets are a service token's; absent for a user token,
	// which has its owner's.
	PermissionSets []string `json:"permission_sets,omitempty"`
}

// NewToken is a token just created or regenerated, with its plaintext:
// the one time anyone sees it.
type NewToken struct {
	Secret string `json:"token"`
	Token
}

// TokenList is one page of tokens.
type TokenList struct {
	Tokens     []Token `json:"tokens"`
	NextCursor *string `json:"next_cursor"`
}

// Done answers a change that leaves nothing to show: the token's ID, what
// became of it, and whether it was the token of the request itself.
type Done struct {
	ID      string `json:"id"`
	Result  string `json:"result"` // "deleted" or "revoked"
	Self    bool   `json:"self"`
	Message string `json:"message"`
}

// Me is who the caller is.
type Me struct {
	Kind           string   `json:"kind"`
	Org            string   `json:"org"`
	OrgID          string   `json:"org_id"`
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	Token          *Token   `json:"token"`
	Groups         []string `json:"groups"`
	PermissionSets []string `json:"permission_sets"`
	Permissions    []string `json:"permissions"`
	// UserTokens is, for a person, how many of their active user tokens
	// are used; null for a service user.
	UserTokens *UserTokenCount `json:"user_tokens"`
}

// UserTokenCount is how many of a person's user tokens are active.
type UserTokenCount struct {
	Active int `json:"active"`
	Max    int `json:"max"`
}

// PermissionSet is a set or single permission a service token can hold.
type PermissionSet struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
	Grantable   bool     `json:"grantable"`
	Missing     []string `json:"missing"`
}

// PermissionSetList lists them.
type PermissionSetList struct {
	PermissionSets []PermissionSet `json:"permission_sets"`
}

// AuditEvent is one entry of the audit trail.
type AuditEvent struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Org    string    `json:"org"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Detail string    `json:"detail"`
}

// AuditList is one page of the audit trail, newest first.
type AuditList struct {
	Events     []AuditEvent `json:"events"`
	NextCursor *string      `json:"next_cursor"`
}

// Seats is the seats report.
type Seats struct {
	Org string `json:"org"`
	// Seats is the number of seats: every active person.
	Seats                  int `json:"seats"`
	ActivePeople           int `json:"active_people"`
	PeopleWithActiveTokens int `json:"people_with_active_tokens"`
	// ServiceUsers never take a seat.
	ServiceUsers        int `json:"service_users"`
	ActiveServiceTokens int `json:"active_service_tokens"`
}

// LeakReportResult answers a leak report: one finding per token reported,
// in order, and the counts.
type LeakReportResult struct {
	Findings    []LeakFinding `json:"findings"`
	Live        int           `json:"live"`
	AlreadyDead int           `json:"already_dead"`
	Unknown     int           `json:"unknown"`
	Malformed   int           `json:"malformed"`
}

// LeakFinding is what a report did about one token.
type LeakFinding struct {
	DisplayPrefix string `json:"display_prefix"`
	Kind          string `json:"kind"`
	Outcome       string `json:"outcome"`
	WasLive       bool   `json:"was_live"`
	// Token describes it as it was, for a reporter who may see it.
	Token *Token `json:"token"`
}

// GitHubFeedback is the answer to one match of GitHub secret scanning.
type GitHubFeedback struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"` // true_positive or false_positive
}

func tokenOf(t *tokens.TokenInfo) Token {
	v := Token{
		ID: t.ID, Kind: string(t.Kind), Org: t.OrgName, OrgID: t.OrgID, Name: t.Name,
		Owner: t.OwnerName, OwnerID: t.OwnerID, DisplayPrefix: t.DisplayPrefix,
		Status: string(t.Status), StatusReason: string(t.StatusReason), StatusChangedAt: t.StatusChangedAt.UTC(),
		InactivityDays: t.InactivityDays, ExpiresAt: timeOrNull(t.ExpiresAt), CreatedAt: t.CreatedAt.UTC(),
		LastUsedAt: timeOrNull(t.LastUsedAt), UseCount: t.UseCount,
	}
	if t.Kind == tokens.KindService {
		v.PermissionSets = t.PermissionSets
		if v.PermissionSets == nil {
			v.PermissionSets = []string{}
		}
	}
	return v
}

func timeOrNull(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func tokenList(page *tokens.TokenPage) TokenList {
	list := TokenList{Tokens: make([]Token, len(page.Tokens))}
	for i := range page.Tokens {
		list.Tokens[i] = tokenOf(&page.Tokens[i])
	}
	if page.Next != "" {
		list.NextCursor = &page.Next
	}
	return list
}

func emptyIfNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
