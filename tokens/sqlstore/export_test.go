package sqlstore

// LookupQuery is LookupCredential's query, for the test of its plan.
func (s *Store) LookupQuery() string { return s.lookupQuery() }
