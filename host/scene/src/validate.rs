//! Validation of a scene against its limits and the assets and templates that exist; a
//! refused scene names the field at fault.

use sm_compose::commands::Rgba;

use crate::model::*;

/// What a scene may refer to: the assets that exist.
pub trait AssetLookup {
    /// Whether `id` is an image asset.
    fn is_image(&self, id: &str) -> bool;
    /// Whether a font of `family` exists (besides the embedded default).
    fn has_family(&self, family: &str) -> bool;
    /// Whether template `id` exists.
    fn has_template(&self, _id: &str) -> bool {
        false
    }
    /// Checks a template layer's params (its template's defaults when it has none) against
    /// the JSON Schema of the current version of its template.
    fn check_template(&self, _spec: &TemplateSpec) -> Result<(), String> {
        Ok(())
    }
    /// Whether live input `id` exists.
    fn has_input(&self, _id: &str) -> bool {
        false
    }
}

/// No uploaded assets.
pub struct NoAssets;

impl AssetLookup for NoAssets {
    fn is_image(&self, _: &str) -> bool {
        false
    }
    fn has_family(&self, _: &str) -> bool {
        false
    }
}

/// Why a scene was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SceneError {
    /// A value outside its range or format.
    #[error("{field}: {reason}")]
    OutOfRange {
        /// JSON path.
        field: String,
        /// What is allowed.
        reason: String,
    },
    /// A layer kind that does not exist.
    #[error("{field}: unknown layer kind {kind:?}; one of shape, text, image, template, video")]
    UnknownKind {
        /// JSON path.
        field: String,
        /// The kind given.
        kind: String,
    },
    /// An image layer naming an asset (or a text layer naming a font family) that does not
    /// exist.
    #[error("{field}: unknown asset {asset:?}")]
    UnknownAsset {
        /// JSON path.
        field: String,
        /// The id given.
        asset: String,
    },
    /// A template layer naming a template that does not exist.
    #[error("{field}: unknown template {template:?}")]
    UnknownTemplate {
        /// JSON path.
        field: String,
        /// The id given.
        template: String,
    },
    /// A video layer naming an input that does not exist.
    #[error("{field}: unknown input {input:?}")]
    UnknownInput {
        /// JSON path.
        field: String,
        /// The id given.
        input: String,
    },
    /// Template params refused by its schema or by the template itself.
    #[error("{field}: {message}")]
    InvalidParams {
        /// JSON path.
        field: String,
        /// Why, in the schema's or the template's words.
        message: String,
    },
}

/// Largest params object of a template layer, as JSON.
const MAX_PARAMS_BYTES: usize = 64 * 1024;

fn out_of_range(field: impl Into<String>, reason: impl Into<String>) -> SceneError {
    SceneError::OutOfRange {
        field: field.into(),
        reason: reason.into(),
    }
}

fn check_color(field: &str, s: &str) -> Result<Rgba, SceneError> {
    parse_color(s)
        .ok_or_else(|| out_of_range(field, format!("{s:?} is not a #rrggbb or #rrggbbaa colour")))
}

fn check_finite(field: &str, v: f32, min: f32, max: f32) -> Result<(), SceneError> {
    if !v.is_finite() || v < min || v > max {
        return Err(out_of_range(field, format!("{v} is outside {min}..={max}")));
    }
    Ok(())
}

/// Checks a layer id's characters and length.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_fill(field: &str, fill: &ShapeFill) -> Result<(), SceneError> {
    match fill {
        ShapeFill::Color(c) => check_color(field, c).map(drop),
        ShapeFill::Gradient(g) => {
            if g.kind != "linear" && g.kind != "radial" {
                return Err(out_of_range(format!("{field}.type"), "linear or radial"));
            }
            check_finite(&format!("{field}.angle"), g.angle, -36000.0, 36000.0)?;
            if !(2..=16).contains(&g.stops.len()) {
                return Err(out_of_range(format!("{field}.stops"), "2 to 16 stops"));
            }
            for (i, s) in g.stops.iter().enumerate() {
                check_finite(&format!("{field}.stops[{i}].offset"), s.offset, 0.0, 1.0)?;
                check_color(&format!("{field}.stops[{i}].color"), &s.color)?;
            }
            Ok(())
        }
    }
}

