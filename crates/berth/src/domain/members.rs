//! Project members and their roles (filled in by the projects change).
