//! The finishing of the OpenAPI document, so that it describes the server exactly (a client
//! generated from it, or a fuzzer reading it, meets no surprise):
//!
//! - every operation that takes a body lists the answers every body can get: 400 (not
//!   JSON), 413 (too large), 415 (wrong type), 422 (not valid);
//! - uploads are binary (`format: binary`) in the types the server takes;
//! - the body of `start` and of a new recording may be left out;
//! - a merge patch's body is the patched type with every field optional (objects merge,
//!   arrays replace), and no unknown field;
//! - a new named scene's `id` is optional (the server makes one);
//! - `allOf` compositions (an item with `appliedAtFrame`, an input with its state) are one
//!   object with every property, so that `additionalProperties: false` holds for the whole.
//!
//! A merge patch is checked against its published schema ([`check_patch`]) before it is
//! applied, so the document and the server agree on what a patch may hold (no unknown field,
//! not even with `null`; `null` only where the field may be null).

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::http::StatusCode;
use jsonschema::error::ValidationErrorKind as Kind;
use serde_json::{Map, Value, json};

use super::error::ApiError;

/// The media types of an asset upload.
const ASSET_TYPES: [&str; 6] = [
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/gif",
    "font/ttf",
    "font/otf",
];

/// The type each merge-patch body patches.
const PATCHES: [(&str, &str); 6] = [
    ("/api/stream/config", "StreamConfig"),
    ("/api/audio", "AudioSettings"),
    ("/api/scene", "Scene"),
    ("/api/scene/canvas", "CanvasProperties"),
    ("/api/scene/layers/{id}", "Layer"),
    ("/api/inputs/{id}", "InputConfig"),
];

/// Bodies that may be left out.
const OPTIONAL_BODIES: [&str; 2] = ["/api/stream/start", "/api/recordings"];

/// Applies every finishing step to the document.
pub fn finish(doc: &mut Value) {
    // A layer's patch names `Animate`, which no operation does otherwise.
    let mut extra = vec![(
        "Animate".to_string(),
        <sm_scene::Animate as utoipa::PartialSchema>::schema(),
    )];
    <sm_scene::Animate as utoipa::ToSchema>::schemas(&mut extra);
    if let Some(components) = doc["components"]["schemas"].as_object_mut() {
        for (name, schema) in extra {
            components
                .entry(name)
                .or_insert_with(|| serde_json::to_value(schema).unwrap_or_default());
        }
    }
    let schemas = doc["components"]["schemas"].clone();
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            finish_operation(path, method, op, &schemas);
        }
    }
    // A composition may include another: merged from the inside out.
    for _ in 0..4 {
        let schemas = doc["components"]["schemas"].clone();
        merge_all_of(doc, &schemas, 0);
    }
    // A new named scene's id may be left out: the server makes one.
    let body =
        &mut doc["paths"]["/api/scenes"]["post"]["requestBody"]["content"]["application/json"];
    if body["schema"]["$ref"] == "#/components/schemas/NamedScene" {
        let mut schema = doc["components"]["schemas"]["NamedScene"].clone();
        if let Some(required) = schema.get_mut("required").and_then(Value::as_array_mut) {
            required.retain(|r| r != "id");
        }
        doc["paths"]["/api/scenes"]["post"]["requestBody"]["content"]["application/json"]["schema"] =
            schema;
    }
}

fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

fn finish_operation(path: &str, method: &str, op: &mut Value, schemas: &Value) {
    let Some(body) = op.get_mut("requestBody") else {
        return;
    };
    let content = body["content"].as_object().cloned().unwrap_or_default();
    let binary = content
        .keys()
        .any(|t| t == "application/octet-stream" || t == "application/wasm");
    if binary {
        let types: Vec<&str> = if path == "/api/assets" {
            ASSET_TYPES.to_vec()
        } else {
            content.keys().map(String::as_str).collect()
        };
        body["content"] = types
            .into_iter()
            .map(|t| {
                (
                    t.to_string(),
                    json!({"schema": {"type": "string", "format": "binary"}}),
                )
            })
            .collect::<Map<_, _>>()
            .into();
    } else if method == "patch"
        && let Some((_, target)) = PATCHES.iter().find(|(p, _)| *p == path)
    {
        let mut patch = patchable(&schemas[*target], schemas, 0);
        if *target == "Layer" {
            // A layer's patch may also animate the change.
            patch["properties"]["animate"] = json!({"$ref": "#/components/schemas/Animate"});
        }
        for media in body["content"].as_object_mut().into_iter().flatten() {
            media.1["schema"] = patch.clone();
        }
    }
    if method == "post" && OPTIONAL_BODIES.contains(&path) {
        body["required"] = Value::Bool(false);
    }
    let responses = op["responses"].as_object_mut();
    let Some(responses) = responses else {
        return;
    };
    let mut add = |status: &str, what: &str| {
        responses
            .entry(status.to_string())
            .or_insert_with(|| error(what));
    };
    if !binary {
        add(
            "400",
            "The body is not JSON (`malformed_json`) or could not be read",
        );
    }
    add(
        "413",
        "The body is larger than allowed (`payload_too_large`)",
    );
    add(
        "415",
        "The body's Content-Type is not one this operation takes",
    );
    add("422", "The body is not valid: the code names why");
}

