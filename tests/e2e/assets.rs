//! Assets: images (PNG, JPEG, WebP, GIF) and fonts uploaded as raw bodies and described by
//! the answer; image layers and image backgrounds drawing them on air; assets protected
//! while any scene uses them; bad uploads (wrong type, corrupt, lying Content-Type, too
//! large, too many pixels, empty) refused with their documented codes while the stream
//! keeps running; assets kept in Redis across a crash.
//!
//! Test images are made with FFmpeg's `lavfi` sources; the decompression-bomb PNG (a header
//! declaring 100000x100000) is written by hand. Pixel checks sample the decoded H.264
//! output, so colours are compared with tolerances.

use std::process::Command;
use std::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;
use crate::harness::*;
use crate::pixels::loose::{BLUE, GREEN, MAGENTA, RED, YELLOW};
use crate::pixels::{BLACK, assert_looks};

const FONT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../compose/fonts/DejaVuSans.ttf"
);

// ---------------------------------------------------------------------------------------
// Requests

/// `POST /api/assets[?name=]` with a raw body and, if given, a Content-Type.
async fn upload(
    server: &Server,
    content_type: Option<&str>,
    body: Vec<u8>,
    name: Option<&str>,
) -> Reply {
    let path = match name {
        Some(n) => format!("/api/assets?name={n}"),
        None => "/api/assets".to_string(),
    };
    let mut req = server.request(Method::POST, &path).body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    server.send(req).await
}

/// An upload on a connection of its own (never reused), retried if the connection fails
/// before an answer arrives: a body refused before it is read makes the server close the
/// connection (without `Connection: close`), sometimes while the client is still writing.
async fn upload_alone(server: &Server, content_type: Option<&str>, body: &[u8]) -> Reply {
    post_alone(server, "/api/assets", content_type, body).await
}

/// A POST to `path` on a connection of its own, retried like [`upload_alone`].
pub async fn post_alone(
    server: &Server,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Reply {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(secs(10.0))
        .build()
        .expect("http client");
    let mut errors = Vec::new();
    for _ in 0..3 {
        let mut req = client.post(server.url(path)).body(body.to_vec());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        match req.send().await {
            Ok(resp) => {
                if !errors.is_empty() {
                    eprintln!("upload of {} bytes: retried after {errors:?}", body.len());
                }
                return reply_of(resp).await;
            }
            Err(e) => errors.push(format!("{e:?}")),
        }
    }
    panic!("upload of {} bytes failed 3 times: {errors:#?}", body.len());
}

/// An upload that must answer 201; returns the asset.
async fn upload_ok(
    server: &Server,
    content_type: &str,
    body: Vec<u8>,
    name: Option<&str>,
) -> Value {
    let len = body.len();
    let (status, reply) = upload(server, Some(content_type), body, name).await;
    assert_eq!(
        status, 201,
        "upload of {len} bytes as {content_type} answered {status}: {reply}"
    );
    reply
}

pub fn id_of(asset: &Value) -> String {
    asset["id"]
        .as_str()
        .unwrap_or_else(|| panic!("asset without an id: {asset}"))
        .to_string()
}

/// The ids of `GET /api/assets`, in order.
async fn asset_ids(server: &Server) -> Vec<String> {
    let list = server.get_json("/api/assets").await;
    list.as_array()
        .unwrap_or_else(|| panic!("GET /api/assets is not a list: {list}"))
        .iter()
        .map(id_of)
        .collect()
}

/// A `DELETE` of the asset at `path` must be refused: a scene uses it.
async fn assert_in_use(server: &Server, path: &str) {
    refused(server, Method::DELETE, path, None, 409, "conflict").await;
}

/// A text layer in `family` must be refused: no font of that family is uploaded.
async fn assert_unknown_family(server: &Server, family: &str) {
    let layer = text_layer("t", family);
    refused(
        server,
        Method::POST,
        "/api/scene/layers",
        Some(&layer),
        422,
        "unknown_asset",
    )
    .await;
}

/// An image layer drawing `asset` stretched into the box.
pub fn image_layer(id: &str, asset: &str, (x, y, w, h): (i32, i32, i32, i32)) -> Value {
    json!({
        "id": id, "kind": "image",
        "position": {"x": x, "y": y, "width": w, "height": h},
        "image": {"asset": asset, "fit": "fill"}
    })
}

fn text_layer(id: &str, family: &str) -> Value {
    json!({
        "id": id, "kind": "text",
        "position": {"x": 10, "y": 10, "width": 300, "height": 60},
        "text": {"content": "Hello", "fontFamily": family, "size": 32, "color": "#ffffff"}
    })
}

// ---------------------------------------------------------------------------------------
// Test files

/// One frame of an FFmpeg `lavfi` source written to `file` (the extension picks the
/// format); returns its bytes.
fn make_image(dir: &TempDir, file: &str, source: &str, args: &[&str]) -> Vec<u8> {
    let path = dir.join(file);
    let mut all = vec!["-frames:v", "1"];
    all.extend_from_slice(args);
    lavfi(&path, source, &all);
    std::fs::read(&path).expect("read the image ffmpeg wrote")
}

/// A solid `colour` (`0xRRGGBB`) picture of `w`×`h` as `file`.
pub fn solid(
    dir: &TempDir,
    file: &str,
    colour: &str,
    (w, h): (u32, u32),
    args: &[&str],
) -> Vec<u8> {
    make_image(dir, file, &format!("color=c={colour}:s={w}x{h}"), args)
}

/// Whether this FFmpeg can write WebP (libwebp).
fn can_write_webp() -> bool {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-encoders"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(" libwebp "))
}

/// The test images, one per format, each a distinct solid colour.
struct Images {
    png: Vec<u8>,
    jpeg: Vec<u8>,
    webp: Option<Vec<u8>>,
    gif: Vec<u8>,
    _dir: TempDir,
}

impl Images {
    fn make() -> Self {
        let dir = TempDir::new("asset-images");
        let webp = if can_write_webp() {
            Some(solid(
                &dir,
                "yellow.webp",
                "0xffff00",
                (40, 30),
                &["-c:v", "libwebp"],
            ))
        } else {
            eprintln!("NOTE: this ffmpeg has no libwebp encoder: WebP uploads are NOT tested");
            None
        };
        Self {
            png: solid(
                &dir,
                "green.png",
                "0x00ff00",
                (64, 48),
                &["-pix_fmt", "rgb24"],
            ),
            jpeg: solid(&dir, "blue.jpg", "0x0000ff", (48, 32), &["-q:v", "2"]),
            webp,
            gif: solid(&dir, "magenta.gif", "0xff00ff", (32, 16), &[]),
            _dir: dir,
        }
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend(kind);
    out.extend(data);
    let crc = crc32(&out[start..]);
    out.extend(crc.to_be_bytes());
}

/// A well-formed PNG whose header declares `w`×`h` RGBA but whose data is an empty zlib
/// stream: a decompression bomb's header without the bomb.
fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 6, 0, 0, 0]);
    png_chunk(&mut png, b"IHDR", &ihdr);
    // zlib header, one final stored block of 0 bytes, Adler-32 of nothing.
    png_chunk(
        &mut png,
        b"IDAT",
        &[0x78, 0x01, 0x01, 0x00, 0x00, 0xff, 0xff, 0, 0, 0, 1],
    );
    png_chunk(&mut png, b"IEND", &[]);
    png
}

