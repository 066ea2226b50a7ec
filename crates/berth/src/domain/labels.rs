//! Labels as Harbor has them: global labels (scope `g`, managed by system admins) and
//! labels of one project (scope `p`), each with a name (1–128 characters, unique within
//! its scope and project), a description and a color (at most 16 characters, like
//! `#61717D`). They are put on artifacts of their own project (global ones on any).
//! Who may do what is decided by the caller before these functions run.

use crate::app::App;
use crate::error::{Error, Result};
use crate::meta::{Audit, LabelChange, LabelRow, now_ms};

pub const SCOPE_GLOBAL: &str = "g";
pub const SCOPE_PROJECT: &str = "p";
pub const NAME_MAX: usize = 128;
pub const COLOR_MAX: usize = 16;

/// Harbor's `Label` in a request body; everything optional so that the messages can say what is missing.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct LabelInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub color: Option<String>,
    pub scope: Option<String>,
    pub project_id: Option<i64>,
}

/// A label's scope and project: `("g", 0)` or `("p", project_id)`.
pub fn scope_of(input: &LabelInput) -> Result<(&'static str, i64)> {
    match input.scope.as_deref() {
        None | Some("") => Err(Error::Invalid("scope is required: g (a global label) or p (a label of the project project_id)".into())),
        Some(SCOPE_GLOBAL) => Ok((SCOPE_GLOBAL, 0)),
        Some(SCOPE_PROJECT) => match input.project_id {
            Some(id) if id > 0 => Ok((SCOPE_PROJECT, id)),
            Some(id) => Err(Error::Invalid(format!("project_id must be the id of a project (a positive integer), not {id}"))),
            None => Err(Error::Invalid("project_id is required for a project label (scope p)".into())),
        },
        Some(s) => Err(Error::Invalid(format!("scope must be g (global) or p (project), not {s:?}"))),
    }
}

fn check_fields(name: &str, description: &str, color: &str) -> Result<()> {
    crate::text::check("name", name)?;
    crate::text::check("description", description)?;
    crate::text::check("color", color)?;
    if name.is_empty() {
        return Err(Error::Invalid(format!("name is required: a label needs a name of 1 to {NAME_MAX} characters")));
    }
    let n = name.chars().count();
    if n > NAME_MAX {
        return Err(Error::Invalid(format!("name must be at most {NAME_MAX} characters, not {n}")));
    }
    if color.chars().count() > COLOR_MAX {
        return Err(Error::Invalid(format!("color must be at most {COLOR_MAX} characters, like #61717D")));
    }
    Ok(())
}

/// A new label from a create request, validated (its project is not looked up here).
pub fn new_label(input: &LabelInput) -> Result<LabelRow> {
    let name = input.name.clone().unwrap_or_default();
    let color = input.color.clone().unwrap_or_default();
    check_fields(&name, input.description.as_deref().unwrap_or(""), &color)?;
    let (scope, project_id) = scope_of(input)?;
    let now = now_ms();
    Ok(LabelRow {
        id: 0,
        name,
        description: input.description.clone().unwrap_or_default(),
        color,
        scope: scope.into(),
        project_id,
        creation_time: now,
        update_time: now,
    })
}

fn audit_for(label: &LabelRow, operation: &'static str, audit: Audit) -> Audit {
    Audit {
        resource: label.name.clone(),
        resource_type: "label",
        operation,
        project_id: (label.scope == SCOPE_PROJECT).then_some(label.project_id),
        ..audit
    }
}

fn taken(label: &LabelRow) -> Error {
    match label.scope.as_str() {
        SCOPE_GLOBAL => Error::Conflict(format!("a global label named {} already exists", label.name)),
        _ => Error::Conflict(format!("project {} already has a label named {}", label.project_id, label.name)),
    }
}

/// Stores a validated label (its project checked by the caller); returns it with its id.
pub async fn create(app: &App, mut label: LabelRow, audit: Audit) -> Result<LabelRow> {
    let audit = audit_for(&label, "create", audit);
    match app.meta.create_label(&label, &audit).await? {
        Some(id) => {
            label.id = id;
            Ok(label)
        }
        None => Err(taken(&label)),
    }
}

