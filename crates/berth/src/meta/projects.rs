//! Projects, project metadata and members: rows and queries (filled in by the projects change).
