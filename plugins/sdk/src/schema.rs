//! The params schema, derived from [`Template::Params`](crate::Template::Params).
//!
//! The host checks every params object against the JSON Schema a template describes
//! before `configure` sees it, so the schema has to say exactly what the params type
//! accepts. Writing it by hand let the two drift apart (a field renamed in Rust and not in
//! the schema, a range checked in one and not the other); deriving it with
//! [`schemars`](https://docs.rs/schemars/1) from the type serde deserializes into cannot.
//! The derive reads the serde attributes (`rename_all`, `default`, `deny_unknown_fields`,
//! `skip_serializing_if`, enum representations) and its own `#[schemars(...)]` ones for
//! what serde does not know: `range(min = .., max = ..)`, `length(max = ..)`,
//! `inner(length(max = ..))` for the items of a list, `with = "T"` for a field deserialized
//! through another type, `extend("key" = value)` for any other keyword. Doc comments
//! become `description`s, which operators see.
//!
//! The generated schema is draft 2020-12, which is what the host compiles it as
//! (`jsonschema`, with no remote or file references): types that are not inlined are
//! `$defs` of the root schema, referenced as `#/$defs/Name`, and nothing else is
//! referenced.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;

/// The JSON Schema (draft 2020-12) of params type `P`, as the SDK sends it in
/// `describe` (except for the root `title`, which the SDK sets to the template's name
/// unless `#[schemars(title = "...")]` gives one).
///
/// For a struct with `#[serde(default, deny_unknown_fields)]` it is an object schema
/// with `"additionalProperties": false`, each property with its `default` taken from the
/// `Default` impl, no property required.
///
/// ```
/// use serde::Deserialize;
/// use stream_manager_sdk::{Color, JsonSchema, params_schema};
///
/// #[derive(Deserialize, JsonSchema)]
/// #[serde(deny_unknown_fields, rename_all = "camelCase")]
/// struct Params {
///     /// Pixels per second.
///     #[schemars(range(min = 0, max = 5000))]
///     speed: f64,
///     text_color: Color,
/// }
///
/// let schema = params_schema::<Params>();
/// assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
/// assert_eq!(schema["additionalProperties"], false);
/// assert_eq!(schema["properties"]["speed"]["maximum"], 5000.0);
/// assert_eq!(schema["properties"]["textColor"]["pattern"], Color::SCHEMA_PATTERN);
/// ```
pub fn params_schema<P: JsonSchema>() -> serde_json::Value {
    SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator()
        .into_root_schema_for::<P>()
        .to_value()
}

/// [`params_schema`] with the root `title` set to `name` when it is only the Rust type's
/// name (what the derive gives when no title is set).
pub(crate) fn titled_params_schema<P: JsonSchema>(name: &str) -> serde_json::Value {
    let mut schema = params_schema::<P>();
    if let Some(object) = schema.as_object_mut() {
        let type_name = P::schema_name();
        let untitled = object
            .get("title")
            .is_none_or(|t| t.as_str() == Some(&*type_name));
        if untitled {
            object.insert("title".into(), name.into());
        }
    }
    schema
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    use super::*;
    use crate::Color;

    /// What the clock shows.
    #[derive(Clone, Copy, Debug, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        /// The time of day.
        #[default]
        Time,
        /// A countdown.
        Countdown,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(default, deny_unknown_fields)]
    struct Inner {
        #[schemars(range(min = 0, max = 359_999))]
        seconds: f64,
        running: bool,
    }

    impl Default for Inner {
        fn default() -> Inner {
            Inner {
                seconds: 600.0,
                running: false,
            }
        }
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(default, deny_unknown_fields, rename_all = "camelCase")]
    struct Params {
        /// The first line.
        #[schemars(length(max = 200))]
        name: String,
        mode: Mode,
        #[schemars(range(min = -1080, max = 1080))]
        #[serde(skip_serializing_if = "Option::is_none")]
        utc_offset_minutes: Option<i32>,
        #[schemars(length(max = 100), inner(length(max = 1000)))]
        items: Vec<String>,
        #[schemars(range(max = 1000), extend("exclusiveMinimum" = 0))]
        #[serde(skip_serializing_if = "Option::is_none")]
        font_size: Option<f32>,
        text_color: Color,
        clock: Inner,
    }

    impl Default for Params {
        fn default() -> Params {
            Params {
                name: "Jane".into(),
                mode: Mode::Time,
                utc_offset_minutes: None,
                items: Vec::new(),
                font_size: None,
                text_color: Color::rgba(255, 255, 255, 179),
                clock: Inner::default(),
            }
        }
    }

    #[test]
    fn derived_schema_keeps_what_a_hand_written_one_said() {
        let s = params_schema::<Params>();
        assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(s["type"], "object");
        assert_eq!(s["additionalProperties"], false);
        assert!(
            s.get("required").is_none(),
            "every field has a default: {s}"
        );
        let p = &s["properties"];
        assert_eq!(p["name"]["type"], "string");
        assert_eq!(p["name"]["maxLength"], 200);
        assert_eq!(p["name"]["default"], "Jane");
        assert_eq!(p["name"]["description"], "The first line.");
        assert_eq!(p["mode"]["default"], "time");
        assert_eq!(p["utcOffsetMinutes"]["type"], json!(["integer", "null"]));
        assert_eq!(p["utcOffsetMinutes"]["minimum"], -1080);
        assert_eq!(p["utcOffsetMinutes"]["maximum"], 1080);
        assert_eq!(p["items"]["maxItems"], 100);
        assert_eq!(p["items"]["items"]["maxLength"], 1000);
        assert_eq!(p["fontSize"]["exclusiveMinimum"], 0);
        assert_eq!(p["fontSize"]["maximum"], 1000.0);
        assert_eq!(
            p["textColor"],
            json!({"type": "string", "pattern": Color::SCHEMA_PATTERN, "default": "#ffffffb3"})
        );
        assert_eq!(
            p["clock"]["default"],
            json!({"seconds": 600.0, "running": false})
        );
    }

    #[test]
    fn references_stay_inside_the_schema() {
        let s = params_schema::<Params>();
        let mode = &s["properties"]["mode"]["$ref"];
        assert_eq!(mode, "#/$defs/Mode");
        let defs = &s["$defs"];
        let variants: Vec<&serde_json::Value> = defs["Mode"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| &v["const"])
            .collect();
        assert_eq!(variants, [&json!("time"), &json!("countdown")]);
        assert_eq!(s["properties"]["clock"]["$ref"], "#/$defs/Inner");
        assert_eq!(defs["Inner"]["additionalProperties"], false);
        assert_eq!(defs["Inner"]["properties"]["seconds"]["maximum"], 359_999.0);
        let text = s.to_string();
        assert_eq!(
            text.matches("\"$ref\"").count(),
            text.matches("\"#/$defs/").count(),
            "{text}"
        );
    }

    #[test]
    fn the_title_is_the_templates_name_unless_one_is_given() {
        assert_eq!(params_schema::<Params>()["title"], "Params");
        assert_eq!(titled_params_schema::<Params>("clock")["title"], "clock");

        /// Made by hand.
        #[derive(Deserialize, JsonSchema)]
        #[schemars(title = "Lower third")]
        struct Titled {}
        assert_eq!(titled_params_schema::<Titled>("x")["title"], "Lower third");
    }
}
