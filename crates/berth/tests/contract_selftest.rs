//! Tests of the contract helper itself (`tests/contract/mod.rs`): the committed contract data
//! and the validator, on hand-written JSON. No server is started.

mod contract;

use contract::{SchemaRef, is_rfc3339, operation, operations, validate, validate_response};
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn project() -> Value {
    json!({
        "project_id": 1,
        "owner_id": 1,
        "name": "library",
        "registry_id": 0,
        "creation_time": "2024-05-01T10:20:30.123Z",
        "update_time": "2024-05-01T10:20:30+02:00",
        "deleted": false,
        "owner_name": "admin",
        "togglable": true,
        "current_user_role_id": 1,
        "current_user_role_ids": [1],
        "repo_count": 0,
        "metadata": { "public": "true", "auto_scan": null, "severity": "low" },
        "cve_allowlist": {
            "id": 1, "project_id": 1, "expires_at": null,
            "items": [{ "cve_id": "CVE-2024-0001" }],
            "creation_time": "0001-01-01T00:00:00Z", "update_time": "0001-01-01T00:00:00Z"
        }
    })
}

fn errors_of(def: &str, value: &Value) -> Vec<String> {
    validate(def, value).expect_err("validation should have failed")
}

#[track_caller]
fn assert_single_error(errors: &[String], expected: &str) {
    assert_eq!(errors, [expected.to_owned()], "unexpected validation errors");
}

#[test]
fn contract_has_the_pinned_harbor_counts() {
    let c = contract::contract();
    assert_eq!(c.base_path, "/api/v2.0");
    assert_eq!(c.source["commit"], "c50c7ddd6ea4e335a480b49c618281882ab7eec9");
    assert_eq!(c.source["sha256"], "dea3b3f6cfc225acb569019904218f30032a6fdf4331c86e372bc53198fab840");
    assert_eq!(operations().len(), 203);
    assert_eq!(operations().iter().map(|o| o.path.as_str()).collect::<BTreeSet<_>>().len(), 135);
    assert_eq!(c.definitions.len(), 153);
    let ids: BTreeSet<&str> = operations().iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids.len(), 203, "operation ids are unique");
    let keys: Vec<(&str, &str)> = operations().iter().map(|o| (o.path.as_str(), o.method.as_str())).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "operations are sorted by path then method");
}

#[test]
fn get_project_operation_has_resource_name_header() {
    let op = operation("GET", "/projects/{project_name_or_id}");
    assert_eq!(op.id, "getProject");
    assert_eq!(op.tags, ["project"]);
    let header = op.parameter("header", "x-is-resource-name").expect("X-Is-Resource-Name header parameter");
    assert_eq!(header.name, "X-Is-Resource-Name");
    assert_eq!(header.ty.as_deref(), Some("boolean"));
    assert_eq!(header.default, Some(json!(false)));
    assert!(!header.required);
    let path_param = op.parameter("path", "project_name_or_id").expect("path parameter");
    assert!(path_param.required);
    assert_eq!(op.response(200).and_then(|r| r.schema.as_ref()).and_then(|s| s.reference.as_deref()), Some("Project"));
    // Shared `#/parameters/...` and `#/responses/...` entries are resolved.
    assert_eq!(op.response(404).unwrap().headers, ["X-Request-Id"]);
    let page_size = operation("get", "/api/v2.0/projects").parameter("query", "page_size").expect("page_size");
    assert_eq!((page_size.maximum.clone(), page_size.default.clone()), (Some(json!(100)), Some(json!(10))));
}

#[test]
#[should_panic(expected = "has no PATCH /projects/{project_name_or_id}")]
fn unknown_operation_panics_with_the_method_and_path() {
    operation("PATCH", "/projects/{project_name_or_id}");
}

#[test]
#[should_panic(expected = "has no path \"/projects/{id}\"")]
fn unknown_path_panics() {
    operation("GET", "/projects/{id}");
}

#[test]
fn valid_project_passes() {
    assert_eq!(validate("Project", &project()), Ok(()));
    assert_eq!(validate("Project", &json!({})), Ok(()), "Project declares no required fields");
}

