//! Harbor API v2.0 contract for integration tests (`mod contract;`): loads `tests/data/harbor-contract.json`
//! (facts extracted from Harbor's swagger.yaml by `scripts/extract-harbor-contract`), looks up operations,
//! and validates JSON bodies the way a Harbor client reads them: declared types, `date-time` formats,
//! `required` fields, enums, and no fields that Harbor does not declare. Paths are swagger templates
//! without the `/api/v2.0` prefix (also accepted), e.g. `operation("GET", "/projects/{project_name_or_id}")`.

#![allow(dead_code)]

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;

#[derive(Debug, Deserialize)]
pub struct Contract {
    pub base_path: String,
    /// file, commit, sha256 and license of the swagger file the contract was extracted from.
    pub source: BTreeMap<String, String>,
    pub operations: Vec<Operation>,
    pub definitions: BTreeMap<String, Schema>,
}

#[derive(Debug, Deserialize)]
pub struct Operation {
    pub id: String,
    pub method: String,
    pub path: String,
    pub tags: Vec<String>,
    pub parameters: Vec<Parameter>,
    /// Keyed by status code ("200", "404", ...).
    pub responses: BTreeMap<String, Response>,
    #[serde(default)]
    pub produces: Vec<String>,
    #[serde(default)]
    pub deprecated: bool,
}

#[derive(Debug, Deserialize)]
pub struct Parameter {
    pub name: String,
    /// "path", "query", "header" or "body".
    #[serde(rename = "in")]
    pub location: String,
    pub required: bool,
    #[serde(rename = "type")]
    pub ty: Option<String>,
    pub format: Option<String>,
    pub maximum: Option<Value>,
    #[serde(rename = "enum")]
    pub values: Option<Vec<Value>>,
    pub default: Option<Value>,
    pub items: Option<Schema>,
    /// The body schema, for `in: body` parameters.
    pub schema: Option<Schema>,
}

#[derive(Debug, Deserialize)]
pub struct Response {
    pub schema: Option<Schema>,
    pub headers: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Schema {
    #[serde(rename = "type")]
    pub ty: Option<String>,
    pub format: Option<String>,
    /// A bare definition name, e.g. "Project".
    #[serde(rename = "$ref")]
    pub reference: Option<String>,
    pub items: Option<Box<Schema>>,
    #[serde(rename = "additionalProperties")]
    pub additional: Option<Additional>,
    #[serde(rename = "enum")]
    pub values: Option<Vec<Value>>,
    pub properties: Option<BTreeMap<String, Schema>>,
    #[serde(default)]
    pub required: Vec<String>,
    #[serde(rename = "allOf", default)]
    pub all_of: Vec<Schema>,
    #[serde(rename = "x-nullable")]
    pub x_nullable: Option<bool>,
    /// go-swagger's alias of `x-nullable`, used by some Harbor definitions.
    #[serde(rename = "x-isnullable")]
    pub x_isnullable: Option<bool>,
    /// `Some(false)`: Harbor always emits the field, even when it is the zero value.
    #[serde(rename = "x-omitempty")]
    pub x_omitempty: Option<bool>,
    #[serde(rename = "readOnly", default)]
    pub read_only: bool,
    pub default: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Additional {
    Allowed(bool),
    Schema(Box<Schema>),
}

impl Operation {
    /// A parameter by location and name (header names compare case-insensitively).
    pub fn parameter(&self, location: &str, name: &str) -> Option<&Parameter> {
        self.parameters
            .iter()
            .find(|p| p.location == location && if location == "header" { p.name.eq_ignore_ascii_case(name) } else { p.name == name })
    }

    pub fn response(&self, status: u16) -> Option<&Response> {
        self.responses.get(&status.to_string()).or_else(|| self.responses.get("default"))
    }
}

impl Schema {
    fn explicit_nullable(&self) -> Option<bool> {
        self.x_nullable.or(self.x_isnullable)
    }

    /// Whether a property with this schema may be `null`: as declared, else Harbor's habit of
    /// emitting `null` for absent objects, arrays and `$ref`s (Go nil pointers, maps and slices).
    fn property_nullable(&self) -> bool {
        self.explicit_nullable().unwrap_or_else(|| {
            self.reference.is_some() || matches!(self.ty.as_deref(), Some("object" | "array")) || self.properties.is_some()
        })
    }
}

pub fn contract() -> &'static Contract {
    static CONTRACT: OnceLock<Contract> = OnceLock::new();
    CONTRACT.get_or_init(|| {
        serde_json::from_str(include_str!("../data/harbor-contract.json")).expect("tests/data/harbor-contract.json does not parse")
    })
}

/// All operations of the contract, sorted by path then method.
pub fn operations() -> &'static [Operation] {
    &contract().operations
}

