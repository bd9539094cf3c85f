//! Translation of scene layers into draw commands, in canvas coordinates scaled onto the
//! output frame.

use sm_compose::commands::{
    DrawCommand, Fill, GradientStopSpec, ImageSource, Segment, StrokeSpec, rounded_rect_segments,
};
use sm_compose::text::FontBook;

use crate::model::*;
use crate::tokens::Tokens;

impl Scene {
    /// The image assets this scene draws, with the size in device pixels each is drawn at
    /// on an `out_w` × `out_h` frame (for the server's asset manager to prepare).
    /// `size_of` gives an asset's own size.
    pub fn drawn_images(
        &self,
        out_w: u32,
        out_h: u32,
        size_of: &dyn Fn(&str) -> Option<(u32, u32)>,
    ) -> Vec<(String, u32, u32)> {
        let (sx, sy) = self.scale_to(out_w, out_h);
        let mut out = Vec::new();
        if !self.canvas.background.starts_with('#') {
            out.push((self.canvas.background.clone(), out_w, out_h));
        }
        for layer in &self.layers {
            let p = &layer.position;
            let (asset, fit) = match (&layer.image, &layer.video) {
                (Some(image), _) => (&image.asset, image.fit.as_deref()),
                (
                    _,
                    Some(VideoSpec {
                        placeholder: Some(asset),
                        fit,
                        ..
                    }),
                ) => (asset, fit.as_deref()),
                _ => continue,
            };
            let Some((iw, ih)) = size_of(asset) else {
                continue;
            };
            let (_, _, w, h) = fit_rect(fit, p.width, p.height, iw, ih);
            out.push((
                asset.clone(),
                (w * sx).round() as u32,
                (h * sy).round() as u32,
            ));
        }
        out
    }

    /// The draw commands of the canvas background (canvas coordinates).
    pub fn background_commands(&self) -> Vec<DrawCommand> {
        let (cw, ch) = (self.canvas.width as f32, self.canvas.height as f32);
        match parse_color(&self.canvas.background) {
            Some(bg) if bg[3] == 0 => Vec::new(),
            Some(bg) => vec![DrawCommand::Rect {
                x: 0.0,
                y: 0.0,
                width: cw,
                height: ch,
                radius: 0.0,
                fill: Fill::Solid { color: bg },
            }],
            None => vec![DrawCommand::Image {
                asset: self.canvas.background.clone(),
                x: 0.0,
                y: 0.0,
                width: cw,
                height: ch,
            }],
        }
    }

    /// The draw commands that paint this whole scene onto an `out_w` × `out_h` frame (the
    /// canvas scaled to fit), uncached: what the renderer's compositor produces layer by
    /// layer. `text` expands `{{…}}` tokens.
    pub fn to_commands(
        &self,
        out_w: u32,
        out_h: u32,
        fonts: &mut FontBook,
        images: &dyn ImageSource,
        tokens: &Tokens,
    ) -> Vec<DrawCommand> {
        let (sx, sy) = self.scale_to(out_w, out_h);
        let mut out = vec![DrawCommand::Transform {
            matrix: [sx, 0.0, 0.0, sy, 0.0, 0.0],
        }];
        out.extend(self.background_commands());
        let mut text = String::new();
        for layer in self.draw_order() {
            let p = &layer.position;
            out.push(DrawCommand::Save);
            let (s, c) = p.rotation.to_radians().sin_cos();
            let (cx, cy) = (p.x + p.width / 2.0, p.y + p.height / 2.0);
            // Rotate about the centre, then place the layer's local origin at (x, y).
            let (e, f) = (cx - c * cx + s * cy, cy - s * cx - c * cy);
            out.push(DrawCommand::Transform {
                matrix: [c, s, -s, c, e + c * p.x - s * p.y, f + s * p.x + c * p.y],
            });
            if p.opacity < 1.0 {
                out.push(DrawCommand::Opacity { value: p.opacity });
            }
            if let Some(t) = &layer.text {
                text.clear();
                tokens.expand(&t.content, &mut text);
            }
            layer_commands(layer, &text, fonts, images, &mut out);
            out.push(DrawCommand::Restore);
        }
        out
    }
}

