package tokens

import (
	"context"
	"time"
)

// Store persists the domain. tokens/sqlstore implements it on SQLite and
// PostgreSQL. Missing rows are reported as ErrNotFound, a database that
// cannot be reached as an error wrapping ErrUnavailable, and a broken
// uniqueness rule as an *Error with code Conflict.
type Store interface {
	// Update runs fn in one read-write transaction and commits it if fn
	// returns nil. Transactions that lock the same row (Tx.LockUser,
	// Tx.LockOrg) run one after the other, so limits hold under concurrency.
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(Tx) error) error

	// LookupCredential is the authenticator's one query on a cache miss.
	LookupCredential(ctx context.Context, h Hash) (*StoredCredential, error)
	// RecordUsage writes a batch of token uses in one statement: each
	// token's last use becomes the later of the stored and the given time,
	// and its use count grows by the given count.
	RecordUsage(ctx context.Context, uses []Usage) error
	// ChangesSince returns up to limit changes with a sequence above seq, in
	// sequence order.
	ChangesSince(ctx context.Context, seq int64, limit int) ([]Change, error)
	// LastChange is the highest sequence in the change log (0 if empty).
	LastChange(ctx context.Context) (int64, error)

	Ping(ctx context.Context) error
	Close() error
}

// Tx is what a transaction can read and write.
type Tx interface {
	CreateOrg(o *Org) error
	Org(id string) (*Org, error)
	OrgByName(name string) (*Org, error)
	Orgs() ([]Org, error)
	// LockOrg reads an org and holds it until the transaction ends.
	LockOrg(id string) (*Org, error)

	CreateUser(u *User) error
	UpdateUser(u *User) error
	// User returns a user of the org, removed or not.
	User(orgID, id string) (*User, error)
	// UserByName finds a user that is not removed, case-insensitively.
	UserByName(orgID, userName string) (*User, error)
	// LockUser reads a user and holds it until the transaction ends.
	LockUser(orgID, id string) (*User, error)
	Users(orgID string, f UserFilter) ([]User, int, error)

	CreateGroup(g *Group) error
	// UpdateGroup writes the group and replaces its members.
	UpdateGroup(g *Group) error
	DeleteGroup(orgID, id string) error
	Group(orgID, id string) (*Group, error)
	// LockGroup reads a group and holds it until the transaction ends, so
	// that two replicas changing its members one after the other both count.
	LockGroup(orgID, id string) (*Group, error)
	Groups(orgID string, f GroupFilter) ([]Group, int, error)
	// GroupsOfUser lists the display names of a user's groups.
	GroupsOfUser(userID string) ([]string, error)

	CreateServiceUser(s *ServiceUser) error
	UpdateServiceUser(s *ServiceUser) error
	ServiceUser(orgID, id string) (*ServiceUser, error)
	DeleteServiceUser(orgID, id string) error

	CreateToken(t *Token) error
	// UpdateToken writes every field of t but ID, OrgID, Kind, OwnerID,
	// CreatedAt, LastUsedAt and UseCount.
	UpdateToken(t *Token) error
	DeleteToken(orgID, id string) error
	// Token returns a token by ID; with orgID "" in any org.
	Token(orgID, id string) (*Token, error)
	Tokens(f TokenFilter) ([]Token, error)
	CountTokens(f TokenFilter) (int, error)
	// InactiveTokens lists active tokens whose inactivity window ended before now.
	InactiveTokens(now time.Time) ([]Token, error)

	AppendAudit(e *AuditEvent) error
	Audit(f AuditFilter) ([]AuditEvent, error)

	// AppendChange adds c to the change log; on commit every follower
	// learns of it. The store assigns Seq.
	AppendChange(c *Change) error

	// QueryUsers answers a Query of an org's users (see Query); the total
	// is -1 unless q.WithTotal.
	QueryUsers(orgID string, q Query) ([]User, int, error)
	// QueryGroups answers a Query of an org's groups, reading their
	// members only when withMembers.
	QueryGroups(orgID string, q Query, withMembers bool) ([]Group, int, error)
	// MemberCounts counts the members of the org's groups among groupIDs.
	MemberCounts(orgID string, groupIDs []string) (map[string]int, error)
	// GroupMembers pages through a group's member IDs in ID order (limit
	// 0: all); ErrNotFound if the org has no such group.
	GroupMembers(orgID, groupID string, offset, limit int) ([]string, error)
}

// UserFilter selects users. Empty fields match everything; Count 0 means no limit.
type UserFilter struct {
	UserName   string // case-insensitive equality
	ExternalID string
	Email      string // case-insensitive equality with any address
	Offset     int
	Count      int
	// WithRemoved includes users deleted from the org.
	WithRemoved bool
}

// GroupFilter selects groups. Empty fields match everything.
type GroupFilter struct {
	DisplayName string // case-insensitive equality
	ExternalID  string
	MemberID    string
	Offset      int
	Count       int
}

// TokenFilter selects tokens. Empty fields match everything.
type TokenFilter struct {
	OrgID   string
	Kind    Kind
	OwnerID string
	Status  Status
}

// AuditFilter selects audit events, newest first.
type AuditFilter struct {
	OrgID  string
	Target string
	Limit  int
}

// StoredCredential is what the authenticator reads on a cache miss: a token
// with what it needs of its owner.
type StoredCredential struct {
	Token     Token
	OrgName   string
	OwnerName string // the user name, or the service user's name
	// OwnerActive is false for a deactivated or removed user.
	OwnerActive  bool
	OwnerRemoved bool
	// Groups are the display names of a user's groups; nil for service tokens.
	Groups []string
	// PermissionSets are a service user's sets; nil for user tokens.
	PermissionSets []string
}

// Usage is a batch of uses of one token since the last flush.
type Usage struct {
	TokenID  string
	LastUsed time.Time
	Count    int64
}
