//! Parsing an upload into a `usvg` tree, with the work bounded before the tree is built.
//!
//! `usvg` expands every `<use>` into a copy of what it refers to, so a few kilobytes of
//! nested `<use>`s can stand for billions of elements, and it follows `data:` URLs into
//! nested SVG and raster images. Before it sees a document, the XML is parsed with a node
//! limit, its depth is checked, and the number of elements it would expand to is counted
//! (each `<use>` as a copy of its target); nested SVG images are checked the same way,
//! against one budget for the whole upload. Embedded raster images larger than
//! [`MAX_IMAGE_PIXELS`] are dropped. Nothing is ever read from a file: the sandbox has no
//! filesystem, and an `href` that is not a `data:` URL is ignored.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use usvg::roxmltree;

/// Largest upload, bytes.
pub const MAX_INPUT_BYTES: usize = 8 << 20;
/// Most XML nodes (elements, text, comments) of one document.
pub const MAX_XML_NODES: u32 = 200_000;
/// Deepest nesting of elements.
pub const MAX_DEPTH: usize = 256;
/// Most elements of an upload once every `<use>` is expanded, nested SVG images included.
pub const MAX_ELEMENTS: u64 = 100_000;
/// Largest embedded raster image, pixels.
pub const MAX_IMAGE_PIXELS: u64 = 16_777_216;

/// What is left of [`MAX_ELEMENTS`] for the documents still to be parsed.
struct Budget(AtomicU64);

impl Budget {
    /// Takes `n` elements from the budget, or says how many there were to take.
    fn take(&self, n: u64) -> Result<(), u64> {
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(n)
            })
            .map(|_| ())
    }
}

/// Parses an upload into a tree, refusing what is not an SVG or is too large to handle.
pub fn parse(bytes: &[u8]) -> Result<usvg::Tree, String> {
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(format!(
            "a {} MiB SVG: at most {} MiB",
            bytes.len().div_ceil(1 << 20),
            MAX_INPUT_BYTES >> 20
        ));
    }
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return Err("a compressed SVG (svgz): upload it uncompressed".to_owned());
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "not an SVG: the text is not UTF-8")?;
    let budget = Budget(AtomicU64::new(MAX_ELEMENTS));
    let doc = check(text, &budget)?;
    let options = usvg::Options {
        resources_dir: None,
        image_href_resolver: usvg::ImageHrefResolver {
            resolve_data: Box::new(|mime, data, options| embedded(mime, data, options, &budget)),
            resolve_string: Box::new(|_, _| None),
        },
        ..usvg::Options::default()
    };
    usvg::Tree::from_xmltree(&doc, &options).map_err(|e| format!("not a valid SVG: {e}"))
}

/// Parses the XML of a document and checks it against the limits, taking its expanded
/// elements from `budget`.
fn check<'a>(text: &'a str, budget: &Budget) -> Result<roxmltree::Document<'a>, String> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        nodes_limit: MAX_XML_NODES,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, options).map_err(|e| match e {
        roxmltree::Error::NodesLimitReached => {
            format!("an SVG of more than {MAX_XML_NODES} XML nodes")
        }
        e => format!("not a well-formed SVG: {e}"),
    })?;
    let root = doc.root_element();
    if root.tag_name().name() != "svg" {
        return Err(format!(
            "not an SVG: the root element is <{}>",
            root.tag_name().name()
        ));
    }
    check_depth(&doc)?;
    let elements = expanded_elements(&doc);
    budget.take(elements).map_err(|_| {
        format!(
            "an SVG of {elements} elements once its <use>s are expanded: at most {MAX_ELEMENTS}"
        )
    })?;
    Ok(doc)
}

fn check_depth(doc: &roxmltree::Document) -> Result<(), String> {
    // Nodes come in document order, a parent before its children: one pass.
    let mut depth = vec![0u16; doc.descendants().count()];
    for node in doc.descendants() {
        let here = node.parent().map_or(0, |p| depth[p.id().get_usize()] + 1);
        if usize::from(here) > MAX_DEPTH {
            return Err(format!(
                "an SVG whose elements nest more than {MAX_DEPTH} deep"
            ));
        }
        depth[node.id().get_usize()] = here;
    }
    Ok(())
}

/// How many elements the document stands for once each `<use>` is replaced by a copy of
/// its target (saturating). A `<use>` that refers to one of its ancestors, which `usvg`
/// skips, adds nothing.
fn expanded_elements(doc: &roxmltree::Document) -> u64 {
    let ids: HashMap<&str, roxmltree::Node> = doc
        .descendants()
        .filter_map(|n| n.attribute("id").map(|id| (id, n)))
        .collect();
    let target = |node: roxmltree::Node| {
        if node.tag_name().name() != "use" {
            return None;
        }
        // `href` or `xlink:href`: the attribute's local name, whatever its namespace.
        let href = node
            .attributes()
            .find(|a| a.name() == "href")?
            .value()
            .trim();
        ids.get(href.strip_prefix('#')?).copied()
    };

    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        Open,
        Done(u64),
    }
    let mut state = vec![State::New; doc.descendants().count()];
    // Post-order without recursion: (node, whether its dependencies were pushed).
    let mut stack = vec![(doc.root_element(), false)];
    while let Some((node, expanded)) = stack.pop() {
        let at = node.id().get_usize();
        if !expanded {
            if state[at] != State::New {
                continue;
            }
            state[at] = State::Open;
            stack.push((node, true));
            for dep in node
                .children()
                .filter(|c| c.is_element())
                .chain(target(node))
            {
                if state[dep.id().get_usize()] == State::New {
                    stack.push((dep, false));
                }
            }
        } else {
            let count = node
                .children()
                .filter(|c| c.is_element())
                .chain(target(node))
                .map(|dep| match state[dep.id().get_usize()] {
                    State::Done(n) => n,
                    // An ancestor: a `<use>` that refers to what contains it.
                    State::New | State::Open => 0,
                })
                .fold(1u64, u64::saturating_add);
            state[at] = State::Done(count);
        }
    }
    match state[doc.root_element().id().get_usize()] {
        State::Done(n) => n,
        State::New | State::Open => u64::MAX,
    }
}