/// Where an image of `iw` × `ih` goes in a `w` × `h` box: `(x, y, width, height)` relative
/// to the box. `contain` fits inside (letterboxed), `cover` fills it (cropped by the box),
/// `fill` stretches.
pub fn fit_rect(fit: Option<&str>, w: f32, h: f32, iw: u32, ih: u32) -> (f32, f32, f32, f32) {
    let (iw, ih) = (iw.max(1) as f32, ih.max(1) as f32);
    let scale = match fit {
        Some("fill") => return (0.0, 0.0, w, h),
        Some("cover") => (w / iw).max(h / ih),
        _ => (w / iw).min(h / ih),
    };
    let (dw, dh) = (iw * scale, ih * scale);
    ((w - dw) / 2.0, (h - dh) / 2.0, dw, dh)
}

/// Appends the commands of one layer's content in its local coordinates: origin at the
/// layer's top-left corner, `width` × `height` canvas pixels, before rotation and opacity.
/// `text` is the text layer's content with its tokens expanded; for a video layer it is
/// what its slate says (the input's name and state), drawn when its input has no picture
/// to show (the live picture itself is composited by the renderer, not drawn by commands).
pub fn layer_commands(
    layer: &Layer,
    text: &str,
    fonts: &mut FontBook,
    images: &dyn ImageSource,
    out: &mut Vec<DrawCommand>,
) {
    let local = Position {
        x: 0.0,
        y: 0.0,
        ..layer.position.clone()
    };
    if let Some(shape) = &layer.shape {
        shape_commands(shape, &local, out);
    }
    if let Some(spec) = &layer.text {
        text_commands(spec, text, &local, fonts, out);
    }
    if let Some(video) = &layer.video {
        slate_commands(video, text, &local, fonts, images, out);
    }
    if let Some(image) = &layer.image {
        image_commands(&image.asset, image.fit.as_deref(), &local, images, out);
    }
}

/// The slate of a video layer whose input shows no picture: its placeholder image over a
/// neutral grey, or the grey with `label` centred on it.
fn slate_commands(
    video: &VideoSpec,
    label: &str,
    p: &Position,
    fonts: &mut FontBook,
    images: &dyn ImageSource,
    out: &mut Vec<DrawCommand>,
) {
    out.push(DrawCommand::Rect {
        x: 0.0,
        y: 0.0,
        width: p.width,
        height: p.height,
        radius: 0.0,
        fill: Fill::Solid {
            color: [0x20, 0x20, 0x24, 0xff],
        },
    });
    if let Some(asset) = &video.placeholder
        && images.image(asset).is_some()
    {
        image_commands(asset, video.fit.as_deref(), p, images, out);
        return;
    }
    let size = (p.height / 10.0).clamp(8.0, 72.0);
    let spec = TextSpec {
        content: String::new(),
        font_family: None,
        size,
        color: "#c8c8c8".into(),
        align: "center".into(),
        weight: None,
    };
    let centred = Position {
        y: (p.height - size * 1.2) / 2.0,
        height: size * 1.2,
        ..p.clone()
    };
    text_commands(&spec, label, &centred, fonts, out);
}

/// An image asset fitted into the box `p` (local coordinates).
fn image_commands(
    asset: &str,
    fit: Option<&str>,
    p: &Position,
    images: &dyn ImageSource,
    out: &mut Vec<DrawCommand>,
) {
    let Some(pixmap) = images.image(asset) else {
        return;
    };
    let (x, y, width, height) = fit_rect(fit, p.width, p.height, pixmap.width(), pixmap.height());
    let crop = fit == Some("cover");
    if crop {
        out.push(DrawCommand::Save);
        out.push(DrawCommand::ClipRect {
            x: 0.0,
            y: 0.0,
            width: p.width,
            height: p.height,
        });
    }
    if let Some(drawing) = images.drawing(asset) {
        // A vector image is drawn at the size it is shown, so it stays sharp.
        out.push(DrawCommand::Save);
        out.push(DrawCommand::ClipRect {
            x,
            y,
            width,
            height,
        });
        out.push(DrawCommand::Transform {
            matrix: [
                width / drawing.width,
                0.0,
                0.0,
                height / drawing.height,
                x,
                y,
            ],
        });
        out.extend(drawing.commands.iter().cloned());
        out.push(DrawCommand::Restore);
    } else {
        out.push(DrawCommand::Image {
            asset: asset.to_string(),
            x,
            y,
            width,
            height,
        });
    }
    if crop {
        out.push(DrawCommand::Restore);
    }
}

