//! Checks for a template's own unit tests, run natively (`cargo test` on the build
//! machine's target): pure logic only, since the host functions exist only inside the
//! server.

use serde_json::Value;

use crate::Template;

/// Checks what [`Template::info`] says, and the params schema derived from
/// [`Template::Params`], for consistency:
///
/// - the schema is a draft 2020-12 object schema with `"additionalProperties": false`
///   (derive `JsonSchema` on a struct with `#[serde(deny_unknown_fields)]`);
/// - every `$ref` in it points into its own `$defs` (the host resolves nothing else);
/// - every default param is a declared property, and equals the `default` the schema
///   gives that property, if any (both come from `Default` when the default params are
///   `serde_json::to_value(Params::default())`);
/// - both the default params and `{}` deserialize into [`Template::Params`] (so a layer
///   may give only some params: use `#[serde(default)]`).
///
/// ```ignore
/// #[test]
/// fn info_is_consistent() {
///     stream_manager_sdk::testing::check_info::<MyTemplate>().unwrap();
/// }
/// ```
pub fn check_info<T: Template>() -> Result<(), String> {
    let info = T::info();
    if info.name.is_empty() || info.version.is_empty() {
        return Err("name and version must not be empty".into());
    }
    if info.default_size.width == 0 || info.default_size.height == 0 {
        return Err("the default size must not be empty".into());
    }
    let schema_value = crate::schema::titled_params_schema::<T::Params>(&info.name);
    let schema = schema_value
        .as_object()
        .ok_or("the params schema is not a JSON object")?;
    match schema.get("$schema").and_then(|s| s.as_str()) {
        Some("https://json-schema.org/draft/2020-12/schema") => {}
        other => return Err(format!("\"$schema\" is {other:?}, not draft 2020-12")),
    }
    if schema.get("type").and_then(|t| t.as_str()) != Some("object") {
        return Err("the params schema must have \"type\": \"object\"".into());
    }
    if schema.get("additionalProperties") != Some(&Value::Bool(false)) {
        return Err(
            "the params schema must have \"additionalProperties\": false \
             (#[serde(deny_unknown_fields)] on the params struct)"
                .into(),
        );
    }
    check_refs(&schema_value, &schema_value)?;
    let properties = schema
        .get("properties")
        .and_then(|p| p.as_object())
        .ok_or("the params schema has no \"properties\"")?;
    let defaults = info
        .default_params
        .as_object()
        .ok_or("the default params are not a JSON object")?;
    for (key, value) in defaults {
        let property = properties
            .get(key)
            .ok_or_else(|| format!("default param {key:?} is not in the schema"))?;
        if let Some(default) = property.get("default")
            && default != value
        {
            return Err(format!(
                "default param {key:?} is {value}, but the schema's default is {default}"
            ));
        }
    }
    serde_json::from_value::<T::Params>(info.default_params.clone())
        .map_err(|e| format!("the default params do not deserialize: {e}"))?;
    serde_json::from_str::<T::Params>("{}")
        .map_err(|e| format!("empty params do not deserialize: {e}"))?;
    Ok(())
}

/// Checks that every `$ref` under `value` is `#` or `#/$defs/NAME` with NAME defined in
/// `root`: the host compiles the schema without resolving anything outside it.
fn check_refs(root: &Value, value: &Value) -> Result<(), String> {
    match value {
        Value::Object(object) => {
            if let Some(reference) = object.get("$ref") {
                let reference = reference.as_str().unwrap_or_default();
                let resolves = reference == "#"
                    || reference
                        .strip_prefix("#/$defs/")
                        .is_some_and(|name| root["$defs"].get(name).is_some());
                if !resolves {
                    return Err(format!(
                        "the params schema refers to {reference:?}, not to one of its own $defs"
                    ));
                }
            }
            object.values().try_for_each(|v| check_refs(root, v))
        }
        Value::Array(items) => items.iter().try_for_each(|v| check_refs(root, v)),
        _ => Ok(()),
    }
}
