//! Asset loaders in the sandbox, against purpose-built guests: a loader is prepared and
//! described, decodes stills and animations, and every way of misbehaving a loader has
//! (loops, memory, panics, refusals, sizes it declares but does not hold, a million
//! frames, frames that alias one buffer) is a fault of the right kind that costs the host
//! nothing beyond the limits.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sm_plugin_host::loader::{DecodeError, Decoded, LoaderBuild, LoaderLimits, Picture};
use sm_plugin_host::{FaultKind, PluginError, PluginLimits, Runtime};

use crate::guests::test_guest;
use crate::sandbox::peak_rss;

fn runtime() -> Arc<Runtime> {
    Runtime::new(PluginLimits::default(), None).expect("runtime starts")
}

fn hostile(rt: &Arc<Runtime>) -> Arc<LoaderBuild> {
    rt.prepare_loader(Bytes::from(test_guest("hostile_loader")))
        .expect("the hostile loader prepares")
}

/// A decode budget of 1 s (of the default 2): the looping loader's test stays short, and
/// copying a million frames out of the loader in a debug build on a busy machine (about
/// 200 ms alone) stays well within it.
fn limits() -> LoaderLimits {
    LoaderLimits {
        budget: Duration::from_millis(1000),
        ..LoaderLimits::default()
    }
}

/// Decodes with `options`, every size granted.
fn decode_with(loader: &LoaderBuild, options: &str) -> Result<Decoded, sm_plugin_host::Fault> {
    match loader.decode(b"abc", options, &limits(), |_| Ok::<(), String>(())) {
        Ok((decoded, ())) => Ok(decoded),
        Err(DecodeError::Fault(f)) => Err(f),
        Err(DecodeError::Refused(e)) => panic!("refused: {e}"),
    }
}