impl Position {
    /// Checks every field; `field` prefixes the names in errors.
    pub fn validate(&self, field: &str) -> Result<(), SceneError> {
        check_finite(&format!("{field}.x"), self.x, -MAX_COORD, MAX_COORD)?;
        check_finite(&format!("{field}.y"), self.y, -MAX_COORD, MAX_COORD)?;
        check_finite(
            &format!("{field}.width"),
            self.width,
            f32::MIN_POSITIVE,
            MAX_SIZE,
        )?;
        check_finite(
            &format!("{field}.height"),
            self.height,
            f32::MIN_POSITIVE,
            MAX_SIZE,
        )?;
        check_finite(
            &format!("{field}.rotation"),
            self.rotation,
            -36000.0,
            36000.0,
        )?;
        check_finite(&format!("{field}.opacity"), self.opacity, 0.0, 1.0)
    }
}

fn check_fit(field: &str, fit: Option<&str>) -> Result<(), SceneError> {
    match fit {
        Some(f) if !["contain", "cover", "fill"].contains(&f) => {
            Err(out_of_range(field, "contain, cover or fill"))
        }
        _ => Ok(()),
    }
}

impl Layer {
    /// Checks the layer against the assets that exist.
    pub fn validate(&self, field: &str, assets: &dyn AssetLookup) -> Result<(), SceneError> {
        if !valid_id(&self.id) {
            return Err(out_of_range(
                format!("{field}.id"),
                "1 to 64 of A-Z a-z 0-9 _ -",
            ));
        }
        if self.name.len() > 256 {
            return Err(out_of_range(format!("{field}.name"), "at most 256 bytes"));
        }
        self.position.validate(&format!("{field}.position"))?;
        let present = [
            ("shape", self.shape.is_some()),
            ("text", self.text.is_some()),
            ("image", self.image.is_some()),
            ("template", self.template.is_some()),
            ("video", self.video.is_some()),
        ];
        if !present.iter().any(|(k, _)| *k == self.kind) {
            return Err(SceneError::UnknownKind {
                field: format!("{field}.kind"),
                kind: self.kind.clone(),
            });
        }
        for (k, is_set) in present {
            if (k == self.kind) != is_set {
                let reason = if is_set {
                    "belongs to another kind"
                } else {
                    "is required for this kind"
                };
                return Err(out_of_range(format!("{field}.{k}"), reason));
            }
        }
        if let Some(t) = &self.template {
            if !assets.has_template(&t.id) {
                return Err(SceneError::UnknownTemplate {
                    field: format!("{field}.template.id"),
                    template: t.id.clone(),
                });
            }
            if serde_json::to_vec(&t.params).map_or(0, |v| v.len()) > MAX_PARAMS_BYTES {
                return Err(out_of_range(
                    format!("{field}.template.params"),
                    "at most 64 KiB of JSON",
                ));
            }
            assets
                .check_template(t)
                .map_err(|message| SceneError::InvalidParams {
                    field: format!("{field}.template.params"),
                    message,
                })?;
        }
        if let Some(s) = &self.shape {
            if !["rect", "roundedRect", "ellipse"].contains(&s.kind.as_str()) {
                return Err(out_of_range(
                    format!("{field}.shape.type"),
                    "rect, roundedRect or ellipse",
                ));
            }
            if let Some(f) = &s.fill {
                check_fill(&format!("{field}.shape.fill"), f)?;
            }
            if let Some(st) = &s.stroke {
                check_color(&format!("{field}.shape.stroke.color"), &st.color)?;
                check_finite(
                    &format!("{field}.shape.stroke.width"),
                    st.width,
                    0.0,
                    1000.0,
                )?;
            }
            check_finite(
                &format!("{field}.shape.cornerRadius"),
                s.corner_radius,
                0.0,
                MAX_SIZE,
            )?;
        }
        if let Some(t) = &self.text {
            if t.content.len() > 4096 {
                return Err(out_of_range(
                    format!("{field}.text.content"),
                    "at most 4096 bytes",
                ));
            }
            check_finite(&format!("{field}.text.size"), t.size, 1.0, 1000.0)?;
            check_color(&format!("{field}.text.color"), &t.color)?;
            if !["start", "center", "end"].contains(&t.align.as_str()) {
                return Err(out_of_range(
                    format!("{field}.text.align"),
                    "start, center or end",
                ));
            }
            if t.weight.is_some_and(|w| !(100..=900).contains(&w)) {
                return Err(out_of_range(format!("{field}.text.weight"), "100..=900"));
            }
            if let Some(f) = &t.font_family
                && !f.eq_ignore_ascii_case(sm_compose::text::DEFAULT_FAMILY)
                && !assets.has_family(f)
            {
                return Err(SceneError::UnknownAsset {
                    field: format!("{field}.text.fontFamily"),
                    asset: f.clone(),
                });
            }
        }
        if let Some(i) = &self.image {
            if !assets.is_image(&i.asset) {
                return Err(SceneError::UnknownAsset {
                    field: format!("{field}.image.asset"),
                    asset: i.asset.clone(),
                });
            }
            check_fit(&format!("{field}.image.fit"), i.fit.as_deref())?;
        }
        if let Some(v) = &self.video {
            if !assets.has_input(&v.input) {
                return Err(SceneError::UnknownInput {
                    field: format!("{field}.video.input"),
                    input: v.input.clone(),
                });
            }
            check_fit(&format!("{field}.video.fit"), v.fit.as_deref())?;
            if v.hold_ms.is_some_and(|h| h > 60_000) {
                return Err(out_of_range(format!("{field}.video.holdMs"), "0..=60000"));
            }
            if let Some(p) = &v.placeholder
                && !assets.is_image(p)
            {
                return Err(SceneError::UnknownAsset {
                    field: format!("{field}.video.placeholder"),
                    asset: p.clone(),
                });
            }
        }
        Ok(())
    }
}