#[test]
fn wrong_type_is_reported_with_its_path() {
    let mut p = project();
    p["metadata"]["public"] = json!(true);
    assert_single_error(&errors_of("Project", &p), "$.metadata.public: expected string, got boolean");

    let mut p = project();
    p["project_id"] = json!("1");
    assert_single_error(&errors_of("Project", &p), "$.project_id: expected integer, got string");

    let mut p = project();
    p["project_id"] = json!(1.5);
    assert_single_error(&errors_of("Project", &p), "$.project_id: expected integer, got number");

    let mut p = project();
    p["project_id"] = json!(1_u64 << 40);
    assert_single_error(&errors_of("Project", &p), "$.project_id: 1099511627776 does not fit format int32");

    let mut p = project();
    p["cve_allowlist"]["items"][0]["cve_id"] = json!(7);
    assert_single_error(&errors_of("Project", &p), "$.cve_allowlist.items[0].cve_id: expected string, got integer");
}

#[test]
fn nulls_follow_the_declared_nullability() {
    let mut p = project();
    p["name"] = Value::Null;
    assert_single_error(&errors_of("Project", &p), "$.name: expected string, got null");

    let mut p = project();
    p["metadata"]["public"] = Value::Null; // not x-nullable
    p["metadata"]["severity"] = Value::Null; // x-nullable
    assert_single_error(&errors_of("Project", &p), "$.metadata.public: expected string, got null");

    let mut p = project();
    p["metadata"] = Value::Null; // $ref: Harbor emits null for absent objects
    p["current_user_role_ids"] = Value::Null; // array: Harbor emits null for nil slices
    p["cve_allowlist"]["expires_at"] = Value::Null; // x-nullable integer
    assert_eq!(validate("Project", &p), Ok(()));

    assert_single_error(&errors_of("Project", &Value::Null), "$: expected Project, got null");
}

#[test]
fn missing_required_field_is_reported() {
    assert_single_error(&errors_of("ScannerRegistrationReq", &json!({ "name": "trivy" })), "$.url: required property missing");
    assert_eq!(validate("ScannerRegistrationReq", &json!({ "name": "trivy", "url": "http://trivy:8080" })), Ok(()));
    assert_single_error(&errors_of("NewTag", &json!({})), "$.name: required property missing");
}

#[test]
fn undeclared_fields_are_reported() {
    let mut p = project();
    p["chart_count"] = json!(0);
    assert_single_error(&errors_of("Project", &p), "$.chart_count: property not declared in Project");

    let mut p = project();
    p["metadata"]["invented"] = json!("x");
    assert_single_error(&errors_of("Project", &p), "$.metadata.invented: property not declared in ProjectMetadata");
}

#[test]
fn free_form_objects_and_maps() {
    // Quota.ref is QuotaRefObject (additionalProperties: {}): anything goes.
    let quota = json!({ "id": 1, "ref": { "id": 1, "name": "library", "owner_name": "admin" }, "hard": { "storage": -1 }, "used": { "storage": 0 } });
    assert_eq!(validate("Quota", &quota), Ok(()));
    // ResourceList is a map of int64 values.
    let bad = json!({ "hard": { "storage": "1GB" } });
    assert_single_error(&errors_of("Quota", &bad), "$.hard.storage: expected integer, got string");
    // Map keys that are not identifiers are quoted in the path.
    let artifact = json!({ "annotations": { "org.opencontainers.image.created": 5 }, "extra_attrs": { "config": { "any": [1] } } });
    assert_single_error(
        &errors_of("Artifact", &artifact),
        "$.annotations[\"org.opencontainers.image.created\"]: expected string, got integer",
    );
}

#[test]
fn bad_date_time_is_reported() {
    let mut p = project();
    p["creation_time"] = json!("2024-05-01 10:20:30");
    assert_single_error(&errors_of("Project", &p), "$.creation_time: \"2024-05-01 10:20:30\" is not an RFC 3339 date-time");

    let mut p = project();
    p["cve_allowlist"]["update_time"] = json!("2023-02-29T00:00:00Z");
    assert_single_error(&errors_of("Project", &p), "$.cve_allowlist.update_time: \"2023-02-29T00:00:00Z\" is not an RFC 3339 date-time");
}

