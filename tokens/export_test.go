package tokens

// SetBeforeCaching makes a's lookups call f just before they cache an
// answer, so that a test can invalidate the token at that moment.
func SetBeforeCaching(a *Authenticator, f func()) { a.beforeCaching = f }
