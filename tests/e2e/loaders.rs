//! Asset loaders in the sandbox, against purpose-built guests: a loader is prepared and
//! described, decodes stills and animations, and every way of misbehaving a loader has
//! (loops, memory, panics, refusals, sizes it declares but does not hold, a million
//! frames, frames that alias one buffer) is a fault of the right kind that costs the host
//! nothing beyond the limits.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sm_plugin_host::loader::{Decoded, LoaderBuild, LoaderLimits, Picture};
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

fn limits() -> LoaderLimits {
    LoaderLimits {
        budget: Duration::from_millis(300),
        ..LoaderLimits::default()
    }
}

fn decode(loader: &LoaderBuild, mode: &str) -> Result<Decoded, sm_plugin_host::Fault> {
    loader.decode(b"abc", &format!(r#"{{"mode":"{mode}"}}"#), &limits())
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
        stub.decode(b"anything", "{}", &limits()).unwrap(),
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

/// 1000 frames of 16 MiB over one buffer (16 GiB if copied): refused from their declared
/// sizes before a byte is copied.
#[test]
fn aliased_frames_are_refused_before_they_are_copied() {
    let rt = runtime();
    let loader = hostile(&rt);
    let before = peak_rss();
    let fault = decode(&loader, "alias").unwrap_err();
    let grew = peak_rss().saturating_sub(before);
    assert_eq!(fault.kind, FaultKind::InvalidOutput, "{fault}");
    assert!(fault.message.contains("256 MiB"), "{fault}");
    // The guest's own memory (one 16 MiB buffer) is most of it.
    assert!(grew < 64 << 20, "peak memory grew by {} MiB", grew >> 20);
}
