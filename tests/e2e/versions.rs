//! Plugin API versions side by side: a template of `wit/since_v0.1.0` (the test guest
//! `colour_a`, built with wit-bindgen, no play or stop) and one of `wit/since_v0.2.0` (the
//! bundled lower third, built with the SDK) load and render together on air, and both follow
//! their layer's `playing`: the 0.2.0 one animates in and out, the 0.1.0 one is shown and
//! hidden at once.

use std::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;
use crate::harness::*;
use crate::pixels::*;

/// Inside the 0.1.0 layer (red).
const COLOUR_AT: (u32, u32) = (260, 30);
/// Inside the lower third's panel, left of its text, when it is in: the layer is the
/// canvas box (0, 60, 320, 120), drawn at 0.6 of its 200-pixel design, so the panel is
/// blue from x 31 (after the accent bar) and y 95 to 145, the name's glyphs from y 108.
const PANEL_AT: (u32, u32) = (36, 100);

/// The lower third's params: a blue panel, so its pixels are easy to tell.
fn lower_third_params() -> Value {
    json!({"name": "Ada", "title": "", "backgroundColor": "#0000ff", "accentColor": "#00ff00"})
}

/// Neither background nor the whole panel: a frame of the lower third on its way in or out
/// (faded, or slid left of the probe's place).
fn on_the_way(p: Rgb) -> bool {
    !black(p) && !blue(p)
}

/// Sets layer `id`'s `playing` while live; returns when the answer arrived.
async fn set_playing(server: &Server, id: &str, playing: bool) -> Instant {
    let patch = json!({"template": {"playing": playing}});
    let path = format!("/api/scene/layers/{id}");
    let (reply, t) = live_change(server, Method::PATCH, &path, Some(&patch), 200).await;
    assert_eq!(reply["template"]["playing"], playing, "{reply}");
    t
}

/// The frames that arrived within 1.5 s after `t`: the whole of a 500 ms animation and the
/// picture it settles on.
async fn frames_after(player: &Player, t: Instant) -> Vec<Vec<u8>> {
    player.wait_since(t, 45).await
}

fn last(frames: &[Vec<u8>]) -> &[u8] {
    frames.last().expect("frames arrived")
}

#[tokio::test]
async fn a_v0_1_0_template_renders_beside_a_v0_2_0_one_and_both_play_and_stop() {
    let (server, player) =
        crate::templates::live_with(crate::common::with_bundled(Server::builder())).await;
    let reply = post_guest(&server, "colour_a").await;
    assert_eq!(reply.0, 201, "{}", reply.1);

    // Each is served as the version it was built against.
    let colour = server.get_json("/api/templates/colour").await;
    assert_eq!(colour["info"]["apiVersion"], "0.1.0", "{colour}");
    let lower = server.get_json("/api/templates/lower-third").await;
    assert_eq!(lower["info"]["apiVersion"], "0.2.0", "{lower}");

    // The 0.1.0 layer plays (by default); the lower third is loaded off air, as a
    // controller loads a graphic before it takes it to air.
    let colour_layer = template_layer("old", "colour", (200, 0, 120, 60), json!({}));
    let created = call(
        &server,
        Method::POST,
        "/api/scene/layers",
        Some(&colour_layer),
        201,
    )
    .await;
    assert_eq!(created["template"]["playing"], true, "{created}");
    let mut lower_layer = template_layer(
        "new",
        "lower-third",
        (0, 60, 320, 120),
        lower_third_params(),
    );
    lower_layer["template"]["playing"] = json!(false);
    let (created, t) = live_change(
        &server,
        Method::POST,
        "/api/scene/layers",
        Some(&lower_layer),
        201,
    )
    .await;
    assert_eq!(created["template"]["playing"], false, "{created}");
    let frames = frames_after(&player, t).await;
    assert_looks(
        last(&frames),
        &[
            (COLOUR_AT.0, COLOUR_AT.1, RED),
            (PANEL_AT.0, PANEL_AT.1, BLACK),
        ],
        "0.1.0 template playing, 0.2.0 template loaded off air",
    );
    assert!(
        frames
            .iter()
            .all(|f| black(pixel(f, PANEL_AT.0, PANEL_AT.1))),
        "a lower third off air draws nothing"
    );

    // Played: it slides in over half a second, beside the 0.1.0 template.
    let t = set_playing(&server, "new", true).await;
    let frames = frames_after(&player, t).await;
    assert_looks(
        last(&frames),
        &[
            (COLOUR_AT.0, COLOUR_AT.1, RED),
            (PANEL_AT.0, PANEL_AT.1, BLUE),
        ],
        "both on air side by side",
    );
    assert!(
        frames
            .iter()
            .any(|f| on_the_way(pixel(f, PANEL_AT.0, PANEL_AT.1))),
        "the lower third animates in rather than cutting in: {:?}",
        frames
            .iter()
            .map(|f| pixel(f, PANEL_AT.0, PANEL_AT.1))
            .collect::<Vec<_>>()
    );
    let scene = server.get_json("/api/scene").await;
    let playing: Vec<&Value> = scene["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["template"]["playing"])
        .collect();
    assert_eq!(playing, [&json!(true), &json!(true)], "{scene}");

    // Stopped: the lower third slides out, the 0.1.0 template is hidden at once.
    let t = set_playing(&server, "new", false).await;
    set_playing(&server, "old", false).await;
    let frames = frames_after(&player, t).await;
    assert_looks(
        last(&frames),
        &[
            (COLOUR_AT.0, COLOUR_AT.1, BLACK),
            (PANEL_AT.0, PANEL_AT.1, BLACK),
        ],
        "both stopped",
    );
    assert!(
        frames
            .iter()
            .any(|f| on_the_way(pixel(f, PANEL_AT.0, PANEL_AT.1))),
        "the lower third animates out rather than cutting out"
    );

    // The 0.1.0 template plays again: its picture is back, the lower third stays off.
    let t = set_playing(&server, "old", true).await;
    let frames = frames_after(&player, t).await;
    assert_looks(
        last(&frames),
        &[
            (COLOUR_AT.0, COLOUR_AT.1, RED),
            (PANEL_AT.0, PANEL_AT.1, BLACK),
        ],
        "0.1.0 template shown again",
    );

    // A change of params does not play or stop a layer.
    let patch = json!({"template": {"params": {"name": "Grace"}}});
    let (reply, t) = live_change(
        &server,
        Method::PATCH,
        "/api/scene/layers/new",
        Some(&patch),
        200,
    )
    .await;
    assert_eq!(reply["template"]["playing"], false, "{reply}");
    let frames = frames_after(&player, t).await;
    assert!(
        frames
            .iter()
            .all(|f| black(pixel(f, PANEL_AT.0, PANEL_AT.1))),
        "new params keep a stopped lower third off air"
    );

    // `playing` must be a boolean.
    let reply = send_json(
        &server,
        Method::PATCH,
        "/api/scene/layers/new",
        Some(&json!({"template": {"playing": "yes"}})),
    )
    .await;
    assert_eq!(reply.0, 422, "{}", reply.1);
}