impl Scene {
    /// Checks the whole scene against the assets that exist.
    pub fn validate(&self, assets: &dyn AssetLookup) -> Result<(), SceneError> {
        let c = &self.canvas;
        if !(16..=7680).contains(&c.width) {
            return Err(out_of_range("canvas.width", "16..=7680"));
        }
        if !(16..=4320).contains(&c.height) {
            return Err(out_of_range("canvas.height", "16..=4320"));
        }
        if c.background.starts_with('#') {
            check_color("canvas.background", &c.background)?;
        } else if !assets.is_image(&c.background) {
            return Err(SceneError::UnknownAsset {
                field: "canvas.background".into(),
                asset: c.background.clone(),
            });
        }
        if self.layers.len() > MAX_LAYERS {
            return Err(out_of_range(
                "layers",
                format!("at most {MAX_LAYERS} layers"),
            ));
        }
        for (i, l) in self.layers.iter().enumerate() {
            l.validate(&format!("layers[{i}]"), assets)?;
            if self.layers[..i].iter().any(|o| o.id == l.id) {
                return Err(out_of_range(
                    format!("layers[{i}].id"),
                    format!("duplicate id {:?}", l.id),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoAssets;
    use crate::testing::rect_layer;

    #[test]
    fn validation_names_the_field() {
        let mut scene = Scene {
            layers: vec![rect_layer("a", 0.0, "#nothex", 0)],
            ..Default::default()
        };
        let e = scene.validate(&NoAssets).unwrap_err();
        assert!(e.to_string().starts_with("layers[0].shape.fill"), "{e}");
        scene.layers[0].kind = "hologram".into();
        assert!(matches!(
            scene.validate(&NoAssets),
            Err(SceneError::UnknownKind { .. })
        ));
        scene.layers = vec![rect_layer("a", 0.0, "#fff000", 0)];
        scene.layers[0].position.opacity = 2.0;
        assert!(
            scene
                .validate(&NoAssets)
                .unwrap_err()
                .to_string()
                .contains("opacity")
        );
        assert_eq!(parse_color("#ff000080"), Some([255, 0, 0, 128]));
        assert_eq!(parse_color("red"), None);
    }
}