/// DejaVu Sans with its family renamed to `Upload Font` (same length) in the `name` table:
/// a font whose family is not built in.
fn renamed_font() -> Vec<u8> {
    let mut font = std::fs::read(FONT).expect("read DejaVuSans.ttf");
    let be16 = |i: usize| usize::from(u16::from_be_bytes([font[i], font[i + 1]]));
    let be32 =
        |i: usize| u32::from_be_bytes([font[i], font[i + 1], font[i + 2], font[i + 3]]) as usize;
    let tables = be16(4);
    let (start, len) = (0..tables)
        .map(|t| 12 + 16 * t)
        .find(|&r| &font[r..r + 4] == b"name")
        .map(|r| (be32(r + 8), be32(r + 12)))
        .expect("a name table");
    let utf16 = |s: &str| {
        s.encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect::<Vec<u8>>()
    };
    let pairs = [
        (b"DejaVu Sans".to_vec(), b"Upload Font".to_vec()),
        (utf16("DejaVu Sans"), utf16("Upload Font")),
    ];
    let mut replaced = 0;
    for (from, to) in pairs {
        let mut i = start;
        while i + from.len() <= start + len {
            if font[i..i + from.len()] == from[..] {
                font[i..i + to.len()].copy_from_slice(&to);
                replaced += 1;
                i += from.len();
            } else {
                i += 1;
            }
        }
    }
    assert!(
        replaced >= 2,
        "the family name was not found in DejaVuSans.ttf's name table"
    );
    font
}