/// The schema of a merge patch of `schema`: each object's fields optional, recursively
/// (objects merge), except inside arrays (an array replaces the old one whole).
fn patchable(schema: &Value, schemas: &Value, depth: usize) -> Value {
    if depth > 8 {
        return json!({});
    }
    if let Some(target) = schema["$ref"].as_str() {
        let name = target.rsplit('/').next().unwrap_or_default();
        return patchable(&schemas[name], schemas, depth + 1);
    }
    let Some(object) = schema.as_object() else {
        return schema.clone();
    };
    let mut out = object.clone();
    out.remove("required");
    if let Some(props) = out.get_mut("properties").and_then(Value::as_object_mut) {
        for (_, p) in props.iter_mut() {
            let is_array = p["type"] == "array"
                || p["type"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == "array"));
            if !is_array {
                *p = patchable(p, schemas, depth + 1);
            }
        }
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(list) = out.get_mut(key).and_then(Value::as_array_mut) {
            for s in list.iter_mut() {
                *s = patchable(s, schemas, depth + 1);
            }
        }
    }
    Value::Object(out)
}

/// Replaces every `allOf` of objects by one object holding all their properties.
fn merge_all_of(value: &mut Value, schemas: &Value, depth: usize) {
    if depth > 64 {
        return;
    }
    match value {
        Value::Object(map) => {
            for (_, v) in map.iter_mut() {
                merge_all_of(v, schemas, depth + 1);
            }
            if let Some(merged) = map.get("allOf").and_then(|a| merged(a, schemas)) {
                map.remove("allOf");
                for (k, v) in merged {
                    map.entry(k).or_insert(v);
                }
            }
        }
        Value::Array(list) => {
            for v in list {
                merge_all_of(v, schemas, depth + 1);
            }
        }
        _ => {}
    }
}

/// One object schema from the members of an `allOf`, if each is an object schema.
fn merged(all_of: &Value, schemas: &Value) -> Option<Map<String, Value>> {
    let mut properties = Map::new();
    let mut required: Vec<Value> = Vec::new();
    let mut closed = false;
    let mut description = None;
    for member in all_of.as_array()? {
        let member = match member["$ref"].as_str() {
            Some(r) => &schemas[r.rsplit('/').next()?],
            None => member,
        };
        if member["type"] != "object" || member.get("allOf").is_some() {
            return None;
        }
        properties.extend(
            member["properties"]
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        for r in member["required"].as_array().into_iter().flatten() {
            if !required.contains(r) {
                required.push(r.clone());
            }
        }
        closed |= member["additionalProperties"] == false;
        description = description.or_else(|| member.get("description").cloned());
    }
    let mut out = Map::new();
    out.insert("type".into(), "object".into());
    out.insert("properties".into(), properties.into());
    if !required.is_empty() {
        out.insert("required".into(), required.into());
    }
    if closed {
        out.insert("additionalProperties".into(), false.into());
    }
    if let Some(d) = description {
        out.insert("description".into(), d);
    }
    Some(out)
}

/// Checks a merge patch sent to `path` against the document's schema of that body: 422
/// `unknown_field`, `invalid_type` or `out_of_range` naming the field.
pub fn check_patch(path: &str, patch: &Value) -> Result<(), ApiError> {
    static VALIDATORS: OnceLock<HashMap<&'static str, jsonschema::Validator>> = OnceLock::new();
    let validators = VALIDATORS.get_or_init(|| {
        let doc = super::openapi();
        PATCHES
            .iter()
            .filter_map(|(p, _)| {
                let content = doc["paths"][*p]["patch"]["requestBody"]["content"].as_object()?;
                let mut schema = content.values().next()?["schema"].clone();
                // `$ref`s point into the document's components.
                schema["components"] = doc["components"].clone();
                let validator = jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft202012)
                    .build(&schema)
                    .expect("the document's patch schemas compile");
                Some((*p, validator))
            })
            .collect()
    });
    let Some(validator) = validators.get(path) else {
        return Ok(());
    };
    let Some(e) = validator.iter_errors(patch).next() else {
        return Ok(());
    };
    let at = e.instance_path().to_string();
    let field = at.trim_start_matches('/').replace('/', ".");
    let field = if field.is_empty() { ".".into() } else { field };
    let (code, message) = match e.kind() {
        Kind::AdditionalProperties { unexpected } => (
            "unknown_field",
            format!("{field}: unknown field(s) {}", unexpected.join(", ")),
        ),
        Kind::Type { .. } | Kind::Required { .. } | Kind::FalseSchema => {
            ("invalid_type", format!("{field}: {e}"))
        }
        _ => ("out_of_range", format!("{field}: {e}")),
    };
    Err(ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        code,
        message,
    ))
}
