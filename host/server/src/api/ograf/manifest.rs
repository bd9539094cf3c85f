//! The OGraf manifest of a template, generated from what the template describes, and the
//! GDD (Graphics Data Definition) form of its params schema.
//!
//! A template's params schema is JSON Schema 2020-12 as the template wrote it (with the SDK:
//! derived by `schemars`, so with `$ref`s into `$defs`, `oneOf`s of `const`s for enums and
//! `["string", "null"]` for optional values). GDD is the subset an OGraf controller builds
//! its forms from: every property has exactly one `type` of `boolean`, `string`, `number`,
//! `integer`, `array` or `object`; an object has `properties`, an array `items`; colours,
//! selections and the like say so in `gddType`. [`gdd_schema`] rewrites one into the other:
//! references and `allOf` are inlined, a choice of constants becomes an `enum` (a `select`
//! with labels when they are strings), a nullable type loses its `null`, another choice
//! keeps its first alternative, a string with the SDK's colour pattern becomes a
//! `color-rrggbbaa`, and whatever says no type becomes a `string`. Keywords outside the
//! subset are left out.
//!
//! The GDD schema describes the data for a form; the template's own schema still judges the
//! data the facade receives, so what the GDD form leaves out (a `null`, a second alternative)
//! is narrowed for forms only.

use std::cell::Cell;

use serde::Serialize;
use serde_json::{Map, Value, json};
use sm_plugin_host::registry::TemplateView;

/// `$schema` of a Graphic manifest (its JSON Schema, which doubles as the OGraf version).
pub const MANIFEST_SCHEMA: &str =
    "https://ograf.ebu.io/v1/specification/json-schemas/graphics/schema.json";

/// Steps of every graphic here: a play shows it, a stop takes it off (OGraf's one-step
/// model).
pub const STEP_COUNT: i64 = 1;

/// Deepest nesting followed into a params schema (properties, items, references); what is
/// deeper becomes a `string`.
const MAX_DEPTH: usize = 8;

/// Most schema nodes rewritten for one template; the rest become `string`s (a schema whose
/// references branch at every level would otherwise grow exponentially).
const MAX_NODES: usize = 4096;

/// The GDD types of a property (JSON Schema's types less `null`).
const GDD_TYPES: [&str; 6] = ["boolean", "string", "number", "integer", "array", "object"];

/// Colour patterns meaning `#rrggbb` or `#rrggbbaa`: the SDK's `Color::SCHEMA_PATTERN` first
/// (the host does not depend on the guest SDK, so it is repeated here), then hand-written
/// equivalents.
const RGBA_PATTERNS: [&str; 4] = [
    "^#([0-9a-fA-F]{6}|[0-9a-fA-F]{8})$",
    "^#([0-9a-fA-F]{8}|[0-9a-fA-F]{6})$",
    "^#[0-9a-fA-F]{8}$",
    "^#[0-9a-f]{8}$",
];
/// Colour patterns meaning `#rrggbb` only.
const RGB_PATTERNS: [&str; 2] = ["^#[0-9a-fA-F]{6}$", "^#[0-9a-f]{6}$"];

/// An OGraf Graphic manifest (`graphics/schema.json` of the pinned revision).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// [`MANIFEST_SCHEMA`].
    #[serde(rename = "$schema")]
    pub schema_uri: String,
    /// The template id.
    pub id: String,
    /// The template's own version (as it describes itself).
    pub version: String,
    /// The template's name.
    pub name: String,
    /// Its one-line description.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Where the graphic's code is: a WebAssembly component this server runs, not a
    /// JavaScript module, so this names its entry in `/api/templates`.
    pub main: String,
    /// Always true: it renders in real time, on the program.
    pub supports_real_time: bool,
    /// Always false.
    pub supports_non_real_time: bool,
    /// [`STEP_COUNT`].
    pub step_count: i64,
    /// The params schema in GDD form ([`gdd_schema`]): the data of `load` and
    /// `updateAction`.
    pub schema: Value,
    /// What only this server knows about the template.
    #[serde(rename = "v_streamManager")]
    pub vendor: Vendor,
}