// ---------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn images_and_fonts_upload_with_their_facts() {
    let server = Server::start().await;
    assert_eq!(
        server.get_json("/api/assets").await,
        json!([]),
        "a new server's assets"
    );
    let images = Images::make();

    let png = upload_ok(&server, "image/png", images.png.clone(), Some("logo")).await;
    assert!(
        id_of(&png).starts_with("asset-"),
        "ids look like asset-N: {png}"
    );
    let expect =
        |asset: &Value, name: &str, kind: &str, mime: &str, size: (u64, u64), bytes: usize| {
            assert_eq!(
                (
                    &asset["name"],
                    &asset["kind"],
                    &asset["mime"],
                    asset["width"].as_u64(),
                    asset["height"].as_u64(),
                    asset["bytes"].as_u64()
                ),
                (
                    &json!(name),
                    &json!(kind),
                    &json!(mime),
                    Some(size.0),
                    Some(size.1),
                    Some(bytes as u64)
                ),
                "upload answered {asset}"
            );
        };
    expect(
        &png,
        "logo",
        "image",
        "image/png",
        (64, 48),
        images.png.len(),
    );
    assert!(
        png.get("family").is_none_or(Value::is_null),
        "an image has no family: {png}"
    );

    let jpeg = upload_ok(&server, "image/jpeg", images.jpeg.clone(), None).await;
    let jpeg_id = id_of(&jpeg);
    expect(
        &jpeg,
        &jpeg_id,
        "image",
        "image/jpeg",
        (48, 32),
        images.jpeg.len(),
    );
    let gif = upload_ok(&server, "image/gif", images.gif.clone(), None).await;
    expect(
        &gif,
        &id_of(&gif),
        "image",
        "image/gif",
        (32, 16),
        images.gif.len(),
    );
    let mut all = vec![png.clone(), jpeg.clone(), gif.clone()];
    if let Some(webp_bytes) = &images.webp {
        let webp = upload_ok(&server, "image/webp", webp_bytes.clone(), None).await;
        expect(
            &webp,
            &id_of(&webp),
            "image",
            "image/webp",
            (40, 30),
            webp_bytes.len(),
        );
        all.push(webp);
    }

    // 760 KB: far over the 64 KiB JSON body limit, well under the asset limit.
    let font_bytes = std::fs::read(FONT).expect("read DejaVuSans.ttf");
    let font = upload_ok(&server, "font/ttf", font_bytes.clone(), Some("dejavu")).await;
    expect(
        &font,
        "dejavu",
        "font",
        "font/ttf",
        (0, 0),
        font_bytes.len(),
    );
    assert_eq!(font["family"], "DejaVu Sans", "font upload answered {font}");
    all.push(font.clone());

    // Thumbnails: a small image as it is, a large one fitted in 320 × 180 with its
    // transparency, none for a font.
    let thumb = |a: &Value| format!("/api/assets/{}/thumbnail", id_of(a));
    let (size, [r, g, b, a]) = server.thumbnail(&thumb(&png), "image/png").await;
    assert_eq!(size, (64, 48), "{png}");
    assert!(r < 4 && g > 250 && b < 4 && a == 255, "{:?}", [r, g, b, a]);
    let dir = TempDir::new("thumbs");
    let large = make_image(
        &dir,
        "glass.png",
        "color=c=red@0.5:s=640x480,format=rgba",
        &["-pix_fmt", "rgba"],
    );
    let glass = upload_ok(&server, "image/png", large, None).await;
    let (size, [r, g, b, a]) = server.thumbnail(&thumb(&glass), "image/png").await;
    assert_eq!(size, (240, 180), "{glass}");
    assert!(
        r > 240 && g < 10 && b < 10 && a.abs_diff(128) <= 2,
        "{:?}",
        [r, g, b, a]
    );
    let (status, body) = server.get(&thumb(&font)).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("no_picture")),
        "{body}"
    );
    let (status, body) = server.get("/api/assets/asset-999/thumbnail").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("not_found")),
        "{body}"
    );
    call(
        &server,
        Method::DELETE,
        &format!("/api/assets/{}", id_of(&glass)),
        None,
        200,
    )
    .await;
    let (status, _) = server.get(&thumb(&glass)).await;
    assert_eq!(status, 404, "a deleted asset's thumbnail");

    // A Content-Type with parameters is the same type.
    let with_params = upload_ok(
        &server,
        "image/png; charset=binary",
        images.png.clone(),
        None,
    )
    .await;
    assert_eq!(with_params["mime"], "image/png", "{with_params}");
    all.push(with_params);

    let ids: Vec<String> = all.iter().map(id_of).collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "ids are unique: {ids:?}");
    assert_eq!(
        asset_ids(&server).await,
        ids,
        "GET /api/assets lists every upload, oldest first"
    );
    for asset in &all {
        let got = server
            .get_json(&format!("/api/assets/{}", id_of(asset)))
            .await;
        assert_eq!(
            &got,
            asset,
            "GET /api/assets/{} answers what the upload did",
            id_of(asset)
        );
    }
    let reply = server.get("/api/assets/asset-999").await;
    assert_api_error(&reply, 404, "not_found", "GET of an unknown asset");
    let reply = send_json(&server, Method::DELETE, "/api/assets/asset-999", None).await;
    assert_api_error(&reply, 404, "not_found", "DELETE of an unknown asset");

    // Layers name assets that exist, of the right kind.
    let layers = "/api/scene/layers";
    let box_ = (10, 10, 64, 48);
    call(
        &server,
        Method::POST,
        layers,
        Some(&image_layer("logo", &id_of(&png), box_)),
        201,
    )
    .await;
    let mut bad_fit = image_layer("x", &id_of(&png), box_);
    bad_fit["image"]["fit"] = json!("stretch");
    for (layer, code) in [
        (image_layer("x", "asset-999", box_), "unknown_asset"),
        (image_layer("x", &id_of(&font), box_), "unknown_asset"),
        (bad_fit, "out_of_range"),
    ] {
        refused(&server, Method::POST, layers, Some(&layer), 422, code).await;
    }
    refused(
        &server,
        Method::PATCH,
        "/api/scene/canvas",
        Some(&json!({"background": "asset-999"})),
        422,
        "unknown_asset",
    )
    .await;

    // A font family exists once a font of that family is uploaded, and for as long.
    assert_unknown_family(&server, "Upload Font").await;
    call(
        &server,
        Method::POST,
        layers,
        Some(&text_layer("builtin", "DejaVu Sans")),
        201,
    )
    .await;
    let renamed = upload_ok(&server, "font/ttf", renamed_font(), None).await;
    assert_eq!(
        renamed["family"], "Upload Font",
        "renamed font upload answered {renamed}"
    );
    let created = call(
        &server,
        Method::POST,
        layers,
        Some(&text_layer("t", "Upload Font")),
        201,
    )
    .await;
    assert_eq!(created["text"]["fontFamily"], "Upload Font", "{created}");
    let renamed_path = format!("/api/assets/{}", id_of(&renamed));
    assert_in_use(&server, &renamed_path).await;
    call(&server, Method::DELETE, "/api/scene/layers/t", None, 200).await;
    let deleted = call(&server, Method::DELETE, &renamed_path, None, 200).await;
    assert_eq!(deleted, renamed, "DELETE answers the asset");
    assert_unknown_family(&server, "Upload Font").await;
}