/// Replaces name, description and color, as Harbor's update does (scope and project stay;
/// a description or color left out becomes empty).
pub async fn update(app: &App, mut label: LabelRow, input: &LabelInput, audit: Audit) -> Result<()> {
    label.name = input.name.clone().unwrap_or_default();
    label.description = input.description.clone().unwrap_or_default();
    label.color = input.color.clone().unwrap_or_default();
    check_fields(&label.name, &label.description, &label.color)?;
    let audit = audit_for(&label, "update", audit);
    match app.meta.update_label(&label, &audit).await? {
        LabelChange::Done => Ok(()),
        LabelChange::NameTaken => Err(taken(&label)),
        LabelChange::Missing => Err(Error::NotFound(format!("label {} not found", label.id))),
    }
}

/// Deletes a label; it goes from every artifact that carries it.
pub async fn delete(app: &App, label: &LabelRow, audit: Audit) -> Result<()> {
    let audit = audit_for(label, "delete", audit);
    if app.meta.delete_label(label.id, &audit).await? { Ok(()) } else { Err(Error::NotFound(format!("label {} not found", label.id))) }
}

/// Whether `label` may be put on an artifact of project `project_id` (a global label, or a label of
/// that same project); Err(Error::Invalid/NotFound) with a clear message otherwise.
///
/// A label of another project is answered as missing (as Harbor does), so that nothing about
/// other projects' labels shows through.
pub fn applicable(label: &LabelRow, project_id: i64) -> Result<()> {
    match label.scope.as_str() {
        SCOPE_GLOBAL => Ok(()),
        SCOPE_PROJECT if label.project_id == project_id => Ok(()),
        SCOPE_PROJECT => Err(Error::NotFound(format!(
            "label {} not found in project {project_id}: only global labels and labels of the artifact's own project can be added",
            label.id
        ))),
        s => Err(Error::Invalid(format!("label {} has the unknown scope {s:?}; labels are global (g) or of a project (p)", label.id))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: Option<&str>, scope: Option<&str>, project_id: Option<i64>) -> LabelInput {
        LabelInput { name: name.map(Into::into), scope: scope.map(Into::into), project_id, ..Default::default() }
    }

    #[test]
    fn validation_and_scopes() {
        let g = new_label(&input(Some("release"), Some("g"), Some(7))).unwrap();
        assert_eq!((g.scope.as_str(), g.project_id), ("g", 0), "a global label belongs to no project");
        let p = new_label(&input(Some("qa"), Some("p"), Some(7))).unwrap();
        assert_eq!((p.scope.as_str(), p.project_id), ("p", 7));
        let msg = |i: LabelInput| new_label(&i).unwrap_err().to_string();
        assert!(msg(input(None, Some("g"), None)).starts_with("name is required"));
        assert!(msg(input(Some(""), Some("g"), None)).starts_with("name is required"));
        assert!(msg(input(Some(&"x".repeat(129)), Some("g"), None)).contains("at most 128"));
        assert!(new_label(&input(Some(&"é".repeat(128)), Some("g"), None)).is_ok(), "characters, not bytes");
        assert!(msg(input(Some("a"), None, None)).starts_with("scope is required"));
        assert!(msg(input(Some("a"), Some("x"), None)).contains("not \"x\""));
        assert!(msg(input(Some("a"), Some("p"), None)).starts_with("project_id is required"));
        assert!(msg(input(Some("a"), Some("p"), Some(0))).contains("positive"));
        let long_color = LabelInput { color: Some("#".repeat(17)), ..input(Some("a"), Some("g"), None) };
        assert!(msg(long_color).starts_with("color must be at most 16"));
    }

    #[test]
    fn applicable_to_own_project_or_global() {
        let g = new_label(&input(Some("g"), Some("g"), None)).unwrap();
        let p = new_label(&input(Some("p"), Some("p"), Some(3))).unwrap();
        assert!(applicable(&g, 3).is_ok() && applicable(&g, 4).is_ok());
        assert!(applicable(&p, 3).is_ok());
        assert!(matches!(applicable(&p, 4), Err(Error::NotFound(m)) if m.contains("global labels")));
        let odd = LabelRow { scope: "x".into(), ..p };
        assert!(matches!(applicable(&odd, 3), Err(Error::Invalid(_))));
    }
}