/// The `v_streamManager` vendor field of a manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Vendor {
    /// The template's version number in the registry (counts uploads and swaps).
    pub template_version: u32,
    /// `[width, height]` it is designed for: a layer that `load` creates gets this box,
    /// clamped to the canvas and centred.
    pub default_size: [u32; 2],
    /// The plugin API version it was built against.
    pub api_version: String,
}

/// The manifest of template `t`.
pub fn manifest(t: &TemplateView) -> Manifest {
    Manifest {
        schema_uri: MANIFEST_SCHEMA.to_string(),
        id: t.id.clone(),
        version: t.info.version.clone(),
        name: t.info.name.clone(),
        description: t.info.description.clone(),
        main: format!("/api/templates/{}", t.id),
        supports_real_time: true,
        supports_non_real_time: false,
        step_count: STEP_COUNT,
        schema: gdd_schema(&t.info.params_schema),
        vendor: Vendor {
            template_version: t.version,
            default_size: t.info.default_size,
            api_version: t.info.api_version.clone(),
        },
    }
}

/// `params_schema` in GDD form: an object schema whose every property (nested ones too) has
/// one GDD type. See the module documentation for the rules.
pub fn gdd_schema(params_schema: &Value) -> Value {
    let cx = Rewriter {
        root: params_schema,
        nodes: Cell::new(0),
    };
    let mut out = cx.property(params_schema, 0);
    // A template's params are always a JSON object.
    if out.get("type") != Some(&json!("object")) {
        out = Map::from_iter([
            ("type".to_string(), json!("object")),
            ("properties".to_string(), json!({})),
        ]);
    }
    Value::Object(out)
}

struct Rewriter<'a> {
    /// The whole params schema, which local `$ref`s point into.
    root: &'a Value,
    /// Nodes rewritten so far (bounded by [`MAX_NODES`]).
    nodes: Cell<usize>,
}

