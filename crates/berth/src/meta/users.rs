//! Users: rows and queries (filled in by the users change).