#[tokio::test]
async fn image_layers_go_on_air_and_assets_in_use_are_kept() {
    let (server, player) = live_server(Server::builder()).await;
    let images = Images::make();
    call(
        &server,
        Method::PATCH,
        "/api/scene",
        Some(&stream_scene("#000000", json!([]))),
        200,
    )
    .await;

    let png = id_of(&upload_ok(&server, "image/png", images.png.clone(), None).await);
    let jpeg = id_of(&upload_ok(&server, "image/jpeg", images.jpeg.clone(), None).await);
    let gif = id_of(&upload_ok(&server, "image/gif", images.gif.clone(), None).await);
    let mut layers = vec![
        rect("red", (20, 20, 80, 60), "#ff0000"),
        image_layer("png", &png, (120, 20, 96, 72)),
        image_layer("jpeg", &jpeg, (240, 20, 60, 40)),
        image_layer("gif", &gif, (120, 110, 64, 32)),
    ];
    let mut points = vec![
        (60, 50, RED),
        (168, 56, GREEN),
        (126, 26, GREEN),
        (210, 86, GREEN),
        (270, 40, BLUE),
        (152, 126, MAGENTA),
        (110, 56, BLACK),
        (228, 56, BLACK),
        (168, 100, BLACK),
        (285, 150, BLACK),
        (60, 170, BLACK),
    ];
    if let Some(webp_bytes) = &images.webp {
        let webp = id_of(&upload_ok(&server, "image/webp", webp_bytes.clone(), None).await);
        layers.push(image_layer("webp", &webp, (20, 110, 60, 45)));
        points.push((50, 132, YELLOW));
    } else {
        eprintln!("NOTE: no WebP layer on air (no libwebp encoder in ffmpeg)");
    }
    let reply = call(
        &server,
        Method::PATCH,
        "/api/scene",
        Some(&json!({"layers": layers})),
        200,
    )
    .await;
    assert!(
        reply["appliedAtFrame"].is_u64(),
        "appliedAtFrame while live: {reply}"
    );
    let t = Instant::now();
    let frame = player.settled_after(t).await;
    assert_looks(&frame, &points, "a red rect and one image layer per format");

    // An image as the canvas background, under the layers.
    let reply = call(
        &server,
        Method::PATCH,
        "/api/scene/canvas",
        Some(&json!({"background": gif})),
        200,
    )
    .await;
    assert_eq!(reply["background"], json!(gif), "{reply}");
    let frame = player.settled_after(Instant::now()).await;
    assert_looks(
        &frame,
        &[
            (285, 150, MAGENTA),
            (60, 170, MAGENTA),
            (110, 56, MAGENTA),
            (60, 50, RED),
            (168, 56, GREEN),
        ],
        "the GIF as canvas background",
    );
    let gif_path = format!("/api/assets/{gif}");
    assert_in_use(&server, &gif_path).await;
    call(&server, Method::DELETE, "/api/scene/layers/gif", None, 200).await;
    assert_in_use(&server, &gif_path).await;
    call(
        &server,
        Method::PATCH,
        "/api/scene/canvas",
        Some(&json!({"background": "#000000"})),
        200,
    )
    .await;
    call(&server, Method::DELETE, &gif_path, None, 200).await;

    // In use by a scene that is not on air.
    let standby = json!({"id": "standby", "scene": stream_scene("#000000", json!([image_layer("j", &jpeg, (0, 0, 48, 32))]))});
    call(&server, Method::POST, "/api/scenes", Some(&standby), 201).await;
    call(&server, Method::DELETE, "/api/scene/layers/jpeg", None, 200).await;
    let jpeg_path = format!("/api/assets/{jpeg}");
    assert_in_use(&server, &jpeg_path).await;
    call(&server, Method::DELETE, "/api/scenes/standby", None, 204).await;
    call(&server, Method::DELETE, &jpeg_path, None, 200).await;

    // In use on air: kept until its layer goes.
    let png_path = format!("/api/assets/{png}");
    let info = server.get_json(&png_path).await;
    assert_in_use(&server, &png_path).await;
    assert_eq!(
        server.get_json(&png_path).await,
        info,
        "a refused DELETE kept the asset"
    );
    let frame = player.settled_after(Instant::now()).await;
    assert_looks(
        &frame,
        &[(168, 56, GREEN)],
        "the image after a refused DELETE",
    );
    call(&server, Method::DELETE, "/api/scene/layers/png", None, 200).await;
    let deleted = call(&server, Method::DELETE, &png_path, None, 200).await;
    assert_eq!(deleted, info, "DELETE answers the asset");
    let reply = server.get(&png_path).await;
    assert_api_error(&reply, 404, "not_found", "GET of a deleted asset");
    refused(&server, Method::DELETE, &png_path, None, 404, "not_found").await;
    assert!(
        !asset_ids(&server).await.contains(&png),
        "a deleted asset is still listed"
    );
    let frame = player.settled_after(Instant::now()).await;
    assert_looks(
        &frame,
        &[(168, 56, BLACK), (60, 50, RED)],
        "the image layer deleted",
    );
    assert_eq!(server.state().await["isLive"], true);
}

