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
	// fn may run once more, in a new transaction, when the first lost its
	// database connection before it could commit: it must derive what it
	// writes from what it reads in the transaction and keep no state from
	// a previous run (assign captured variables, never append or add).
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in a read-only transaction; like Update's, fn may run
	// once more.
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
	// TokenHashes returns up to limit hashes of stored tokens (any status)
	// above after, in byte order: one page of the authenticator's index load.
	TokenHashes(ctx context.Context, after Hash, limit int) ([]Hash, error)

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

	// Web console sessions (see Session).
	CreateSession(s *Session) error
	SessionByHash(h Hash) (*Session, error)
	TouchSession(id string, seen time.Time) error
	DeleteSession(id string) error
	// DeleteStaleSessions deletes the sessions that expired before
	// expiredBefore or were last seen before seenBefore.
	DeleteStaleSessions(expiredBefore, seenBefore time.Time) (int, error)

	// TokenPage lists tokens with their owners' names, in (CreatedAt, ID)
	// order, after a keyset cursor: a few indexed queries whatever the size
	// of the org.
	TokenPage(f TokenPageFilter) ([]OwnedToken, error)
	// TokenByHash finds a token by the hash of its secret, in any org.
	TokenByHash(h Hash) (*Token, error)
	// CountSeats counts what the seats report of an org shows.
	CountSeats(orgID string, now time.Time) (*Seats, error)

	SiteTx

	// GroupsOfUsers lists the groups of each of the org's users named.
	GroupsOfUsers(orgID string, userIDs []string) (map[string][]GroupRef, error)
	// DisplayNames gives each of the org's users named that is not
	// removed the name to show for them: the display name, or the user
	// name when it is empty. Those it leaves out are no such users.
	DisplayNames(orgID string, userIDs []string) (map[string]string, error)
}

// SiteTx is what a transaction can read and write of sites. User reads
// (User, UserByName, LockUser, Users) fill User.Sites.
type SiteTx interface {
	// CreateSite adds a site; a name or external ID taken in the org is a
	// Conflict.
	CreateSite(s *Site) error
	// EnsureSite returns the org's site named s.Name, creating it from s
	// if there is none, and whether it did. Two transactions ensuring the
	// same new name both get the one site.
	EnsureSite(s *Site) (site *Site, created bool, err error)
	// DeleteSite deletes a site and its memberships.
	DeleteSite(orgID, id string) error
	Site(orgID, id string) (*Site, error)
	// SiteByName finds a site of the org case-insensitively.
	SiteByName(orgID, name string) (*Site, error)
	// Sites lists an org's sites with their member counts, by name.
	Sites(orgID string) ([]Site, error)
	// SiteMembers lists the IDs of a site's members.
	SiteMembers(siteID string) ([]string, error)
	// SitesOfUser lists a user's sites.
	SitesOfUser(userID string) ([]Site, error)
	// SetUserSites makes siteIDs (sites of the user's org) the user's sites.
	SetUserSites(userID string, siteIDs []string) error
	// SitePage lists an org's sites with their member counts in the order
	// of their lower-cased names, after a keyset cursor: one indexed query
	// whatever the number of sites.
	SitePage(f SitePageFilter) ([]Site, error)
	// SiteMemberPage lists a site's members in user ID order, after a
	// keyset cursor (afterUserID, "" for the first page): the primary key's
	// order, whatever the size of the site.
	SiteMemberPage(siteID, afterUserID string, limit int) ([]SiteMember, error)
	// CountSiteMembers counts a site's members.
	CountSiteMembers(siteID string) (int, error)
}

// SitePageFilter selects a page of an org's sites.
type SitePageFilter struct {
	OrgID string // required
	// MemberID, if set, selects the sites that user is a member of.
	MemberID string
	// AfterName, if set, is the lower-cased name of the last site of the
	// previous page: the page starts after it.
	AfterName string
	Limit     int // required, above 0
}

// SiteMember is a member of a site as a listing shows them.
type SiteMember struct {
	UserID      string
	UserName    string
	DisplayName string
	Active      bool
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
	// Action, if set, selects events of that action only ("token.revoke").
	Action string
	// BeforeID, if not 0, selects events older than that one: the keyset
	// cursor of the next page.
	BeforeID int64
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
	// Sites are the names of a user's sites, sorted; nil for service tokens.
	Sites []string
	// PermissionSets are a service user's sets; nil for user tokens.
	PermissionSets []string
}

// Usage is a batch of uses of one token since the last flush.
type Usage struct {
	TokenID  string
	LastUsed time.Time
	Count    int64
}

// TokenPageFilter selects a page of tokens of one kind in one org. Empty
// fields match everything.
type TokenPageFilter struct {
	OrgID   string // required
	Kind    Kind   // required
	OwnerID string
	// Status selects by the status the authenticator applies at Now: an
	// active token past its inactivity window counts as expired even before
	// the sweep marks it so.
	Status Status
	Now    time.Time
	// NamePrefix selects names that start with it, case-sensitively.
	NamePrefix string
	// AfterCreatedAt and AfterID, when AfterID is set, are the last token of
	// the previous page: the page starts after it.
	AfterCreatedAt time.Time
	AfterID        string
	Limit          int // required, above 0
}

// OwnedToken is a token with what a listing shows of its owner.
type OwnedToken struct {
	Token
	// OwnerName is the person's user name, or the service user's name.
	OwnerName string
	// PermissionSets are a service user's sets; nil for user tokens.
	PermissionSets []string
}