impl Rewriter<'_> {
    /// One schema in GDD form.
    fn property(&self, schema: &Value, depth: usize) -> Map<String, Value> {
        self.nodes.set(self.nodes.get() + 1);
        if depth > MAX_DEPTH || self.nodes.get() > MAX_NODES {
            return untyped();
        }
        let Some(s) = self.flatten(schema, depth) else {
            return untyped();
        };
        let ty = type_of(&s);
        let mut out = Map::new();
        out.insert("type".into(), json!(ty));
        copy(
            &mut out,
            &s,
            &["title", "description", "label"],
            Value::is_string,
        );
        copy(&mut out, &s, &["hidden"], Value::is_boolean);
        copy(&mut out, &s, &["order"], Value::is_number);
        // GDD the template wrote itself stays.
        copy(&mut out, &s, &["gddType"], Value::is_string);
        copy(&mut out, &s, &["gddOptions"], Value::is_object);
        match ty {
            "string" => {
                copy(&mut out, &s, &["minLength", "maxLength"], Value::is_u64);
                copy(&mut out, &s, &["pattern", "format"], Value::is_string);
            }
            "number" | "integer" => {
                let bounds = [
                    "minimum",
                    "maximum",
                    "exclusiveMinimum",
                    "exclusiveMaximum",
                    "multipleOf",
                ];
                copy(&mut out, &s, &bounds, Value::is_number);
                copy(&mut out, &s, &["format"], Value::is_string);
            }
            "array" => {
                let items = match (s.get("items"), s.get("prefixItems")) {
                    (Some(items @ Value::Object(_)), _) => self.property(items, depth + 1),
                    (_, Some(Value::Array(first))) if !first.is_empty() => {
                        self.property(&first[0], depth + 1)
                    }
                    _ => untyped(),
                };
                out.insert("items".into(), Value::Object(items));
                copy(&mut out, &s, &["minItems", "maxItems"], Value::is_u64);
                copy(&mut out, &s, &["uniqueItems"], Value::is_boolean);
            }
            "object" => {
                let mut properties = Map::new();
                if let Some(Value::Object(given)) = s.get("properties") {
                    for (name, sub) in given {
                        let sub = self.property(sub, depth + 1);
                        properties.insert(name.clone(), Value::Object(sub));
                    }
                }
                out.insert("properties".into(), Value::Object(properties));
                if let Some(Value::Array(required)) = s.get("required") {
                    let mut names: Vec<&Value> =
                        required.iter().filter(|r| r.is_string()).collect();
                    names.dedup();
                    out.insert("required".into(), json!(names));
                }
                match s.get("additionalProperties") {
                    Some(b @ Value::Bool(_)) => {
                        out.insert("additionalProperties".into(), b.clone());
                    }
                    Some(extra @ Value::Object(_)) => {
                        let extra = self.property(extra, depth + 1);
                        out.insert("additionalProperties".into(), Value::Object(extra));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        let choices: Vec<Value> = match (s.get("enum"), s.get("const")) {
            (Some(Value::Array(values)), _) => values.clone(),
            (None, Some(value)) => vec![value.clone()],
            _ => Vec::new(),
        };
        let choices: Vec<Value> = choices.into_iter().filter_map(|v| of_type(ty, v)).collect();
        if !choices.is_empty() {
            out.insert("enum".into(), Value::Array(choices));
        }
        if let Some(default) = s.get("default").cloned().and_then(|d| of_type(ty, d)) {
            out.insert("default".into(), default);
        }
        if ty == "string" && !out.contains_key("gddType") {
            gdd_type(&mut out, &s);
        }
        out
    }

    /// `schema` with its `$ref` and `allOf` inlined and its `oneOf`/`anyOf` decided (see
    /// [`choice`]): a plain object of keywords. `None` for a schema that is not an object
    /// (`true`: anything).
    fn flatten(&self, schema: &Value, depth: usize) -> Option<Map<String, Value>> {
        let Value::Object(given) = schema else {
            return None;
        };
        if depth > MAX_DEPTH {
            return None;
        }
        let mut out = given.clone();
        if let Some(target) = out
            .remove("$ref")
            .as_ref()
            .and_then(Value::as_str)
            .and_then(|r| self.resolve(r))
            && let Some(base) = self.flatten(target, depth + 1)
        {
            merge_under(&mut out, base);
        }
        if let Some(Value::Array(all)) = out.remove("allOf") {
            for branch in &all {
                if let Some(b) = self.flatten(branch, depth + 1) {
                    merge_under(&mut out, b);
                }
            }
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(Value::Array(alternatives)) = out.remove(key) {
                let alternatives: Vec<Map<String, Value>> = alternatives
                    .iter()
                    .filter_map(|a| self.flatten(a, depth + 1))
                    .filter(|a| !null_only(a))
                    .collect();
                if let Some(picked) = choice(alternatives) {
                    merge_under(&mut out, picked);
                }
            }
        }
        Some(out)
    }

    /// The target of a local reference (`#/$defs/Name`); remote ones are not followed.
    fn resolve(&self, reference: &str) -> Option<&Value> {
        let pointer = reference.strip_prefix('#')?;
        self.root.pointer(pointer)
    }
}

/// A property that says nothing about its type: a string in a form.
fn untyped() -> Map<String, Value> {
    Map::from_iter([("type".to_string(), json!("string"))])
}

/// Copies the `keys` of `from` whose values pass `keep`.
fn copy(
    out: &mut Map<String, Value>,
    from: &Map<String, Value>,
    keys: &[&str],
    keep: fn(&Value) -> bool,
) {
    for key in keys {
        if let Some(v) = from.get(*key).filter(|v| keep(v)) {
            out.insert((*key).to_string(), v.clone());
        }
    }
}

/// Adds `base`'s keywords to `out` where `out` has none; `properties` and `required` are
/// joined (`out`'s own win).
fn merge_under(out: &mut Map<String, Value>, base: Map<String, Value>) {
    for (key, value) in base {
        match (out.get_mut(&key), value) {
            (None, value) => {
                out.insert(key, value);
            }
            (Some(Value::Object(mine)), Value::Object(theirs)) if key == "properties" => {
                for (name, sub) in theirs {
                    mine.entry(name).or_insert(sub);
                }
            }
            (Some(Value::Array(mine)), Value::Array(theirs)) if key == "required" => {
                for name in theirs {
                    if !mine.contains(&name) {
                        mine.push(name);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Whether an alternative allows only `null`.
fn null_only(s: &Map<String, Value>) -> bool {
    s.get("type") == Some(&json!("null")) || s.get("const") == Some(&Value::Null)
}

/// What a `oneOf`/`anyOf` becomes: a choice of constants of one type becomes an `enum`
/// (strings with a `select`'s labels from the alternatives' descriptions); anything else is
/// its first alternative.
fn choice(alternatives: Vec<Map<String, Value>>) -> Option<Map<String, Value>> {
    let constant = |a: &Map<String, Value>| match (a.get("const"), a.get("enum")) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(Value::Array(one))) if one.len() == 1 => Some(one[0].clone()),
        _ => None,
    };
    let values: Option<Vec<Value>> = alternatives.iter().map(constant).collect();
    let Some(values) = values.filter(|v| !v.is_empty()) else {
        return alternatives.into_iter().next();
    };
    let kinds: Vec<&str> = values.iter().map(kind_of).collect();
    if kinds.iter().any(|k| *k != kinds[0]) {
        return alternatives.into_iter().next();
    }
    let mut out = Map::new();
    out.insert("type".into(), json!(kinds[0]));
    if kinds[0] == "string" {
        let labels: Map<String, Value> = values
            .iter()
            .zip(&alternatives)
            .map(|(v, a)| {
                let label = a
                    .get("title")
                    .or(a.get("description"))
                    .and_then(Value::as_str)
                    .or(v.as_str())
                    .unwrap_or_default();
                (v.as_str().unwrap_or_default().to_string(), json!(label))
            })
            .collect();
        out.insert("gddType".into(), json!("select"));
        out.insert("gddOptions".into(), json!({ "labels": labels }));
    }
    out.insert("enum".into(), Value::Array(values));
    Some(out)
}

/// The GDD type of a flattened schema: its `type` (the first that is not `null`), else what
/// its `enum`, `const`, `properties` or `items` imply, else `string`.
fn type_of(s: &Map<String, Value>) -> &'static str {
    let gdd = |t: &str| GDD_TYPES.iter().copied().find(|g| *g == t);
    match s.get("type") {
        Some(Value::String(t)) => {
            if let Some(g) = gdd(t) {
                return g;
            }
        }
        Some(Value::Array(types)) => {
            if let Some(g) = types.iter().filter_map(Value::as_str).find_map(gdd) {
                return g;
            }
        }
        _ => {}
    }
    let values: Vec<&Value> = match (s.get("enum"), s.get("const")) {
        (Some(Value::Array(values)), _) => values.iter().filter(|v| !v.is_null()).collect(),
        (None, Some(value)) if !value.is_null() => vec![value],
        _ => Vec::new(),
    };
    if let Some(first) = values.first() {
        let kind = kind_of(first);
        let numeric = |k: &str| k == "integer" || k == "number";
        if numeric(kind) && values.iter().all(|v| numeric(kind_of(v))) {
            let all_integers = values.iter().all(|v| kind_of(v) == "integer");
            return if all_integers { "integer" } else { "number" };
        }
        return kind;
    }
    if s.contains_key("properties") {
        "object"
    } else if s.contains_key("items") || s.contains_key("prefixItems") {
        "array"
    } else {
        "string"
    }
}

/// The GDD type of a JSON value (`null` counts as a string).
fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(n)
            if n.as_f64()
                .is_some_and(|f| f.fract() == 0.0 && f.abs() < 9.0e15) =>
        {
            "integer"
        }
        Value::Number(_) => "number",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::String(_) | Value::Null => "string",
    }
}

/// `v` if it is of GDD type `ty` (an integral float as an integer), else `None`.
fn of_type(ty: &str, v: Value) -> Option<Value> {
    match (ty, &v) {
        ("string", Value::String(_))
        | ("boolean", Value::Bool(_))
        | ("array", Value::Array(_))
        | ("object", Value::Object(_))
        | ("number", Value::Number(_)) => Some(v),
        ("integer", Value::Number(n)) if n.is_i64() || n.is_u64() => Some(v),
        ("integer", Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| json!(f as i64)),
        _ => None,
    }
}

/// The `gddType` of a string property: a colour by its pattern, a `select` for an `enum`.
fn gdd_type(out: &mut Map<String, Value>, s: &Map<String, Value>) {
    let pattern = s.get("pattern").and_then(Value::as_str).unwrap_or_default();
    let colour = if RGBA_PATTERNS.contains(&pattern) {
        Some(("color-rrggbbaa", "^#[0-9a-f]{8}$", 8))
    } else if RGB_PATTERNS.contains(&pattern) {
        Some(("color-rrggbb", "^#[0-9a-f]{6}$", 6))
    } else {
        None
    };
    if let Some((gdd, pattern, digits)) = colour {
        out.insert("gddType".into(), json!(gdd));
        out.insert("pattern".into(), json!(pattern));
        match out
            .get("default")
            .and_then(Value::as_str)
            .and_then(|d| hex_colour(d, digits))
        {
            Some(d) => out.insert("default".into(), json!(d)),
            None => out.remove("default"),
        };
        return;
    }
    if let Some(Value::Array(values)) = out.get("enum") {
        let labels: Map<String, Value> = values
            .iter()
            .filter_map(Value::as_str)
            .map(|v| (v.to_string(), json!(v)))
            .collect();
        out.insert("gddType".into(), json!("select"));
        out.insert("gddOptions".into(), json!({ "labels": labels }));
    }
}

/// `#rrggbb` or `#rrggbbaa` as lowercase hex of `digits` digits (6 drops an opaque alpha, 8
/// adds one); `None` if it is not such a colour or the alpha would be lost.
fn hex_colour(s: &str, digits: usize) -> Option<String> {
    let hex = s.strip_prefix('#')?;
    if !(hex.len() == 6 || hex.len() == 8) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    match (hex.len(), digits) {
        (6, 8) => Some(format!("#{hex}ff")),
        (8, 6) => hex.strip_suffix("ff").map(|rgb| format!("#{rgb}")),
        _ => Some(format!("#{hex}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sm_plugin_host::TemplateInfo;

    /// A spec document of the pinned revision, from the e2e test data.
    macro_rules! spec_doc {
        ($path:literal) => {
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/e2e/data/ograf/json-schemas/",
                $path
            ))
        };
    }

    /// A validator of the pinned revision's schema at `id` (the manifest's, or the GDD
    /// object meta-schema), with the documents it refers to (nothing fetched).
    fn validator(id: &str) -> jsonschema::Validator {
        let docs = [
            spec_doc!("graphics/schema.json"),
            spec_doc!("gdd/object.json"),
            spec_doc!("gdd/gdd-types.json"),
            spec_doc!("gdd/basic-types.json"),
            spec_doc!("lib/action.json"),
            spec_doc!("lib/constraints/number.json"),
            spec_doc!("lib/constraints/boolean.json"),
            spec_doc!("lib/constraints/string.json"),
        ];
        let docs: Vec<Value> = docs
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let resources = docs
            .iter()
            .map(|d| (d["$id"].as_str().unwrap().to_string(), d.clone()));
        let registry = jsonschema::Registry::new()
            .extend(resources)
            .unwrap()
            .prepare()
            .unwrap();
        jsonschema::options()
            .with_registry(&registry)
            .build(&json!({ "$ref": id }))
            .unwrap()
    }

    /// Asserts `value` is valid against `v`, listing the errors.
    fn assert_valid(v: &jsonschema::Validator, value: &Value) {
        let errors: Vec<String> = v
            .iter_errors(value)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}\nin {value:#}");
    }

    fn gdd_validator() -> jsonschema::Validator {
        validator("https://ograf.ebu.io/v1/specification/json-schemas/gdd/object.json")
    }

    /// Every property, at any depth, has one GDD type (and objects properties, arrays items).
    fn assert_typed(schema: &Value, at: &str) {
        let ty = schema["type"]
            .as_str()
            .unwrap_or_else(|| panic!("{at}: no type in {schema}"));
        assert!(GDD_TYPES.contains(&ty), "{at}: {ty}");
        match ty {
            "object" => {
                for (name, sub) in schema["properties"].as_object().unwrap() {
                    assert_typed(sub, &format!("{at}.{name}"));
                }
            }
            "array" => assert_typed(&schema["items"], &format!("{at}[]")),
            _ => {}
        }
    }

    /// The lower third's params schema as its template describes it.
    fn lower_third() -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "additionalProperties": false,
            "title": "lower-third",
            "type": "object",
            "properties": {
                "accentColor": {"default": "#e63946", "pattern": RGBA_PATTERNS[0], "type": "string"},
                "backgroundColor": {"default": "#1D3557E6", "pattern": RGBA_PATTERNS[0], "type": "string"},
                "font": {"description": "Family of an uploaded font; null for the default font.",
                    "maxLength": 200, "type": ["string", "null"]},
                "name": {"default": "Jane Doe", "maxLength": 200, "type": "string"},
                "visible": {"default": true, "type": "boolean"}
            }
        })
    }

    #[test]
    fn colours_become_gdd_colours_and_nullable_types_lose_null() {
        let gdd = gdd_schema(&lower_third());
        assert_valid(&gdd_validator(), &gdd);
        assert_typed(&gdd, "params");
        let p = &gdd["properties"];
        assert_eq!(
            p["accentColor"],
            json!({"type": "string", "gddType": "color-rrggbbaa",
                "pattern": "^#[0-9a-f]{8}$", "default": "#e63946ff"})
        );
        assert_eq!(p["backgroundColor"]["default"], "#1d3557e6");
        assert_eq!(p["font"]["type"], "string");
        assert_eq!(p["font"]["maxLength"], 200);
        assert!(p["font"].get("default").is_none());
        assert_eq!(p["visible"], json!({"type": "boolean", "default": true}));
        assert_eq!(gdd["additionalProperties"], false);
        assert!(gdd.get("$schema").is_none());
    }

    /// The shapes `schemars` gives: `$ref`s into `$defs`, enums as `oneOf` of `const`s,
    /// nested objects, arrays, `anyOf` with `null`.
    #[test]
    fn references_choices_and_nesting_are_inlined() {
        let schema = json!({
            "$defs": {
                "Mode": {"description": "What the clock shows.", "oneOf": [
                    {"const": "time", "description": "The time of day.", "type": "string"},
                    {"const": "countdown", "description": "The time left.", "type": "string"}
                ]},
                "Direction": {"enum": ["down", "up"], "type": "string"},
                "Clock": {"type": "object", "additionalProperties": false, "properties": {
                    "direction": {"$ref": "#/$defs/Direction", "default": "down"},
                    "seconds": {"type": "number", "format": "double", "minimum": 0, "default": 600.0}
                }},
                "Level": {"enum": [1, 2, 3]}
            },
            "type": "object",
            "properties": {
                "mode": {"$ref": "#/$defs/Mode", "default": "time"},
                "clock": {"$ref": "#/$defs/Clock", "description": "The game clock."},
                "offset": {"type": ["integer", "null"], "format": "int32", "minimum": -1080},
                "items": {"type": "array", "items": {"type": "string", "maxLength": 1000}, "default": []},
                "level": {"anyOf": [{"$ref": "#/$defs/Level"}, {"type": "null"}], "default": 2.0},
                "both": {"allOf": [{"properties": {"a": {"type": "integer"}}}, {"properties": {"b": {}}, "required": ["b"]}]}
            }
        });
        let gdd = gdd_schema(&schema);
        assert_valid(&gdd_validator(), &gdd);
        assert_typed(&gdd, "params");
        let p = &gdd["properties"];
        assert_eq!(
            p["mode"],
            json!({"type": "string", "gddType": "select", "enum": ["time", "countdown"],
                "gddOptions": {"labels": {"time": "The time of day.", "countdown": "The time left."}},
                "description": "What the clock shows.", "default": "time"})
        );
        assert_eq!(p["clock"]["description"], "The game clock.");
        let direction = &p["clock"]["properties"]["direction"];
        assert_eq!(direction["gddType"], "select");
        assert_eq!(direction["enum"], json!(["down", "up"]));
        assert_eq!(direction["default"], "down");
        assert_eq!(p["clock"]["properties"]["seconds"]["default"], 600.0);
        assert_eq!(p["offset"]["type"], "integer");
        assert_eq!(
            p["items"]["items"],
            json!({"type": "string", "maxLength": 1000})
        );
        assert_eq!(
            p["level"],
            json!({"type": "integer", "enum": [1, 2, 3], "default": 2})
        );
        assert_eq!(p["both"]["properties"]["a"]["type"], "integer");
        assert_eq!(p["both"]["properties"]["b"]["type"], "string");
        assert_eq!(p["both"]["required"], json!(["b"]));
        assert!(gdd.get("$defs").is_none());
    }

    /// What says nothing, says it badly or never ends still comes out typed.
    #[test]
    fn untyped_and_odd_schemas_fall_back_to_typed_ones() {
        let schema = json!({
            "$defs": {"node": {"type": "object", "properties": {
                "child": {"$ref": "#/$defs/node"},
                "other": {"$ref": "#/$defs/node"}
            }}},
            "properties": {
                "anything": {},
                "yes": true,
                "list": {"type": "array"},
                "tuple": {"type": "array", "prefixItems": [{"type": "boolean"}]},
                "bag": {"type": "object"},
                "map": {"type": "object", "additionalProperties": {"type": "number"}},
                "tree": {"$ref": "#/$defs/node"},
                "remote": {"$ref": "https://example.com/schema.json"},
                "nothing": {"type": "null"},
                "either": {"oneOf": [{"type": "number"}, {"type": "string"}]},
                "mixed": {"enum": [1, "a", null]},
                "colour": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$", "default": "#AABBCC"},
                "badColour": {"type": "string", "pattern": RGBA_PATTERNS[0], "default": "red"},
                "ref": {"$ref": "#/no/such/thing", "description": "dangling"},
                "lengths": {"type": "string", "maxLength": -1, "minLength": "two"}
            }
        });
        let gdd = gdd_schema(&schema);
        assert_valid(&gdd_validator(), &gdd);
        assert_typed(&gdd, "params");
        let p = &gdd["properties"];
        for name in ["anything", "yes", "remote", "nothing"] {
            assert_eq!(p[name], json!({"type": "string"}), "{name}");
        }
        assert_eq!(p["list"]["items"], json!({"type": "string"}));
        assert_eq!(p["tuple"]["items"], json!({"type": "boolean"}));
        assert_eq!(p["bag"]["properties"], json!({}));
        assert_eq!(p["map"]["additionalProperties"], json!({"type": "number"}));
        assert_eq!(p["either"]["type"], "number");
        assert_eq!(p["mixed"], json!({"type": "integer", "enum": [1]}));
        assert_eq!(
            p["colour"],
            json!({"type": "string", "gddType": "color-rrggbb", "pattern": "^#[0-9a-f]{6}$", "default": "#aabbcc"})
        );
        assert!(
            p["badColour"].get("default").is_none(),
            "{}",
            p["badColour"]
        );
        assert_eq!(
            p["ref"],
            json!({"type": "string", "description": "dangling"})
        );
        assert_eq!(p["lengths"], json!({"type": "string"}));
        // The recursive type ends, typed, within the depth bound.
        let mut node = &p["tree"];
        let mut levels = 0;
        while node["type"] == "object" {
            node = &node["properties"]["child"];
            levels += 1;
        }
        assert!((2..=MAX_DEPTH).contains(&levels), "{levels}");
        assert_eq!(node["type"], "string");
        // Not an object at the top: params are an object all the same.
        for top in [json!(true), json!({"type": "string"}), json!(7)] {
            let gdd = gdd_schema(&top);
            assert_eq!(gdd, json!({"type": "object", "properties": {}}), "{top}");
        }
    }

    /// A schema whose references branch at every level is cut off at the node budget.
    #[test]
    fn branching_references_are_bounded() {
        let children: Map<String, Value> = (0..12)
            .map(|i| (format!("c{i}"), json!({"$ref": "#"})))
            .collect();
        let schema = json!({"type": "object", "properties": children});
        let gdd = gdd_schema(&schema);
        assert_typed(&gdd, "params");
        assert!(gdd.to_string().len() < 2_000_000);
    }

    #[test]
    fn colour_defaults_are_normalised() {
        assert_eq!(hex_colour("#ABCDEF", 8).as_deref(), Some("#abcdefff"));
        assert_eq!(hex_colour("#abcdef80", 8).as_deref(), Some("#abcdef80"));
        assert_eq!(hex_colour("#abcdefFF", 6).as_deref(), Some("#abcdef"));
        assert_eq!(hex_colour("#abcdef80", 6), None);
        assert_eq!(hex_colour("#abc", 6), None);
        assert_eq!(hex_colour("abcdef", 6), None);
    }

    /// The manifest of a template validates against the pinned manifest schema.
    #[test]
    fn the_manifest_is_a_valid_ograf_manifest() {
        let view = TemplateView {
            id: "lower-third".into(),
            version: 3,
            info: TemplateInfo {
                name: "lower-third".into(),
                version: "0.1.0".into(),
                description: "A name and a title".into(),
                params_schema: lower_third(),
                default_params: json!({}),
                default_size: [1280, 200],
                api_version: "0.1.0".into(),
            },
            versions: Vec::new(),
        };
        let m = serde_json::to_value(manifest(&view)).unwrap();
        assert_valid(&validator(MANIFEST_SCHEMA), &m);
        assert_eq!(m["$schema"], MANIFEST_SCHEMA);
        assert_eq!(m["id"], "lower-third");
        assert_eq!(m["stepCount"], 1);
        assert_eq!(m["v_streamManager"]["templateVersion"], 3);
        assert_eq!(
            m["schema"]["properties"]["accentColor"]["gddType"],
            "color-rrggbbaa"
        );
        // The validator is not a rubber stamp: a manifest without its schema URI, or with
        // an untyped property, is refused.
        let mut bad = m.clone();
        bad.as_object_mut().unwrap().remove("$schema");
        assert!(!validator(MANIFEST_SCHEMA).is_valid(&bad));
        let mut bad = m.clone();
        bad["schema"]["properties"]["name"] = json!({"maxLength": 3});
        assert!(!validator(MANIFEST_SCHEMA).is_valid(&bad));
    }
}