/// The operation for `method` on the swagger path template; panics if Harbor has none.
pub fn operation(method: &str, path_template: &str) -> &'static Operation {
    let c = contract();
    let path = path_template.strip_prefix(c.base_path.as_str()).filter(|p| p.starts_with('/')).unwrap_or(path_template);
    if let Some(op) = c.operations.iter().find(|o| o.method.eq_ignore_ascii_case(method) && o.path == path) {
        return op;
    }
    let methods: Vec<&str> = c.operations.iter().filter(|o| o.path == path).map(|o| o.method.as_str()).collect();
    if methods.is_empty() {
        panic!("the Harbor contract has no path {path:?} (use the swagger template, e.g. /projects/{{project_name_or_id}})");
    }
    panic!("the Harbor contract has no {} {path}; that path has only {}", method.to_ascii_uppercase(), methods.join(", "));
}

pub fn operation_by_id(id: &str) -> &'static Operation {
    operations().iter().find(|o| o.id == id).unwrap_or_else(|| panic!("the Harbor contract has no operationId {id:?}"))
}

pub fn definition(name: &str) -> &'static Schema {
    contract().definitions.get(name).unwrap_or_else(|| panic!("the Harbor contract has no definition {name:?}"))
}

/// What to validate against: a definition ("Project"), an array of one ("array of Project"),
/// or any schema of the contract (e.g. a response or body schema).
#[derive(Clone, Copy, Debug)]
pub enum SchemaRef<'a> {
    Definition(&'a str),
    ArrayOf(&'a str),
    Schema(&'a Schema),
}

impl<'a> From<&'a str> for SchemaRef<'a> {
    fn from(s: &'a str) -> Self {
        match s.strip_prefix("array of ") {
            Some(name) => SchemaRef::ArrayOf(name.trim()),
            None => SchemaRef::Definition(s.trim()),
        }
    }
}

impl<'a> From<&'a Schema> for SchemaRef<'a> {
    fn from(s: &'a Schema) -> Self {
        SchemaRef::Schema(s)
    }
}

