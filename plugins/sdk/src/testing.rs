//! Checks for a template's own unit tests, run natively (`cargo test` on the build
//! machine's target): pure logic only, since the host functions exist only inside the
//! server.

use crate::Template;

/// Checks what [`Template::info`] says for consistency: the schema is a draft 2020-12
/// object schema with `"additionalProperties": false`, every default param is a declared
/// property, and both the default params and `{}` deserialize into
/// [`Template::Params`] (so a layer may give only some params: use `#[serde(default)]`).
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
    let schema = info
        .params_schema
        .as_object()
        .ok_or("the params schema is not a JSON object")?;
    match schema.get("$schema").and_then(|s| s.as_str()) {
        Some("https://json-schema.org/draft/2020-12/schema") => {}
        other => return Err(format!("\"$schema\" is {other:?}, not draft 2020-12")),
    }
    if schema.get("type").and_then(|t| t.as_str()) != Some("object") {
        return Err("the params schema must have \"type\": \"object\"".into());
    }
    if schema.get("additionalProperties") != Some(&serde_json::Value::Bool(false)) {
        return Err("the params schema must have \"additionalProperties\": false".into());
    }
    let properties = schema
        .get("properties")
        .and_then(|p| p.as_object())
        .ok_or("the params schema has no \"properties\"")?;
    let defaults = info
        .default_params
        .as_object()
        .ok_or("the default params are not a JSON object")?;
    for key in defaults.keys() {
        if !properties.contains_key(key) {
            return Err(format!("default param {key:?} is not in the schema"));
        }
    }
    serde_json::from_value::<T::Params>(info.default_params.clone())
        .map_err(|e| format!("the default params do not deserialize: {e}"))?;
    serde_json::from_str::<T::Params>("{}")
        .map_err(|e| format!("empty params do not deserialize: {e}"))?;
    Ok(())
}
