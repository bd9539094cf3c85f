//! The finishing of the OpenAPI document, so that it describes the server exactly (a client
//! generated from it, or a fuzzer reading it, meets no surprise):
//!
//! - every operation that takes a body lists the answers every body can get: 400 (not
//!   JSON), 413 (too large), 415 (wrong type), 422 (not valid);
//! - uploads are binary (`format: binary`) in the types the server takes;
//! - the body of `start` and of a new recording may be left out;
//! - a merge patch's body is the patched type with every field optional (objects merge,
//!   arrays replace), and no unknown field;
//! - `allOf` compositions (an item with `appliedAtFrame`, an input with its state) are one
//!   object with every property, so that `additionalProperties: false` holds for the whole.

use serde_json::{Map, Value, json};

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
    merge_all_of(doc, &schemas, 0);
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
        let patch = patchable(&schemas[*target], schemas, 0);
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