#[test]
fn rfc3339_checker() {
    for ok in ["2024-02-29T23:59:60Z", "0001-01-01T00:00:00.000Z", "2024-05-01t10:20:30.123456789-07:30", "1999-12-31T00:00:00+14:00"] {
        assert!(is_rfc3339(ok), "{ok} should be accepted");
    }
    for bad in [
        "",
        "2024-05-01",
        "2024-05-01T10:20:30",
        "2024-05-01T10:20Z",
        "2024-13-01T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-05-01T24:00:00Z",
        "2024-05-01T10:20:30.Z",
        "2024-05-01T10:20:30+0200",
        "2024-05-01T10:20:30+24:00",
        "2024-05-01T10:20:30Zjunk",
        "1714558830",
    ] {
        assert!(!is_rfc3339(bad), "{bad:?} should be rejected");
    }
}

#[test]
fn enums_are_checked() {
    assert_eq!(validate("ScheduleObj", &json!({ "type": "Daily", "cron": "0 0 0 * * *" })), Ok(()));
    assert_single_error(
        &errors_of("ScheduleObj", &json!({ "type": "daily" })),
        "$.type: \"daily\" is not one of [\"Hourly\",\"Daily\",\"Weekly\",\"Custom\",\"Manual\",\"None\",\"Schedule\"]",
    );
}

#[test]
fn array_schema_refs() {
    let list = json!([project(), { "name": "other" }]);
    assert_eq!(validate("array of Project", &list), Ok(()));
    assert!(matches!(SchemaRef::from("array of Project"), SchemaRef::ArrayOf("Project")));
    assert_single_error(&validate("array of Project", &json!({})).unwrap_err(), "$: expected array, got object");
    assert_single_error(&validate("array of Project", &json!([project(), null])).unwrap_err(), "$[1]: expected Project, got null");
}

#[test]
fn validate_response_uses_the_declared_schema() {
    let list = json!([project(), { "name": "other", "project_id": 2 }]);
    assert_eq!(validate_response("GET", "/projects", 200, &list), Ok(()));
    assert_eq!(validate_response("GET", "/projects", 200, &json!([])), Ok(()));

    let bad = json!([project(), { "name": 2 }]);
    assert_single_error(&validate_response("GET", "/projects", 200, &bad).unwrap_err(), "$[1].name: expected string, got integer");

    let not_found = json!({ "errors": [{ "code": "NOT_FOUND", "message": "project 7 not found" }] });
    assert_eq!(validate_response("GET", "/projects/{project_name_or_id}", 404, &not_found), Ok(()));
    let bad_error = json!({ "errors": [{ "code": "NOT_FOUND", "msg": "x" }] });
    assert_single_error(
        &validate_response("GET", "/projects/{project_name_or_id}", 404, &bad_error).unwrap_err(),
        "$.errors[0].msg: property not declared in Error",
    );

    // 201 Created declares headers but no body.
    assert_eq!(validate_response("POST", "/projects", 201, &Value::Null), Ok(()));
    assert!(validate_response("POST", "/projects", 201, &json!({ "id": 1 })).is_err());
    // A status the contract does not declare for the operation.
    let err = validate_response("GET", "/projects", 418, &Value::Null).unwrap_err();
    assert!(err[0].contains("declares no 418 response"), "{err:?}");
    // text/plain operations declare a string body.
    assert_eq!(validate_response("GET", "/ping", 200, &json!("Pong")), Ok(()));
    assert!(validate_response("GET", "/ping", 200, &json!({})).is_err());
}

#[test]
fn every_schema_reference_resolves() {
    fn walk(schema: &contract::Schema, refs: &mut Vec<String>) {
        refs.extend(schema.reference.clone());
        schema.items.iter().for_each(|s| walk(s, refs));
        if let Some(contract::Additional::Schema(s)) = &schema.additional {
            walk(s, refs);
        }
        schema.properties.iter().flatten().for_each(|(_, s)| walk(s, refs));
        schema.all_of.iter().for_each(|s| walk(s, refs));
    }
    let c = contract::contract();
    let mut refs = Vec::new();
    c.definitions.values().for_each(|s| walk(s, &mut refs));
    for op in operations() {
        op.parameters.iter().filter_map(|p| p.schema.as_ref()).for_each(|s| walk(s, &mut refs));
        op.responses.values().filter_map(|r| r.schema.as_ref()).for_each(|s| walk(s, &mut refs));
    }
    assert!(refs.len() > 800, "expected many references, found {}", refs.len());
    let missing: BTreeSet<&String> = refs.iter().filter(|r| !c.definitions.contains_key(*r)).collect();
    assert!(missing.is_empty(), "unresolved references: {missing:?}");
}