fn fill_of(fill: &ShapeFill, p: &Position) -> Option<Fill> {
    match fill {
        ShapeFill::Color(c) => parse_color(c).map(|color| Fill::Solid { color }),
        ShapeFill::Gradient(g) => {
            let stops = g
                .stops
                .iter()
                .map(|s| {
                    Some(GradientStopSpec {
                        offset: s.offset,
                        color: parse_color(&s.color)?,
                    })
                })
                .collect::<Option<Vec<_>>>()?;
            let (cx, cy) = (p.x + p.width / 2.0, p.y + p.height / 2.0);
            Some(if g.kind == "radial" {
                Fill::RadialGradient {
                    cx,
                    cy,
                    radius: p.width.max(p.height) / 2.0,
                    stops,
                }
            } else {
                let (s, c) = g.angle.to_radians().sin_cos();
                let (dx, dy) = (c * p.width / 2.0, s * p.height / 2.0);
                Fill::LinearGradient {
                    x0: cx - dx,
                    y0: cy - dy,
                    x1: cx + dx,
                    y1: cy + dy,
                    stops,
                }
            })
        }
    }
}

/// Outline of an ellipse in a box, as four cubic arcs.
fn ellipse_segments(p: &Position) -> Vec<Segment> {
    let (rx, ry) = (p.width / 2.0, p.height / 2.0);
    let (cx, cy) = (p.x + rx, p.y + ry);
    let (kx, ky) = (rx * 0.552_284_8, ry * 0.552_284_8);
    vec![
        Segment::MoveTo { x: cx + rx, y: cy },
        Segment::CubicTo {
            x1: cx + rx,
            y1: cy + ky,
            x2: cx + kx,
            y2: cy + ry,
            x: cx,
            y: cy + ry,
        },
        Segment::CubicTo {
            x1: cx - kx,
            y1: cy + ry,
            x2: cx - rx,
            y2: cy + ky,
            x: cx - rx,
            y: cy,
        },
        Segment::CubicTo {
            x1: cx - rx,
            y1: cy - ky,
            x2: cx - kx,
            y2: cy - ry,
            x: cx,
            y: cy - ry,
        },
        Segment::CubicTo {
            x1: cx + kx,
            y1: cy - ry,
            x2: cx + rx,
            y2: cy - ky,
            x: cx + rx,
            y: cy,
        },
        Segment::Close,
    ]
}

fn shape_commands(shape: &ShapeSpec, p: &Position, out: &mut Vec<DrawCommand>) {
    let fill = shape.fill.as_ref().and_then(|f| fill_of(f, p));
    let (x, y, width, height) = (p.x, p.y, p.width, p.height);
    match (shape.kind.as_str(), fill) {
        ("ellipse", Some(fill)) => out.push(DrawCommand::Ellipse {
            x,
            y,
            width,
            height,
            fill,
        }),
        ("roundedRect", Some(fill)) => out.push(DrawCommand::Rect {
            x,
            y,
            width,
            height,
            radius: shape.corner_radius,
            fill,
        }),
        (_, Some(fill)) => out.push(DrawCommand::Rect {
            x,
            y,
            width,
            height,
            radius: 0.0,
            fill,
        }),
        (_, None) => {}
    }
    if let Some(st) = &shape.stroke
        && let Some(color) = parse_color(&st.color)
    {
        let segments = match shape.kind.as_str() {
            "ellipse" => ellipse_segments(p),
            "roundedRect" => {
                rounded_rect_segments(p.x, p.y, p.width, p.height, shape.corner_radius)
            }
            _ => rounded_rect_segments(p.x, p.y, p.width, p.height, 0.0),
        };
        out.push(DrawCommand::Path {
            segments,
            fill: None,
            stroke: Some(StrokeSpec {
                color,
                width: st.width,
            }),
        });
    }
}

