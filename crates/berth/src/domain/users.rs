//! Users: accounts, passwords, system-admin flag (filled in by the users change).