/// Resolves a `data:` URL of an `<image>`: raster images within [`MAX_IMAGE_PIXELS`],
/// nested SVG within the budget; anything else is dropped.
fn embedded(
    mime: &str,
    data: Arc<Vec<u8>>,
    options: &usvg::Options,
    budget: &Budget,
) -> Option<usvg::ImageKind> {
    let format = imagesize::image_type(&data).ok();
    let kind = match (mime, format) {
        ("image/svg+xml", _) | ("text/plain", None) => return nested_svg(&data, options, budget),
        (_, Some(imagesize::ImageType::Png)) => usvg::ImageKind::PNG(data.clone()),
        (_, Some(imagesize::ImageType::Jpeg)) => usvg::ImageKind::JPEG(data.clone()),
        (_, Some(imagesize::ImageType::Gif)) => usvg::ImageKind::GIF(data.clone()),
        (_, Some(imagesize::ImageType::Webp)) => usvg::ImageKind::WEBP(data.clone()),
        _ => return None,
    };
    let size = imagesize::blob_size(&data).ok()?;
    let pixels = (size.width as u64).saturating_mul(size.height as u64);
    (pixels > 0 && pixels <= MAX_IMAGE_PIXELS).then_some(kind)
}

fn nested_svg(data: &[u8], options: &usvg::Options, budget: &Budget) -> Option<usvg::ImageKind> {
    if data.starts_with(&[0x1f, 0x8b]) {
        return None;
    }
    let text = std::str::from_utf8(data).ok()?;
    // Checked (and charged to the budget) before usvg parses it again, with nested
    // `data:` URLs coming back through `embedded`.
    check(text, budget).ok()?;
    usvg::Tree::from_data_nested(data, options)
        .ok()
        .map(usvg::ImageKind::SVG)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svg(body: &str) -> String {
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="10" height="10">{body}</svg>"#
        )
    }

    #[test]
    fn uses_are_counted_expanded() {
        let count = |body: &str| {
            let text = svg(body);
            let doc = roxmltree::Document::parse(&text).unwrap();
            expanded_elements(&doc)
        };
        assert_eq!(count("<rect/>"), 2);
        assert_eq!(
            count(r##"<g id="a"><rect/><rect/></g><use href="#a"/><use xlink:href="#a"/>"##),
            // svg, g and its rects (3), and each use (1 + 3).
            1 + 3 + 4 + 4
        );
        // A use that refers to its own ancestor adds nothing, and does not loop.
        assert_eq!(count(r##"<g id="a"><use href="#a"/></g>"##), 3);
        assert_eq!(count(r##"<use href="#missing"/>"##), 2);
    }

    #[test]
    fn a_use_bomb_is_refused_before_usvg_expands_it() {
        // Ten levels of ten uses each: 10^10 rects.
        let mut body = String::from(r#"<defs><rect id="l0" width="1" height="1"/>"#);
        for level in 1..=10 {
            body.push_str(&format!(r#"<g id="l{level}">"#));
            for _ in 0..10 {
                body.push_str(&format!(r##"<use href="#l{}"/>"##, level - 1));
            }
            body.push_str("</g>");
        }
        body.push_str(r##"</defs><use href="#l10"/>"##);
        let err = parse(svg(&body).as_bytes()).unwrap_err();
        assert!(err.contains("<use>s are expanded"), "{err}");
    }

    #[test]
    fn size_depth_and_compression_are_bounded() {
        let big = vec![b' '; MAX_INPUT_BYTES + 1];
        assert!(parse(&big).unwrap_err().contains("at most 8 MiB"));
        assert!(parse(&[0x1f, 0x8b, 8, 0]).unwrap_err().contains("svgz"));
        let deep = svg(&format!(
            "{}{}",
            "<g>".repeat(MAX_DEPTH + 1),
            "</g>".repeat(MAX_DEPTH + 1)
        ));
        assert!(parse(deep.as_bytes()).unwrap_err().contains("deep"));
        let many = svg(&"<rect/>".repeat(MAX_XML_NODES as usize));
        assert!(parse(many.as_bytes()).unwrap_err().contains("XML nodes"));
    }

    #[test]
    fn external_references_are_not_followed() {
        let tree =
            parse(svg(r#"<image href="/etc/passwd" width="5" height="5"/>"#).as_bytes()).unwrap();
        assert!(!tree.root().has_children());
    }
}
