//! Project members and their roles (Harbor's role ids 1 to 5). Users only for now: groups
//! are refused. Every change drops the Basic credential cache.

use crate::app::App;
use crate::error::{Error, Result};
use crate::meta::{Audit, MemberRow, ProjectRow, accounts_role as role};

/// Harbor's name of a role id.
pub fn role_name(id: i64) -> &'static str {
    match id {
        role::PROJECT_ADMIN => "projectAdmin",
        role::DEVELOPER => "developer",
        role::GUEST => "guest",
        role::MAINTAINER => "maintainer",
        role::LIMITED_GUEST => "limitedGuest",
        _ => "",
    }
}

pub fn validate_role(id: i64) -> Result<()> {
    if (role::PROJECT_ADMIN..=role::LIMITED_GUEST).contains(&id) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "invalid role id {id}: use 1 (projectAdmin), 2 (developer), 3 (guest), 4 (maintainer) or 5 (limitedGuest)"
        )))
    }
}

/// The user a new member stands for.
#[derive(Clone, Debug)]
pub enum MemberUser {
    Id(i64),
    Name(String),
}

/// Adds a user to a project with a role. Returns the member id.
pub async fn add(app: &App, project: &ProjectRow, user: &MemberUser, role_id: i64, audit: Audit) -> Result<i64> {
    let found = match user {
        MemberUser::Id(id) => app.meta.member_candidate_by_id(*id).await?.ok_or_else(|| Error::Invalid(format!("user {id} not found")))?,
        MemberUser::Name(name) => {
            app.meta.member_candidate_by_name(name).await?.ok_or_else(|| Error::Invalid(format!("user {name} not found")))?
        }
    };
    validate_role(role_id)?;
    let (user_id, username) = found;
    let audit = Audit { project_id: Some(project.id), resource: username.clone(), resource_type: "member", operation: "create", ..audit };
    let id = app.meta.add_member(project.id, user_id, role_id, &audit).await?.ok_or_else(|| {
        Error::Conflict(format!("The project member specified already exist: user {username} is a member of project {}", project.name))
    })?;
    app.auth.forget_credentials();
    Ok(id)
}

/// One member of a project.
pub async fn get(app: &App, project: &ProjectRow, member_id: i64) -> Result<MemberRow> {
    app.meta.member(project.id, member_id).await?.ok_or_else(|| not_found(project, member_id))
}

fn not_found(project: &ProjectRow, member_id: i64) -> Error {
    Error::NotFound(format!("the project member is not found: project {} has no member {member_id}", project.name))
}

/// Members of a project, optionally only the one with this exact name; (total, page).
pub async fn list(app: &App, project: &ProjectRow, entity_name: Option<&str>, offset: i64, limit: i64) -> Result<(i64, Vec<MemberRow>)> {
    app.meta.list_members(project.id, entity_name, offset, limit).await
}

pub async fn update_role(app: &App, project: &ProjectRow, member_id: i64, role_id: i64, audit: Audit) -> Result<()> {
    validate_role(role_id)?;
    let member = get(app, project, member_id).await?;
    let audit = Audit { project_id: Some(project.id), resource: member.entity_name, resource_type: "member", operation: "update", ..audit };
    if !app.meta.update_member_role(project.id, member_id, role_id, &audit).await? {
        return Err(not_found(project, member_id));
    }
    app.auth.forget_credentials();
    Ok(())
}

pub async fn remove(app: &App, project: &ProjectRow, member_id: i64, audit: Audit) -> Result<()> {
    let member = get(app, project, member_id).await?;
    let audit = Audit { project_id: Some(project.id), resource: member.entity_name, resource_type: "member", operation: "delete", ..audit };
    if !app.meta.delete_member(project.id, member_id, &audit).await? {
        return Err(not_found(project, member_id));
    }
    app.auth.forget_credentials();
    Ok(())
}

/// How many members a project has in each role, in Harbor's summary order:
/// project admins, maintainers, developers, guests, limited guests.
pub async fn counts(app: &App, project: &ProjectRow) -> Result<[i64; 5]> {
    let mut out = [0i64; 5];
    for (r, n) in app.meta.member_role_counts(project.id).await? {
        let slot = match r {
            role::PROJECT_ADMIN => 0,
            role::MAINTAINER => 1,
            role::DEVELOPER => 2,
            role::GUEST => 3,
            role::LIMITED_GUEST => 4,
            _ => continue,
        };
        out[slot] = n;
    }
    Ok(out)
}