fn decode(loader: &LoaderBuild, mode: &str) -> Result<Decoded, sm_plugin_host::Fault> {
    decode_with(loader, &format!(r#"{{"mode":"{mode}"}}"#))
}

fn solid(width: u32, height: u32, rgba: [u8; 4]) -> Picture {
    Picture {
        width,
        height,
        rgba: rgba.repeat((width * height) as usize),
    }
}

#[test]
fn loaders_are_described_and_decode_stills_and_animations() {
    let rt = runtime();
    let stub = rt
        .prepare_loader(Bytes::from(test_guest("loader_stub")))
        .expect("the stub prepares");
    assert_eq!(stub.name, "loader-stub");
    assert_eq!(stub.media_types, ["application/x-stream-manager-stub"]);
    assert_eq!(
        decode_with(&stub, "{}").unwrap(),
        Decoded::Still(solid(1, 1, [255; 4]))
    );
    let loader = hostile(&rt);
    assert_eq!(loader.media_types, ["application/x-hostile"]);
    assert_eq!(
        decode(&loader, "ok").unwrap(),
        Decoded::Animation(vec![
            (solid(3, 2, [255, 0, 0, 255]), 100),
            (solid(3, 2, [0, 255, 0, 255]), 200)
        ])
    );
    assert_eq!(
        decode(&loader, "still").unwrap(),
        Decoded::Still(solid(3, 2, [0, 0, 255, 255]))
    );
    // Each decode has a fresh instance: a fault does not carry over.
    assert!(decode(&loader, "trap").is_err());
    assert!(decode(&loader, "still").is_ok());
    // The decoded size is asked for before anything is copied; a refusal comes back.
    let asked = std::cell::Cell::new(0);
    let refused = loader.decode(b"abc", r#"{"mode":"ok"}"#, &limits(), |bytes| {
        asked.set(bytes);
        Err::<(), _>("no room")
    });
    assert!(matches!(refused, Err(DecodeError::Refused("no room"))));
    assert_eq!(asked.get(), 2 * 3 * 2 * 4, "two 3x2 frames");
}

#[test]
fn a_template_is_not_a_loader() {
    let rt = runtime();
    let e = rt
        .prepare_loader(Bytes::from(test_guest("colour_a")))
        .unwrap_err();
    assert!(matches!(e, PluginError::WrongWorld(_)), "{e}");
    assert!(e.to_string().contains("asset-loader"), "{e}");
}

#[test]
fn misbehaving_loaders_are_faults_of_their_kind() {
    let rt = runtime();
    let loader = hostile(&rt);
    for (mode, kind, says) in [
        (
            "refuse",
            FaultKind::InvalidOutput,
            "refused: not a hostile file",
        ),
        ("loop", FaultKind::Budget, "time budget"),
        ("hog", FaultKind::Memory, "memory"),
        ("trap", FaultKind::Panic, "panicked"),
        ("declared", FaultKind::InvalidOutput, "100000x100000"),
        ("short", FaultKind::InvalidOutput, "60 bytes"),
        ("frames", FaultKind::InvalidOutput, "1000000 frames"),
    ] {
        let fault = decode(&loader, mode).unwrap_err();
        assert_eq!(fault.kind, kind, "{mode}: {fault}");
        assert!(fault.message.contains(says), "{mode}: {fault}");
    }
}

/// 1000 frames of 16 MiB over one buffer (16 GiB if copied): the copy stops at the asset's
/// byte limit, so the host's memory grows by no more than a legitimate animation's would.
#[test]
fn aliased_frames_cost_the_host_no_more_than_the_asset_limit() {
    let rt = runtime();
    let loader = hostile(&rt);
    let limits = LoaderLimits {
        max_bytes: 64 << 20,
        ..limits()
    };
    let before = peak_rss();
    let fault = loader
        .decode(b"abc", r#"{"mode":"alias"}"#, &limits, |_| Ok::<(), ()>(()))
        .map(|_| ())
        .expect_err("aliased frames are refused");
    let grew = peak_rss().saturating_sub(before);
    let DecodeError::Fault(fault) = fault else {
        panic!("refused by reserve")
    };
    assert_eq!(fault.kind, FaultKind::InvalidOutput, "{fault}");
    assert!(fault.message.contains("64 MiB"), "{fault}");
    // The guest's own memory (one 16 MiB buffer) and the copy up to the limit.
    assert!(
        grew < (64 + 16 + 48) << 20,
        "peak memory grew by {} MiB",
        grew >> 20
    );
}

/// A loader built without the SDK frees its answer in post-return, as wit-bindgen's
/// generated code does: the host has copied it by then, every byte of every frame.
#[test]
fn an_answer_freed_in_post_return_arrives_whole() {
    let rt = runtime();
    let Decoded::Animation(frames) = decode(&hostile(&rt), "pattern").unwrap() else {
        panic!("an animation")
    };
    assert_eq!(frames.len(), 8);
    for (n, (picture, ms)) in frames.iter().enumerate() {
        assert_eq!((picture.width, picture.height, *ms), (64, 64, 50));
        let wrong = picture
            .rgba
            .iter()
            .enumerate()
            .filter(|&(i, &b)| usize::from(b) != (n * 31 + i * 7) % 251)
            .count();
        assert_eq!(
            wrong, 0,
            "frame {n}: {wrong} bytes differ from what the loader made"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Through the server: `/api/loaders`, uploads decoded by loaders, animated and vector
// images on air.

mod server {
    use std::time::Instant;

    use reqwest::Method;
    use serde_json::json;

    use crate::assets::{id_of, image_layer, post_alone};
    use crate::common::*;
    use crate::guests::test_guest;
    use crate::harness::*;
    use crate::pixels::{BLACK, BLUE, RED, assert_looks, pixel};

    async fn post_loader(server: &Server, guest: &str) -> Reply {
        post_alone(
            server,
            "/api/loaders",
            Some("application/wasm"),
            &test_guest(guest),
        )
        .await
    }

    /// An upload of `body` as `content_type`.
    async fn upload(server: &Server, content_type: &str, body: &[u8]) -> Reply {
        post_alone(server, "/api/assets", Some(content_type), body).await
    }

    fn server_with_loaders() -> ServerBuilder {
        // A short decode budget keeps the looping loader's test short (see `limits`).
        Server::builder().args(["--loader-budget-ms", "1000"])
    }

    /// Loaders are uploaded, listed, refused when they claim a type another has, replaced
    /// and deleted; every way a hostile loader fails an upload is 422 `loader_failed`
    /// naming it, while the stream drops no frame; assets decoded by a loader outlive its
    /// replacement and deletion, also across a restart (Redis).
    #[tokio::test]
    async fn loaders_decode_uploads_and_hostile_ones_fail_them_alone() {
        let redis = Redis::start().await;
        let (mut server, _player) =
            live_server(server_with_loaders().redis(&redis, "e2e-loaders:")).await;

        // Uploads of loaders.
        let r = post_alone(&server, "/api/loaders", Some("image/png"), b"x").await;
        assert_api_error(&r, 415, "unsupported_media_type", "a loader as image/png");
        let r = post_loader(&server, "colour_a").await;
        assert_api_error(&r, 422, "wrong_world", "a template as a loader");
        let r = post_loader(&server, "hostile_loader").await;
        assert_eq!(r.0, 201, "{}", r.1);
        assert_eq!(r.1["id"], "hostile-loader", "{}", r.1);
        assert_eq!(
            r.1["mediaTypes"],
            json!(["application/x-hostile"]),
            "{}",
            r.1
        );
        assert_eq!(r.1["revision"], 1, "{}", r.1);
        let again = post_loader(&server, "hostile_loader").await;
        assert_eq!((again.0, &again.1["id"]), (200, &json!("hostile-loader")));
        let twin = post_loader(&server, "loader_twin").await;
        assert_api_error(&twin, 409, "conflict", "a second loader for one type");
        let says = twin.1["error"]["message"].as_str().unwrap_or_default();
        assert!(
            says.contains("hostile-loader") && says.contains("application/x-hostile"),
            "{says}"
        );
        let list = server.get_json("/api/loaders").await;
        assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
        assert_eq!(server.get("/api/loaders/nope").await.0, 404);

        // An upload of the loader's type is decoded by it.
        let still = upload(&server, "application/x-hostile", b"mode:still").await;
        assert_eq!(still.0, 201, "{}", still.1);
        assert_eq!(
            (&still.1["width"], &still.1["height"]),
            (&json!(3), &json!(2))
        );
        assert_eq!(still.1["loader"]["id"], "hostile-loader", "{}", still.1);
        let still_id = id_of(&still.1);
        // Shown larger, a loader's still is asked for at that size; this loader answers with
        // its own 3x2 picture, so it is scaled, and not asked again at another size.
        let declined = async |size: (i32, i32)| {
            let layer = image_layer("still", &still_id, (0, 0, size.0, size.1));
            let scene = stream_scene("#000000", json!([layer]));
            call(&server, Method::PATCH, "/api/scene", Some(&scene), 200).await;
        };
        declined((30, 20)).await;
        let asked = || server.log_tail(2000).matches("not drawn again at").count();
        wait_until(
            "the loader declining a size",
            secs(10.0),
            async || match asked() {
                0 => Err("nothing in the log".to_owned()),
                n => Ok(n),
            },
        )
        .await;
        declined((45, 30)).await;
        tokio::time::sleep(secs(1.5)).await;
        assert_eq!(asked(), 1, "{}", server.log_tail(40));
        clear_scene(&server).await;
        let r = upload(&server, "application/x-nothing", b"x").await;
        assert_api_error(&r, 415, "unsupported_media_type", "a type nothing decodes");
        assert!(r.1.to_string().contains("/api/loaders"), "{}", r.1);

        // Every hostile mode fails its upload alone; the stream drops nothing.
        let before = server.state().await;
        for (mode, says) in [
            ("loop", "time budget"),
            ("hog", "memory"),
            ("trap", "panicked"),
            ("refuse", "not a hostile file"),
            ("declared", "100000x100000"),
            ("short", "60 bytes"),
            ("frames", "1000000 frames"),
            ("alias", "256 MiB"),
        ] {
            let r = upload(
                &server,
                "application/x-hostile",
                format!("mode:{mode}").as_bytes(),
            )
            .await;
            assert_api_error(&r, 422, "loader_failed", mode);
            let message = r.1["error"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("\"hostile-loader\"") && message.contains(says),
                "{mode}: {message}"
            );
        }
        let after = server.assert_still_live(&before).await;
        let dropped = u(&after, "droppedFrames") - u(&before, "droppedFrames");
        assert_eq!(dropped, 0, "frames dropped while loaders failed: {after}");
        let list = server.get_json("/api/assets").await;
        assert_eq!(
            list.as_array().map(Vec::len),
            Some(1),
            "only the still: {list}"
        );

        // A new version: new uploads go to it; the asset decoded before keeps its pixels.
        let put = server
            .send(
                server
                    .request(Method::PUT, "/api/loaders/hostile-loader")
                    .header("content-type", "application/wasm")
                    .body(test_guest("loader_twin")),
            )
            .await;
        assert_eq!(put.0, 200, "{}", put.1);
        assert_eq!(put.1["revision"], 2, "{}", put.1);
        assert_eq!(
            put.1["mediaTypes"],
            json!(["application/x-hostile", "image/x-twin"])
        );
        let twin = upload(&server, "image/x-twin", b"anything").await;
        assert_eq!((twin.0, &twin.1["width"]), (201, &json!(2)), "{}", twin.1);
        let kept = server.get_json(&format!("/api/assets/{still_id}")).await;
        assert_eq!(kept["width"], 3, "{kept}");

        // Deleted: its types are refused again; its assets stay, across a restart too.
        let gone = server
            .send(server.request(Method::DELETE, "/api/loaders/hostile-loader"))
            .await;
        assert_eq!(gone.0, 204, "{}", gone.1);
        let r = upload(&server, "application/x-hostile", b"mode:still").await;
        assert_api_error(&r, 415, "unsupported_media_type", "after the delete");
        server.restart().await;
        assert_eq!(server.get_json("/api/loaders").await, json!([]));
        let restored = server.get_json(&format!("/api/assets/{still_id}")).await;
        assert_eq!(
            (
                &restored["width"],
                &restored["height"],
                &restored["loader"]["id"]
            ),
            (&json!(3), &json!(2), &json!("hostile-loader")),
            "decoded again by the version that made it: {restored}"
        );
        assert_eq!(
            server
                .get_json("/api/assets")
                .await
                .as_array()
                .map(Vec::len),
            Some(2)
        );
    }

    /// What a loader makes is counted in the server-wide decoded budget before it is
    /// copied: an upload beyond it is 507, and deleting an asset makes room again.
    #[tokio::test]
    async fn the_decoded_budget_counts_what_loaders_make() {
        let server = server_with_loaders()
            .args(["--max-decoded-bytes", "1048576"])
            .start()
            .await;
        assert_eq!(post_loader(&server, "hostile_loader").await.0, 201);
        // Mode `ok`: two frames as wide as the body, 2 high: 16 bytes per byte of body.
        let first = upload(&server, "application/x-hostile", &[b'x'; 40_000]).await;
        assert_eq!(first.0, 201, "{}", first.1);
        let r = upload(&server, "application/x-hostile", &[b'x'; 40_000]).await;
        assert_api_error(&r, 507, "insufficient_storage", "640 000 bytes more");
        assert!(r.1.to_string().contains("--max-decoded-bytes"), "{}", r.1);
        let path = format!("/api/assets/{}", id_of(&first.1));
        call(&server, Method::DELETE, &path, None, 200).await;
        let again = upload(&server, "application/x-hostile", &[b'x'; 40_000]).await;
        assert_eq!(again.0, 201, "room again: {}", again.1);
    }

    /// The colour at the middle of a frame: 'r', 'g', 'b', 'w' or '?'.
    fn colour_at_centre(frame: &[u8]) -> char {
        let [r, g, b] = pixel(frame, W / 2, H / 2);
        match (r > 180, g > 180, b > 180) {
            (true, true, true) => 'w',
            (true, false, false) if g < 80 && b < 80 => 'r',
            (false, true, false) if r < 80 && b < 80 => 'g',
            (false, false, true) if r < 80 && g < 80 => 'b',
            _ => '?',
        }
    }

    /// Runs of one colour in `frames`: (colour, length in frames).
    pub(super) fn runs(frames: &[Vec<u8>]) -> Vec<(char, usize)> {
        let mut out: Vec<(char, usize)> = Vec::new();
        for c in frames.iter().map(|f| colour_at_centre(f)) {
            match out.last_mut() {
                Some((last, n)) if *last == c => *n += 1,
                _ => out.push((c, 1)),
            }
        }
        out
    }

    /// An animation plays on an image layer at its own frame durations (counted in frames
    /// of the decoded stream), loops, pauses and holds its last frame; its frames count in
    /// the decoded-asset budget (`/metrics`).
    #[tokio::test]
    async fn animated_images_play_at_their_own_timing() {
        let (server, player) = live_server(server_with_loaders()).await;
        assert_eq!(post_loader(&server, "hostile_loader").await.0, 201);
        let metric = async || -> u64 {
            let (_, _, body) = server.get_bytes("/metrics").await;
            String::from_utf8_lossy(&body)
                .lines()
                .find_map(|l| l.strip_prefix("stream_decoded_asset_bytes "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        let before = metric().await;
        let anim = upload(&server, "application/x-hostile", b"mode:timed").await;
        assert_eq!(anim.0, 201, "{}", anim.1);
        assert_eq!(
            (&anim.1["frames"], &anim.1["durationMs"]),
            (&json!(4), &json!(2000)),
            "{}",
            anim.1
        );
        assert!(
            metric().await >= before + 4 * 64 * 36 * 4,
            "the frames are counted"
        );
        let id = id_of(&anim.1);
        let layer = image_layer("anim", &id, (0, 0, W as i32, H as i32));
        let t = Instant::now();
        let scene = stream_scene("#000000", json!([layer]));
        call(&server, Method::PATCH, "/api/scene", Some(&scene), 200).await;
        // 5 s of output: two full runs of 2 s.
        let frames = player.wait_since(t, (FPS * 5) as usize).await;
        let runs = runs(&frames);
        eprintln!("runs: {runs:?}");
        // Whole runs (not the first and last, cut by the window) last their durations.
        let expected = |c: char| match c {
            'r' => 200,
            'g' => 400,
            'b' => 600,
            'w' => 800,
            _ => 0,
        } * FPS as usize
            / 1000;
        let whole = &runs[1..runs.len() - 1];
        assert!(whole.len() >= 5, "at least five whole runs: {runs:?}");
        for (c, n) in whole {
            assert!(
                expected(*c) > 0 && n.abs_diff(expected(*c)) <= 1,
                "colour {c} showed {n} frames, expected {} (±1): {runs:?}",
                expected(*c)
            );
        }
        let order: String = whole.iter().map(|(c, _)| *c).collect();
        assert!("rgbwrgbwrgbw".contains(&order), "in order: {order}");

        // Paused: the frame showing stays.
        let paused = json!({"image": {"asset": id, "fit": "fill",
            "playback": {"loop": true, "playing": false}}});
        call(
            &server,
            Method::PATCH,
            "/api/scene/layers/anim",
            Some(&paused),
            200,
        )
        .await;
        let t = Instant::now();
        let frames = player.wait_since(t, (FPS * 3) as usize).await;
        let runs = self::runs(&frames[FPS as usize / 2..]);
        assert_eq!(runs.len(), 1, "one frame while paused: {runs:?}");
        // Not looping: it ends on its last frame (white) and stays.
        let once = json!({"image": {"asset": id, "fit": "fill",
            "playback": {"loop": false, "playing": true}}});
        call(
            &server,
            Method::PATCH,
            "/api/scene/layers/anim",
            Some(&once),
            200,
        )
        .await;
        let t = Instant::now();
        let frames = player.wait_since(t, (FPS * 3) as usize).await;
        let tail = self::runs(&frames[frames.len() - FPS as usize..]);
        assert_eq!(tail, [('w', FPS as usize)], "held on white");
    }

    /// A vector image is drawn from its commands at the size it is shown: its halves meet
    /// where its geometry says at two layer sizes.
    #[tokio::test]
    async fn vector_images_are_drawn_at_the_size_they_are_shown() {
        let (server, player) = live_server(server_with_loaders()).await;
        assert_eq!(post_loader(&server, "hostile_loader").await.0, 201);
        let drawing = upload(&server, "application/x-hostile", b"mode:vector").await;
        assert_eq!(drawing.0, 201, "{}", drawing.1);
        assert_eq!(drawing.1["vector"], true, "{}", drawing.1);
        assert_eq!(
            (&drawing.1["width"], &drawing.1["height"]),
            (&json!(100), &json!(50))
        );
        let id = id_of(&drawing.1);
        // At its own size, then three times as large.
        for (w, h) in [(100, 50), (300, 150)] {
            let layer = image_layer("svg", &id, (10, 10, w, h));
            let t = Instant::now();
            let scene = stream_scene("#000000", json!([layer]));
            call(&server, Method::PATCH, "/api/scene", Some(&scene), 200).await;
            let frame = player.settled_after(t).await;
            let (mid, right, bottom) = (10 + w as u32 / 2, 10 + w as u32, 10 + h as u32);
            assert_looks(
                &frame,
                &[
                    (14, 14, RED),
                    (mid - 4, bottom - 4, RED),
                    (mid + 4, 14, BLUE),
                    (right - 4, bottom - 4, BLUE),
                    (right + 4, 14, BLACK),
                    (14, bottom + 4, BLACK),
                ],
                &format!("the drawing at {w}x{h}"),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// The bundled loaders (plugins/svg, plugins/gif), installed at start from the directory of
// the bundled templates, as scripts/serve.sh does.

mod bundled {
    use std::io::Cursor;
    use std::time::Instant;

    use image::codecs::gif::{GifEncoder, Repeat};
    use image::{Delay, Frame, Rgba, RgbaImage};
    use reqwest::Method;
    use serde_json::{Value, json};

    use super::server::runs;
    use crate::assets::{id_of, image_layer, post_alone};
    use crate::common::*;
    use crate::harness::*;
    use crate::pixels::{BLACK, BLUE, RED, assert_looks};

    fn server_with_bundled_loaders() -> ServerBuilder {
        crate::common::with_bundled(Server::builder())
    }

    /// The loaders the server lists: (id, media types).
    async fn listed(server: &Server) -> Vec<(String, Value)> {
        let list = server.get_json("/api/loaders").await;
        let mut out: Vec<(String, Value)> = list
            .as_array()
            .expect("a list")
            .iter()
            .map(|l| {
                (
                    l["id"].as_str().unwrap().to_owned(),
                    l["mediaTypes"].clone(),
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// A logo of 20×10 user units: a red square on the left half, a blue disc of radius 4
    /// centred at (15, 5).
    const LOGO: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10"
        viewBox="0 0 20 10">
        <rect width="10" height="10" fill="#ff0000"/>
        <circle cx="15" cy="5" r="4" fill="#0000ff"/>
    </svg>"##;

    /// Points 3 pixels either side of every edge of [`LOGO`]'s square and disc, drawn at
    /// `(x, y)` at `scale` times its size, with the colour each must have on black.
    fn logo_points(x: u32, y: u32, scale: u32) -> Vec<(u32, u32, crate::pixels::Look)> {
        let at = |u: f32, v: f32, dx: i32, dy: i32| {
            (
                (x as f32 + u * scale as f32) as i32 + dx,
                (y as f32 + v * scale as f32) as i32 + dy,
            )
        };
        [
            // The square's right edge, its top and bottom, and the left of the layer.
            (at(10.0, 5.0, -3, 0), RED),
            (at(10.0, 5.0, 3, 0), BLACK),
            (at(5.0, 0.0, 0, 3), RED),
            (at(5.0, 0.0, 0, -3), BLACK),
            (at(5.0, 10.0, 0, -3), RED),
            (at(5.0, 10.0, 0, 3), BLACK),
            (at(0.0, 5.0, 3, 0), RED),
            (at(0.0, 5.0, -3, 0), BLACK),
            // The disc: left, right, top and bottom of its rim.
            (at(11.0, 5.0, 3, 0), BLUE),
            (at(11.0, 5.0, -3, 0), BLACK),
            (at(19.0, 5.0, -3, 0), BLUE),
            (at(19.0, 5.0, 3, 0), BLACK),
            (at(15.0, 1.0, 0, 3), BLUE),
            (at(15.0, 1.0, 0, -3), BLACK),
            (at(15.0, 9.0, 0, -3), BLUE),
            (at(15.0, 9.0, 0, 3), BLACK),
        ]
        .into_iter()
        .map(|((px, py), look)| (px as u32, py as u32, look))
        .collect()
    }

    /// Uploads `svg` to the bundled loader and checks it is a raster of `size`; its id.
    async fn raster_svg(server: &Server, svg: &str, size: (u32, u32)) -> String {
        let raster = post_alone(server, "/api/assets", Some("image/svg+xml"), svg.as_bytes()).await;
        assert_eq!(raster.0, 201, "{}", raster.1);
        assert_eq!(
            (
                raster.1.get("vector"),
                &raster.1["width"],
                &raster.1["height"]
            ),
            (None, &json!(size.0), &json!(size.1)),
            "{}",
            raster.1
        );
        id_of(&raster.1)
    }

    /// An SVG logo uploaded to the bundled loader is a drawing, and is sharp on air at two
    /// sizes, 8 and 15 times its own: 3 pixels either side of every edge of the square and
    /// of the disc is the colour of that side. (Its 20×10 raster scaled up would blur over
    /// 8 to 15 pixels and fail these points.) An SVG the command set cannot express (a
    /// filter) is decoded to a raster instead, and a malformed one is 422 naming the loader.
    #[tokio::test]
    async fn an_svg_logo_is_sharp_at_two_sizes() {
        let (server, player) = live_server(server_with_bundled_loaders()).await;
        let loaders = listed(&server).await;
        assert_eq!(
            loaders,
            [
                (
                    "gif".to_owned(),
                    json!(["image/gif", "image/apng", "image/webp", "image/png"])
                ),
                ("svg".to_owned(), json!(["image/svg+xml"])),
            ],
            "{}",
            server.log_tail(40)
        );
        let logo = post_alone(
            &server,
            "/api/assets",
            Some("image/svg+xml"),
            LOGO.as_bytes(),
        )
        .await;
        assert_eq!(logo.0, 201, "{}", logo.1);
        assert_eq!(
            (
                &logo.1["vector"],
                &logo.1["loader"]["id"],
                &logo.1["width"],
                &logo.1["height"]
            ),
            (&json!(true), &json!("svg"), &json!(20), &json!(10)),
            "{}",
            logo.1
        );
        let id = id_of(&logo.1);
        for (x, y, scale) in [(20u32, 20u32, 8u32), (10, 10, 15)] {
            let layer = image_layer(
                "logo",
                &id,
                (x as i32, y as i32, 20 * scale as i32, 10 * scale as i32),
            );
            let t = Instant::now();
            let scene = stream_scene("#000000", json!([layer]));
            call(&server, Method::PATCH, "/api/scene", Some(&scene), 200).await;
            let frame = player.settled_after(t).await;
            let points = logo_points(x, y, scale);
            assert_looks(&frame, &points, &format!("the logo at {scale}x"));
        }

        // A filter does not map onto draw commands: a raster of the SVG's size.
        let filtered = r##"<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">
            <filter id="f"><feFlood flood-color="#0000ff"/></filter>
            <rect width="40" height="20" fill="#ff0000" filter="url(#f)"/></svg>"##;
        let id = raster_svg(&server, filtered, (40, 20)).await;
        let t = Instant::now();
        let layer = image_layer("raster", &id, (0, 0, 80, 40));
        let scene = stream_scene("#000000", json!([layer]));
        call(&server, Method::PATCH, "/api/scene", Some(&scene), 200).await;
        let frame = player.settled_after(t).await;
        assert_looks(&frame, &[(40, 20, BLUE), (120, 60, BLACK)], "the raster");

        // The logo through a filter that changes nothing is a raster of 20x10 too; the
        // loader draws it again at each size a layer shows it, so once that is on air it
        // is as sharp as the drawing at the same points.
        let through_filter = LOGO
            .replace(
                "<rect",
                r#"<filter id="f"><feOffset/></filter><g filter="url(#f)"><rect"#,
            )
            .replace("</svg>", "</g></svg>");
        let id = raster_svg(&server, &through_filter, (20, 10)).await;
        for (x, y, scale) in [(20u32, 20u32, 8u32), (10, 10, 15)] {
            let layer = image_layer(
                "logo",
                &id,
                (x as i32, y as i32, 20 * scale as i32, 10 * scale as i32),
            );
            let scene = stream_scene("#000000", json!([layer]));
            call(&server, Method::PATCH, "/api/scene", Some(&scene), 200).await;
            let points = logo_points(x, y, scale);
            wait_until(
                &format!("the raster logo drawn again at {scale}x"),
                secs(15.0),
                async || {
                    let frame = player.settled_after(Instant::now()).await;
                    let wrong = crate::pixels::mismatches(&frame, &points);
                    if wrong.is_empty() {
                        Ok(())
                    } else {
                        Err(format!("{}\n{}", wrong.join("; "), server.log_tail(30)))
                    }
                },
            )
            .await;
        }

        let broken = post_alone(&server, "/api/assets", Some("image/svg+xml"), b"<svg").await;
        assert_eq!(broken.0, 422, "{}", broken.1);
        assert_eq!(broken.1["error"]["code"], "loader_failed", "{}", broken.1);
        let message = broken.1["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("svg"), "names the loader: {message}");
    }

    /// A GIF of four frames: red with a delay of 0 (shown 100 ms, as browsers do), green
    /// 300 ms, blue 500 ms, white 200 ms; 64×36, looping.
    fn animated_gif() -> Vec<u8> {
        let frames = [
            ([255, 0, 0], 0),
            ([0, 255, 0], 300),
            ([0, 0, 255], 500),
            ([255, 255, 255], 200),
        ];
        let mut out = Vec::new();
        {
            let mut encoder = GifEncoder::new(Cursor::new(&mut out));
            encoder.set_repeat(Repeat::Infinite).unwrap();
            for ([r, g, b], ms) in frames {
                let picture = RgbaImage::from_pixel(64, 36, Rgba([r, g, b, 255]));
                let delay = Delay::from_numer_denom_ms(ms, 1);
                encoder
                    .encode_frame(Frame::from_parts(picture, 0, 0, delay))
                    .unwrap();
            }
        }
        out
    }

    /// An animated GIF uploaded to the bundled loader plays at its own timing: over 3 s of
    /// decoded output, every whole run of a colour lasts its frame's duration within one
    /// frame, in order.
    #[tokio::test]
    async fn an_animated_gif_plays_at_its_own_timing() {
        let (server, player) = live_server(server_with_bundled_loaders()).await;
        let gif = post_alone(&server, "/api/assets", Some("image/gif"), &animated_gif()).await;
        assert_eq!(gif.0, 201, "{}", gif.1);
        assert_eq!(
            (
                &gif.1["frames"],
                &gif.1["durationMs"],
                &gif.1["loader"]["id"]
            ),
            (&json!(4), &json!(1100), &json!("gif")),
            "{}",
            gif.1
        );
        let id = id_of(&gif.1);
        let layer = image_layer("gif", &id, (0, 0, W as i32, H as i32));
        let t = Instant::now();
        let scene = stream_scene("#000000", json!([layer]));
        call(&server, Method::PATCH, "/api/scene", Some(&scene), 200).await;
        let frames = player.wait_since(t, (FPS * 3) as usize).await;
        let runs = runs(&frames);
        eprintln!("runs: {runs:?}");
        let expected = |c: char| {
            (match c {
                'r' => 100,
                'g' => 300,
                'b' => 500,
                'w' => 200,
                _ => 0,
            }) * FPS as usize
                / 1000
        };
        // The first and last runs are cut by the window.
        let whole = &runs[1..runs.len() - 1];
        assert!(
            whole.len() >= 8,
            "at least eight whole runs in 3 s: {runs:?}"
        );
        for (c, n) in whole {
            assert!(
                expected(*c) > 0 && n.abs_diff(expected(*c)) <= 1,
                "colour {c} showed {n} frames, expected {} (±1): {runs:?}",
                expected(*c)
            );
        }
        let order: String = whole.iter().map(|(c, _)| *c).collect();
        assert!("rgbwrgbwrgbwrgbw".contains(&order), "in order: {order}");
    }
}

// ---------------------------------------------------------------------------------------
// `stream-manager loader check|decode`, for loader authors.

/// Runs the binary with `args`; returns its exit success, stdout and stderr.
fn cli(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stream-manager"))
        .args(args)
        .output()
        .expect("stream-manager runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_loader_cli_checks_and_decodes_files() {
    let dir = crate::harness::TempDir::new("loader-cli");
    let loader = crate::guests::test_guest_path("hostile_loader");
    let loader = loader.to_str().expect("a UTF-8 path");
    let file = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write a test file");
        path.to_string_lossy().into_owned()
    };
    let (timed, vector, looping) = (
        file("timed.x", "mode:timed"),
        file("vector.x", "mode:vector"),
        file("loop.x", "mode:loop"),
    );
    let (ok, out, err) = cli(&["loader", "check", &timed, "--loader", loader]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("loader hostile-loader 1.0.0 decodes application/x-hostile"),
        "{out}"
    );
    assert!(
        out.contains("an animation of 4 frames of 64x36")
            && out.contains("2000 ms a run; durations (ms): 200 400 600 800"),
        "{out}"
    );
    // Frames as numbered PNG files.
    let out_png = dir.join("frame.png").to_string_lossy().into_owned();
    let (ok, out, err) = cli(&[
        "loader", "decode", &timed, "--loader", loader, "--out", &out_png,
    ]);
    assert!(ok, "{out}{err}");
    let third = image::open(dir.join("frame-2.png"))
        .expect("frame 2 written")
        .to_rgba8();
    assert_eq!((third.width(), third.height()), (64, 36));
    assert_eq!(
        third.get_pixel(10, 10).0,
        [0, 0, 255, 255],
        "the third frame is blue"
    );
    // A drawing at three times its size: its halves meet at x = 150.
    let (ok, out, err) = cli(&[
        "loader", "decode", &vector, "--loader", loader, "--out", &out_png, "--width", "300",
    ]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("a drawing of 100x50 in 2 draw commands"),
        "{out}"
    );
    let drawn = image::open(&out_png)
        .expect("the drawing written")
        .to_rgba8();
    assert_eq!((drawn.width(), drawn.height()), (300, 150));
    assert_eq!(drawn.get_pixel(149, 75).0, [255, 0, 0, 255]);
    assert_eq!(drawn.get_pixel(150, 75).0, [0, 0, 255, 255], "a sharp edge");
    // A loader that runs out of time: a clear failure, exit code 1.
    let (ok, out, err) = cli(&[
        "loader",
        "check",
        &looping,
        "--loader",
        loader,
        "--budget-ms",
        "100",
    ]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("the loader failed") && err.contains("time budget"),
        "{err}"
    );
}
