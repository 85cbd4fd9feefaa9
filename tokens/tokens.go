// Package tokens is scimgate's domain: organizations, the people an identity
// provider provisions, their groups, service users, API tokens with their
// lifecycle rules and limits, permission sets, the audit trail, and the
// authenticator that turns a bearer token into an identity.
//
// It knows nothing of HTTP or SQL: transports call Service and Authenticator,
// and a Store persists what they decide.
package tokens

import "time"

// Kind tells a person's token from a service user's.
type Kind string

const (
	KindUser    Kind = "user"
	KindService Kind = "service"
)

// Status is where a token is in its lifecycle.
type Status string

const (
	StatusActive  Status = "active"
	StatusRevoked Status = "revoked"
	StatusExpired Status = "expired"
)

// Reason says why a token left the active status.
type Reason string

const (
	ReasonRevoked         Reason = "revoked"
	ReasonInactivity      Reason = "inactivity"
	ReasonUserDeactivated Reason = "user_deactivated"
	ReasonUserRemoved     Reason = "user_removed"
)

// Limits and windows from the product documents.
const (
	MaxActiveUserTokens    = 10 // per user
	MaxActiveServiceTokens = 20 // per organization

	DefaultInactivityDays = 45
)

// ServiceInactivityDays are the inactivity windows a service token may have.
var ServiceInactivityDays = []int{31, 45, 60, 180}

// Org is an organization: the unit every user, group, service user and token
// belongs to. A person in two orgs is two users with separate tokens.
type Org struct {
	ID   string
	Name string
	// UserTokenInactivityDays is the inactivity window of the org's user tokens.
	UserTokenInactivityDays int
	CreatedAt               time.Time
}

// User is a person, usually provisioned by an identity provider over SCIM.
type User struct {
	ID         string
	OrgID      string
	UserName   string // unique in the org, compared case-insensitively
	ExternalID string

	DisplayName string
	GivenName   string
	FamilyName  string
	Emails      []Email

	EmployeeNumber string
	ManagerID      string

	// Sites are the names of the sites the person is a member of, sorted.
	// Writing a user (CreateUser, ReplaceUser) with nil Sites leaves the
	// memberships as they are; a non-nil slice, even empty, replaces them.
	Sites []string

	// Active is false once the identity provider deactivates the person.
	Active bool
	// Removed marks a user deleted from the org; the row stays for the audit
	// trail but the user is gone from every listing.
	Removed bool

	CreatedAt time.Time
	UpdatedAt time.Time
	// Version grows with every change; it is the SCIM ETag.
	Version int64
}

// Email is one of a user's addresses.
type Email struct {
	Value   string `json:"value"`
	Type    string `json:"type,omitempty"`
	Primary bool   `json:"primary,omitempty"`
}

// Group is a set of users. Groups grant permission sets (see Policy).
type Group struct {
	ID          string
	OrgID       string
	DisplayName string
	ExternalID  string
	MemberIDs   []string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Version     int64
}

// GroupRef names a group a user is a member of.
type GroupRef struct {
	ID          string
	DisplayName string
}

// Site is a place or unit of an organization (an office, a plant, a store)
// that people are members of, as they are of groups. A user token carries
// its owner's sites upstream, so the upstream can limit what a person sees
// to their sites; a service token never has sites.
type Site struct {
	ID    string
	OrgID string
	// Name is unique in the org, compared case-insensitively. It holds no
	// comma: lists of sites (a SCIM value, an identity header) use commas.
	Name string
	// ExternalID optionally ties the site to another system's record; it
	// is unique in the org when set.
	ExternalID string
	CreatedAt  time.Time
	// Members is how many people are members (read-only, from listings).
	Members int
}

// ServiceUser is a non-person account that owns one service token. It never
// appears among users and never takes a seat.
type ServiceUser struct {
	ID             string
	OrgID          string
	Name           string
	PermissionSets []string
	CreatedAt      time.Time
}

// Token is an API token as stored: never the plaintext, only its hash.
type Token struct {
	ID      string
	OrgID   string
	Kind    Kind
	OwnerID string // a User's ID for KindUser, a ServiceUser's for KindService
	Name    string
	// DisplayPrefix is the public start of the token, safe to show and log.
	DisplayPrefix  string
	Hash           Hash
	InactivityDays int

	Status          Status
	StatusReason    Reason
	StatusChangedAt time.Time

	CreatedAt  time.Time
	LastUsedAt time.Time // zero until first use
	// UseCount is how many requests the token has made, as of the last flush.
	UseCount int64
}

// InactiveSince is when the inactivity clock started: the last use, or the
// creation of a token never used.
func (t *Token) InactiveSince() time.Time {
	if t.LastUsedAt.After(t.CreatedAt) {
		return t.LastUsedAt
	}
	return t.CreatedAt
}

// InactivityWindow is how long the token may go unused.
func (t *Token) InactivityWindow() time.Duration {
	return time.Duration(t.InactivityDays) * 24 * time.Hour
}

// AuditEvent records one change, who made it and to what.
type AuditEvent struct {
	ID     int64
	OrgID  string
	At     time.Time
	Actor  string // see Actor
	Action string // e.g. "token.revoke", "user.deactivate"
	Target string // the ID of what changed
	Detail string // a human-readable summary; never a secret
}

// Change is one entry of the invalidation log: every change that can refuse
// a token names the token or its owner, so that every running process can
// forget what it cached about them.
type Change struct {
	Seq     int64
	TokenID string
	OwnerID string
	At      time.Time
	// Added and Removed are the IndexKey of a token hash that starts or
	// stops existing with this change (a token created, regenerated or
	// deleted), so that every process's index of live tokens follows the
	// log without reading the tokens; 0 for none.
	Added   uint64
	Removed uint64
}