/// Validates `value` against a definition or schema; each error starts with its JSON path.
pub fn validate<'a>(schema: impl Into<SchemaRef<'a>>, value: &Value) -> Result<(), Vec<String>> {
    let reference = |name: &str| {
        definition(name); // panics with a clear message on a typo
        Schema { reference: Some(name.to_owned()), ..Schema::default() }
    };
    let owned;
    let root = match schema.into() {
        SchemaRef::Definition(name) => {
            owned = reference(name);
            &owned
        }
        SchemaRef::ArrayOf(name) => {
            owned = Schema { ty: Some("array".into()), items: Some(Box::new(reference(name))), ..Schema::default() };
            &owned
        }
        SchemaRef::Schema(s) => s,
    };
    let mut errors = Vec::new();
    check(&mut errors, root, value, "$".into(), false, "the inline schema");
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Validates a response body against the schema the contract declares for `status`.
/// Pass `Value::Null` for an empty body; a status without a declared schema requires one.
pub fn validate_response(method: &str, path_template: &str, status: u16, body: &Value) -> Result<(), Vec<String>> {
    let op = operation(method, path_template);
    let Some(response) = op.response(status) else {
        let known: Vec<&str> = op.responses.keys().map(String::as_str).collect();
        return Err(vec![format!("{} {} ({}) declares no {status} response; it declares {}", op.method, op.path, op.id, known.join(", "))]);
    };
    match &response.schema {
        Some(schema) => validate(schema, body),
        None if body.is_null() => Ok(()),
        None => Err(vec![format!("$: {} {} {status} declares no body, got {}", op.method, op.path, kind(body))]),
    }
}

/// `ctx` names the definition being checked, for messages about undeclared fields.
fn check(errors: &mut Vec<String>, schema: &Schema, value: &Value, path: String, null_ok: bool, ctx: &str) {
    if value.is_null() {
        if !null_ok {
            let expected = schema.reference.as_deref().or(schema.ty.as_deref()).unwrap_or("a value");
            errors.push(format!("{path}: expected {expected}, got null"));
        }
        return;
    }
    if let Some(name) = &schema.reference {
        match contract().definitions.get(name) {
            Some(def) => check(errors, def, value, path, true, name),
            None => errors.push(format!("{path}: the contract has no definition {name:?}")),
        }
        return;
    }
    let ty = schema.ty.as_deref().or(if schema.properties.is_some() || !schema.all_of.is_empty() { Some("object") } else { None });
    let type_ok = match ty {
        None | Some("file") => true,
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some("array") => value.is_array(),
        // A bare `type: object` (no properties, no additionalProperties) is go-swagger's
        // `interface{}`: Harbor puts any JSON value there (e.g. `extra_attrs` values).
        Some("object") if schema.properties.is_none() && schema.additional.is_none() && schema.all_of.is_empty() => true,
        Some("object") => value.is_object(),
        Some(other) => {
            errors.push(format!("{path}: the contract uses unknown type {other:?}"));
            return;
        }
    };
    if !type_ok {
        errors.push(format!("{path}: expected {}, got {}", ty.unwrap_or_default(), kind(value)));
        return;
    }
    if let Some(values) = &schema.values
        && !values.contains(value)
    {
        errors.push(format!("{path}: {value} is not one of {}", Value::Array(values.clone())));
    }
    match value {
        Value::String(s) if schema.format.as_deref() == Some("date-time") && !is_rfc3339(s) => {
            errors.push(format!("{path}: {s:?} is not an RFC 3339 date-time"));
        }
        Value::Number(n) if ty == Some("integer") => {
            let fits = match schema.format.as_deref() {
                Some("int8") => n.as_i64().is_some_and(|i| i8::try_from(i).is_ok()),
                Some("int32") => n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
                Some("int64" | "int") => n.is_i64(),
                Some("uint64") => n.is_u64(),
                _ => true,
            };
            if !fits {
                errors.push(format!("{path}: {n} does not fit format {}", schema.format.as_deref().unwrap_or_default()));
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = &schema.items {
                let item_null_ok = item_schema.explicit_nullable().unwrap_or(false);
                for (i, item) in items.iter().enumerate() {
                    check(errors, item_schema, item, format!("{path}[{i}]"), item_null_ok, ctx);
                }
            }
        }
        Value::Object(map) => check_object(errors, schema, map, &path, ctx),
        _ => {}
    }
}

fn check_object(errors: &mut Vec<String>, schema: &Schema, map: &serde_json::Map<String, Value>, path: &str, ctx: &str) {
    let mut shape = Shape::default();
    collect(schema, &mut shape);
    for name in &shape.required {
        if !map.contains_key(*name) {
            errors.push(format!("{}: required property missing", child(path, name)));
        }
    }
    for (key, item) in map {
        let item_path = child(path, key);
        if let Some(prop) = shape.properties.get(key.as_str()) {
            check(errors, prop, item, item_path, prop.property_nullable(), ctx);
            continue;
        }
        match shape.additional {
            Some(Additional::Schema(s)) => check(errors, s, item, item_path, s.property_nullable(), ctx),
            Some(Additional::Allowed(true)) => {}
            None if shape.properties.is_empty() => {} // free-form object
            _ => errors.push(format!("{item_path}: property not declared in {ctx}")),
        }
    }
}

/// Merges the object facts of `schema` and its `allOf` parts (following `$ref`s).
fn collect<'s>(schema: &'s Schema, shape: &mut Shape<'s>) {
    if let Some(name) = &schema.reference {
        if let Some(def) = contract().definitions.get(name) {
            collect(def, shape);
        }
        return;
    }
    for (name, prop) in schema.properties.iter().flatten() {
        shape.properties.insert(name, prop);
    }
    shape.required.extend(schema.required.iter().map(String::as_str));
    if schema.additional.is_some() {
        shape.additional = schema.additional.as_ref();
    }
    for part in &schema.all_of {
        collect(part, shape);
    }
}

#[derive(Default)]
struct Shape<'s> {
    properties: BTreeMap<&'s str, &'s Schema>,
    required: Vec<&'s str>,
    additional: Option<&'s Additional>,
}

fn child(path: &str, key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        format!("{path}.{key}")
    } else {
        format!("{path}[{key:?}]")
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Strict RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, with real calendar days.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        b.get(from..from + len)?.iter().try_fold(0u32, |acc, c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
    };
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) =
        (num(0, 4), num(5, 2), num(8, 2), num(11, 2), num(14, 2), num(17, 2))
    else {
        return false;
    };
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return false;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month[month as usize - 1] || hour > 23 || minute > 59 || second > 60 {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        rest = &fraction[digits..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] if [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()) => {
            (h1 - b'0') * 10 + (h2 - b'0') <= 23 && (m1 - b'0') * 10 + (m2 - b'0') <= 59
        }
        _ => false,
    }
}