/// Lays `text` out in the layer box: explicit line breaks, then word wrap at the width.
fn text_commands(
    text: &TextSpec,
    content: &str,
    p: &Position,
    fonts: &mut FontBook,
    out: &mut Vec<DrawCommand>,
) {
    let Some(color) = parse_color(&text.color) else {
        return;
    };
    let font = fonts.get(text.font_family.as_deref());
    let size = text.size;
    let line_height = size * 1.2;
    // Clipped to the layer box only when it overflows (a clip costs the fast glyph path).
    let clip_at = out.len();
    let mut overflows = false;
    let mut baseline = p.y + size;
    let space = font.measure(" ", size);
    for paragraph in content.split('\n') {
        let mut line = String::new();
        let mut line_w = 0.0;
        let mut lines = Vec::new();
        for word in paragraph.split(' ').filter(|w| !w.is_empty()) {
            let w = font.measure(word, size);
            if !line.is_empty() && line_w + space + w > p.width {
                lines.push((std::mem::take(&mut line), line_w));
                line_w = 0.0;
            }
            if !line.is_empty() {
                line.push(' ');
                line_w += space;
            }
            line.push_str(word);
            line_w += w;
        }
        lines.push((line, line_w));
        for (content, w) in lines {
            overflows |= w > p.width || baseline + size * 0.25 > p.y + p.height;
            let x = match text.align.as_str() {
                "center" => p.x + (p.width - w) / 2.0,
                "end" => p.x + p.width - w,
                _ => p.x,
            };
            if !content.is_empty() {
                out.push(DrawCommand::Text {
                    x,
                    y: baseline,
                    text: content,
                    size,
                    fill: Fill::Solid { color },
                    font: text.font_family.clone(),
                });
            }
            baseline += line_height;
        }
    }
    if overflows {
        out.insert(
            clip_at,
            DrawCommand::ClipRect {
                x: p.x,
                y: p.y,
                width: p.width,
                height: p.height,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoAssets;
    use crate::testing::rect_layer;
    use sm_compose::commands::{Limits, NoImages, rasterize, validate};
    use tiny_skia::PixmapMut;

    #[test]
    fn layers_compose_in_z_order_scaled_to_the_output() {
        let scene = Scene {
            canvas: CanvasProperties {
                width: 200,
                height: 100,
                background: "#000000".into(),
            },
            layers: vec![
                rect_layer("front", 30.0, "#00ff00", 2),
                rect_layer("back", 10.0, "#ff0000", 1),
            ],
        };
        scene.validate(&NoAssets).unwrap();
        let mut fonts = FontBook::default();
        let commands = scene.to_commands(100, 50, &mut fonts, &NoImages, &Tokens::default());
        validate(&commands, &Limits::default()).unwrap();
        let mut buf = vec![0u8; 100 * 50 * 4];
        rasterize(
            &commands,
            &mut PixmapMut::from_bytes(&mut buf, 100, 50).unwrap(),
            &mut fonts,
            &NoImages,
        );
        let px = |x: usize, y: usize| buf[(y * 100 + x) * 4..][..3].to_vec();
        assert_eq!(px(7, 15), [255, 0, 0], "back layer, half scale");
        assert_eq!(px(20, 15), [0, 255, 0], "front layer wins the overlap");
        assert_eq!(px(80, 40), [0, 0, 0], "background");
    }

    #[test]
    fn tokens_expand_and_images_fit() {
        let t = Tokens {
            frame: 42,
            fps: 25,
            unix_secs: 86_400 * 365 + 3600 + 62,
            millis: 480,
        };
        let mut out = String::new();
        t.expand("{{date}} {{time}} {{timecode}} #{{frame}} {{x}}", &mut out);
        assert_eq!(out, "1971-01-01 01:01:02 01:01:02:12 #42 {{x}}");
        assert!(Tokens::any_in("a {{frame}}") && !Tokens::any_in("a {{x}}"));
        assert_eq!(
            fit_rect(Some("fill"), 100.0, 50.0, 10, 10),
            (0.0, 0.0, 100.0, 50.0)
        );
        assert_eq!(fit_rect(None, 100.0, 50.0, 10, 10), (25.0, 0.0, 50.0, 50.0));
        assert_eq!(
            fit_rect(Some("cover"), 100.0, 50.0, 10, 10),
            (0.0, -25.0, 100.0, 100.0)
        );
    }
}