/// A refused upload: what it is, its Content-Type, its body, and the status and code due.
type BadUpload = (
    &'static str,
    Option<&'static str>,
    Vec<u8>,
    u16,
    &'static str,
);

/// `Transfer-Encoding: chunked` upload (no Content-Length) over raw TCP; returns the status
/// line and the rest of the answer.
async fn chunked_upload(server: &Server, content_type: &str, body: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = server.url("/");
    let authority = url
        .strip_prefix("http://")
        .and_then(|r| r.strip_suffix('/'))
        .expect("server url");
    let mut conn = tokio::net::TcpStream::connect(authority)
        .await
        .expect("connect");
    let mut req = format!(
        "POST /api/assets HTTP/1.1\r\nHost: {authority}\r\nContent-Type: {content_type}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in body.chunks(4096) {
        req.extend(format!("{:x}\r\n", chunk.len()).bytes());
        req.extend(chunk);
        req.extend(b"\r\n");
    }
    req.extend(b"0\r\n\r\n");
    // The server may answer and close before it has read everything.
    let _ = conn.write_all(&req).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(secs(10.0), conn.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer to a chunked upload: {text:?}"));
    (status, text)
}

#[tokio::test]
async fn bad_uploads_are_refused_and_the_stream_keeps_running() {
    const LIMIT: usize = 20_000;
    let (mut server, player) =
        live_server(Server::builder().args(["--max-asset-bytes", &LIMIT.to_string()])).await;
    call(
        &server,
        Method::PATCH,
        "/api/scene",
        Some(&stream_scene(
            "#000000",
            json!([rect("keep", (20, 20, 80, 60), "#ff0000")]),
        )),
        200,
    )
    .await;
    let before = server.state().await;
    let images = Images::make();
    let dir = TempDir::new("bad-assets");
    // A larger picture (noise compresses badly), so a truncation cuts into its image data.
    let noisy = make_image(
        &dir,
        "noisy.png",
        "color=c=gray:s=64x64,noise=alls=100:allf=t",
        &["-pix_fmt", "rgb24"],
    );
    assert!(
        noisy.len() > 2000 && noisy.len() < LIMIT,
        "noisy.png is {} bytes",
        noisy.len()
    );
    let font = std::fs::read(FONT).expect("read the font");

    let mut garbage = b"this is not an image, whatever the header says".repeat(20);
    garbage.truncate(900);
    let mut png_then_garbage = images.png[..16].to_vec();
    png_then_garbage.extend(&garbage);
    let at_limit = vec![0x42u8; LIMIT];
    let over_limit = vec![0x42u8; LIMIT + 1];
    let cases: Vec<BadUpload> = vec![
        (
            "corrupt bytes",
            Some("image/png"),
            garbage.clone(),
            422,
            "invalid_asset",
        ),
        (
            "a PNG signature then garbage",
            Some("image/png"),
            png_then_garbage,
            422,
            "invalid_asset",
        ),
        (
            "a truncated PNG",
            Some("image/png"),
            noisy[..noisy.len() * 6 / 10].to_vec(),
            422,
            "invalid_asset",
        ),
        (
            "a PNG cut inside its header",
            Some("image/png"),
            images.png[..20].to_vec(),
            422,
            "invalid_asset",
        ),
        (
            "a PNG sent as image/jpeg",
            Some("image/jpeg"),
            images.png.clone(),
            422,
            "invalid_asset",
        ),
        (
            "a JPEG sent as image/png",
            Some("image/png"),
            images.jpeg.clone(),
            422,
            "invalid_asset",
        ),
        (
            "a GIF sent as image/webp",
            Some("image/webp"),
            images.gif.clone(),
            422,
            "invalid_asset",
        ),
        (
            "a PNG sent as font/ttf",
            Some("font/ttf"),
            images.png.clone(),
            422,
            "invalid_asset",
        ),
        (
            "garbage sent as font/otf",
            Some("font/otf"),
            garbage.clone(),
            422,
            "invalid_asset",
        ),
        (
            "a header-only 2x2 PNG (no pixel data)",
            Some("image/png"),
            png_declaring(2, 2),
            422,
            "invalid_asset",
        ),
        (
            "an empty body",
            Some("image/png"),
            Vec::new(),
            422,
            "invalid_asset",
        ),
        (
            "an empty font",
            Some("font/ttf"),
            Vec::new(),
            422,
            "invalid_asset",
        ),
        (
            "text/plain",
            Some("text/plain"),
            images.png.clone(),
            415,
            "unsupported_media_type",
        ),
        (
            "no Content-Type",
            None,
            images.png.clone(),
            415,
            "unsupported_media_type",
        ),
        (
            "application/octet-stream",
            Some("application/octet-stream"),
            images.png.clone(),
            415,
            "unsupported_media_type",
        ),
        (
            "image/svg+xml",
            Some("image/svg+xml"),
            b"<svg xmlns='http://www.w3.org/2000/svg'/>".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "application/json",
            Some("application/json"),
            b"{}".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "a body of exactly the limit (garbage)",
            Some("image/png"),
            at_limit,
            422,
            "invalid_asset",
        ),
        (
            "a body one byte over the limit",
            Some("image/png"),
            over_limit,
            413,
            "payload_too_large",
        ),
        (
            "a 760 KB font over a 20000-byte limit",
            Some("font/ttf"),
            font,
            413,
            "payload_too_large",
        ),
        (
            "8001x8000 declared (just over 64 Mpx)",
            Some("image/png"),
            png_declaring(8001, 8000),
            422,
            "too_many_pixels",
        ),
    ];
    let mut failures = Vec::new();
    for (what, ct, body, status, code) in cases {
        let reply = upload_alone(&server, ct, &body).await;
        if let Err(e) = check_api_error(&reply, status, code) {
            failures.push(format!("{what}: {e}"));
        }
    }

    // The bomb: refused from its header, at once.
    let bomb = png_declaring(100_000, 100_000);
    let sent = Instant::now();
    let reply = upload_alone(&server, Some("image/png"), &bomb).await;
    let took = sent.elapsed();
    if let Err(e) = check_api_error(&reply, 422, "too_many_pixels") {
        failures.push(format!("a PNG declaring 100000x100000: {e}"));
    }
    assert!(
        took < secs(5.0),
        "the 100000x100000 PNG took {took:?} to refuse"
    );
    assert!(
        server.proc.try_wait().is_none(),
        "the server died on the bomb PNG"
    );

    // Over the limit without a Content-Length (chunked): refused while reading.
    let (status, answer) = chunked_upload(&server, "image/png", &vec![0x42u8; LIMIT * 3 / 2]).await;
    if status != 413 || !answer.contains("payload_too_large") {
        failures.push(format!("a chunked body over the limit: {answer}"));
    }
    let (status, answer) = chunked_upload(&server, "image/png", &images.png).await;
    if status != 201 {
        failures.push(format!("a chunked PNG within the limit: {answer}"));
    }

    // Bad references in layers.
    for (what, body) in [
        (
            "an image layer naming no asset",
            image_layer("x", "asset-404", (0, 0, 10, 10)),
        ),
        (
            "a text layer naming no font",
            text_layer("x", "No Such Family"),
        ),
    ] {
        let reply = send_json(&server, Method::POST, "/api/scene/layers", Some(&body)).await;
        if let Err(e) = check_api_error(&reply, 422, "unknown_asset") {
            failures.push(format!("{what}: {e}"));
        }
    }

    let listed = asset_ids(&server).await;
    assert!(listed.len() <= 1, "refused uploads were stored: {listed:?}");
    assert!(
        failures.is_empty(),
        "wrong answers:\n  {}",
        failures.join("\n  ")
    );

    // The stream went on through all of it.
    let t = Instant::now();
    let after = server.assert_still_live(&before).await;
    let later = wait_until("frameCount to keep counting", secs(10.0), async || {
        let s = server.state().await;
        if u(&s, "frameCount") >= u(&after, "frameCount") + 15 {
            Ok(s)
        } else {
            Err(s.to_string())
        }
    })
    .await;
    assert_eq!(later["isLive"], true, "{later}");
    let frame = player.settled_after(t).await;
    assert_looks(
        &frame,
        &[(60, 50, RED), (200, 120, BLACK)],
        "the scene after the refused uploads",
    );
    let gap = player.max_gap_since(t);
    assert!(gap < secs(2.0), "the player saw no frame for {gap:?}");
}

#[tokio::test]
async fn the_pixel_limit_is_configurable_and_read_from_each_format_header() {
    let server = Server::builder()
        .args(["--max-asset-pixels", "3000"])
        .start()
        .await;
    let dir = TempDir::new("pixel-limit");
    let at = solid(&dir, "at.png", "0x00ff00", (60, 50), &["-pix_fmt", "rgb24"]);
    let asset = upload_ok(&server, "image/png", at, None).await;
    assert_eq!(
        (asset["width"].as_u64(), asset["height"].as_u64()),
        (Some(60), Some(50))
    );
    let mut over = vec![
        (
            "png",
            "image/png",
            solid(
                &dir,
                "over.png",
                "0x00ff00",
                (64, 48),
                &["-pix_fmt", "rgb24"],
            ),
        ),
        (
            "jpeg",
            "image/jpeg",
            solid(&dir, "over.jpg", "0x0000ff", (100, 100), &[]),
        ),
        (
            "gif",
            "image/gif",
            solid(&dir, "over.gif", "0xff00ff", (100, 100), &[]),
        ),
    ];
    if can_write_webp() {
        over.push((
            "webp",
            "image/webp",
            solid(
                &dir,
                "over.webp",
                "0xffff00",
                (100, 100),
                &["-c:v", "libwebp"],
            ),
        ));
    } else {
        eprintln!("NOTE: no libwebp encoder in ffmpeg: the WebP pixel limit is NOT tested");
    }
    for (what, mime, body) in over {
        let reply = upload(&server, Some(mime), body, None).await;
        assert_api_error(
            &reply,
            422,
            "too_many_pixels",
            &format!("a {what} over a 3000-pixel limit"),
        );
    }
    assert_eq!(
        asset_ids(&server).await,
        [id_of(&asset)],
        "only the upload within the limit is kept"
    );
}

#[tokio::test]
async fn assets_and_image_layers_survive_a_restart_with_redis() {
    let redis = Redis::start().await;
    let prefix = "e2e-assets:";
    let mut server = Server::builder().redis(&redis, prefix).start().await;
    let images = Images::make();
    let green = upload_ok(&server, "image/png", images.png.clone(), Some("green")).await;
    let blue = upload_ok(&server, "image/jpeg", images.jpeg.clone(), None).await;
    let (green_id, blue_id) = (id_of(&green), id_of(&blue));
    call(
        &server,
        Method::DELETE,
        &format!("/api/assets/{blue_id}"),
        None,
        200,
    )
    .await;
    let scene = stream_scene(
        "#000000",
        json!([image_layer("logo", &green_id, (120, 40, 96, 72))]),
    );
    call(&server, Method::PATCH, "/api/scene", Some(&scene), 200).await;
    let assets = server.get_json("/api/assets").await;
    let scene = server.get_json("/api/scene").await;

    let exists = |key: &str| redis_command(redis.port, &["EXISTS", key]).unwrap_or_default();
    wait_until("the assets and the scene stored in Redis", secs(8.0), async || {
        let index = redis.get_json(&format!("{prefix}assets")).unwrap_or_default();
        let scenes = redis.get(&format!("{prefix}scenes")).unwrap_or_default();
        let bytes = exists(&format!("{prefix}asset:{green_id}"));
        let gone = exists(&format!("{prefix}asset:{blue_id}"));
        if index["assets"] == assets && scenes.contains("\"logo\"") && bytes.as_deref() == Some("1") && gone.as_deref() == Some("0") {
            Ok(())
        } else {
            Err(format!("index {index}, scenes {scenes:.200}, bytes of {green_id}: {bytes:?}, of {blue_id}: {gone:?}"))
        }
    })
    .await;

    server.restart().await;
    assert_eq!(
        server.get_json("/api/assets").await,
        assets,
        "assets after a restart"
    );
    assert_eq!(
        server.get_json("/api/scene").await,
        scene,
        "the scene after a restart"
    );
    let reply = server.get(&format!("/api/assets/{blue_id}")).await;
    assert_api_error(
        &reply,
        404,
        "not_found",
        "an asset deleted before the restart",
    );

    server.start_stream().await;
    let frames = wait_until("frames of the restored scene", secs(20.0), async || {
        try_decode_frames(&server.rtmp_play_url(), 3, W, H).await
    })
    .await;
    assert_looks(
        frames.last().expect("frames"),
        &[
            (168, 76, GREEN),
            (130, 50, GREEN),
            (60, 50, BLACK),
            (168, 140, BLACK),
        ],
        "the restored image layer on air",
    );

    assert_in_use(&server, &format!("/api/assets/{green_id}")).await;
    let again = upload_ok(&server, "image/gif", images.gif.clone(), None).await;
    assert!(
        id_of(&again) != green_id && id_of(&again) != blue_id,
        "a new upload reused the id of a restored or deleted asset: {again}"
    );
    let listed = asset_ids(&server).await;
    assert_eq!(
        listed,
        [green_id.clone(), id_of(&again)],
        "assets after a new upload"
    );
}

/// A PNG of `w`×`h` in one colour: a few KiB that decode to `w * h * 4` bytes.
pub fn flat_png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::RgbaImage::from_pixel(w, h, image::Rgba([30, 60, 90, 255]))
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("encode PNG");
    out
}

