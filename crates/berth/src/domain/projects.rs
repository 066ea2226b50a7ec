//! Projects as the registry sees them: existence and the caller's access facts.

use crate::app::App;
use crate::auth::policy::{Principal, ProjectFacts};
use crate::error::{Error, Result};
use crate::meta::ProjectRow;
use oci::ErrorCode;

/// The project and the principal's facts in it, or None if it does not exist.
pub async fn facts(app: &App, project: &str, principal: &Principal) -> Result<Option<(ProjectRow, ProjectFacts)>> {
    let Some(row) = app.meta.project_by_name(project).await? else { return Ok(None) };
    let roles = match principal.user_id() {
        Some(uid) => app.meta.member_roles(row.id, uid).await?,
        None => vec![],
    };
    let facts = ProjectFacts { public: row.public, roles };
    Ok(Some((row, facts)))
}

/// The project a push goes to; refused with a message that names it when it does not exist.
pub async fn for_push(app: &App, project: &str) -> Result<ProjectRow> {
    app.meta
        .project_by_name(project)
        .await?
        .ok_or_else(|| Error::oci(ErrorCode::NameUnknown, format!("project {project} not found: create the project before pushing to it")))
}