#[tokio::test]
async fn small_files_cannot_add_up_past_the_decoded_pixel_budget() {
    // Each 4000x3000 image decodes to 48 MB; the budget takes two.
    let server = Server::builder()
        .args(["--max-decoded-bytes", "100000000"])
        .start()
        .await;
    clear_scene(&server).await;
    server.start_stream().await;
    let png = flat_png(4000, 3000);
    assert!(png.len() < 1 << 20, "the PNG is {} bytes", png.len());
    let first = upload_ok(&server, "image/png", png.clone(), None).await;
    upload_ok(&server, "image/png", png.clone(), None).await;
    let before = server.wait_frames(5).await;
    // A third does not fit whole, nor at the least size covering the 320x180 frame (a
    // 1000x12000 image: 320x3840, 4.9 MB, with 4 MB left).
    let refused = upload(&server, Some("image/png"), flat_png(1000, 12_000), None).await;
    assert_api_error(&refused, 507, "insufficient_storage", "third image");
    let message = refused.1["error"]["message"].as_str().unwrap();
    assert!(message.contains("--max-decoded-bytes"), "{message}");
    assert_eq!(
        asset_ids(&server).await.len(),
        2,
        "the refused image is not listed"
    );
    // One of 4000x3000 is kept at 320x240, the least size covering the frame, and drawn.
    let kept = upload_ok(&server, "image/png", png.clone(), None).await;
    assert_eq!(
        (&kept["width"], &kept["height"]),
        (&json!(4000), &json!(3000)),
        "{kept}"
    );
    assert_eq!(kept["kept"], json!({"width": 320, "height": 240}), "{kept}");
    let layer = json!({"id": "big", "kind": "image",
        "position": {"x": 0, "y": 0, "width": 1920, "height": 1080},
        "image": {"asset": id_of(&kept), "fit": "cover"}});
    call(
        &server,
        Method::POST,
        "/api/scene/layers",
        Some(&layer),
        201,
    )
    .await;
    let frame = Player::on_air(&server)
        .await
        .settled_after(Instant::now())
        .await;
    let p = crate::pixels::pixel(&frame, W / 2, H / 2);
    let near = |a: u8, b: u8| a.abs_diff(b) <= 12;
    assert!(
        near(p[0], 30) && near(p[1], 60) && near(p[2], 90),
        "the kept image on air: {p:?}"
    );
    server.assert_still_live(&before).await;
    // Deleting one makes room again: a new upload is kept whole.
    let (status, body) = server
        .send(server.request(Method::DELETE, &format!("/api/assets/{}", id_of(&first))))
        .await;
    assert_eq!(status, 200, "{body}");
    let whole = upload_ok(&server, "image/png", png, None).await;
    assert!(whole.get("kept").is_none(), "{whole}");
}
