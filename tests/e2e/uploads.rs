//! Template uploads that the author must fix, refused with a message in the author's terms
//! (initial memory over the cap, an external `$ref` in the params schema, a stack
//! overflow in the test render), and uploads of bytes the server holds already.

use serde_json::{Value, json};

use crate::common::post_guest;
use crate::guests::test_guest;
use crate::harness::*;

fn message(reply: &Reply) -> String {
    reply.1["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn template_ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn refusals_name_what_the_author_must_change() {
    let server = Server::start().await;
    let cases = [
        (
            "big_memory",
            "declares 4 GiB of initial memory; templates get 64 MiB (`--template-memory-mib`)",
        ),
        (
            "external_ref",
            "external `$ref` is not supported (\"https://example.com/schemas/x.json\"); put the \
             schema under `$defs` and refer to it as `#/$defs/...`",
        ),
        (
            "deep_stack",
            "test render: stackOverflow: stack overflow (deep or unbounded recursion)",
        ),
    ];
    for (guest, words) in cases {
        let reply = post_guest(&server, guest).await;
        assert_api_error(&reply, 422, "template_failed", guest);
        let message = message(&reply);
        assert!(
            message.contains(words),
            "{guest}: {words:?} not in {message:?}"
        );
    }
    // Where in the schema the reference is.
    let reply = post_guest(&server, "external_ref").await;
    assert!(
        message(&reply).contains("paramsSchema at /properties/x/$ref"),
        "{}",
        reply.1
    );
    assert_eq!(
        server.get_json("/api/templates").await,
        json!([]),
        "refused components leave nothing behind"
    );
}

#[tokio::test]
async fn the_memory_cap_named_is_the_one_configured() {
    let server = Server::builder()
        .args(["--template-memory-mib", "2048"])
        .start()
        .await;
    let reply = post_guest(&server, "big_memory").await;
    assert_api_error(&reply, 422, "template_failed", "big_memory");
    assert!(
        message(&reply).contains("declares 4 GiB of initial memory; templates get 2 GiB"),
        "{}",
        reply.1
    );
}

#[tokio::test]
async fn identical_bytes_answer_the_template_that_has_them() {
    let server = Server::start().await;
    let first = post_guest(&server, "colour_a").await;
    assert_eq!(first.0, 201, "{}", first.1);
    assert_eq!(
        (&first.1["id"], &first.1["version"]),
        (&json!("colour"), &json!(1))
    );

    // The same bytes again: the same template, nothing new.
    let again = post_guest(&server, "colour_a").await;
    assert_eq!(again.0, 200, "{}", again.1);
    assert_eq!(again.1, first.1, "the existing template, unchanged");
    assert_eq!(
        template_ids(&server.get_json("/api/templates").await),
        ["colour"]
    );

    // A kept version that is no longer current answers too, and changes nothing.
    let req = server
        .request(reqwest::Method::PUT, "/api/templates/colour")
        .header("content-type", "application/wasm")
        .body(test_guest("colour_b"));
    let swapped = server.send(req).await;
    assert_eq!(swapped.0, 200, "{}", swapped.1);
    for guest in ["colour_a", "colour_b"] {
        let reply = post_guest(&server, guest).await;
        assert_eq!(reply.0, 200, "{guest}: {}", reply.1);
        assert_eq!(reply.1["id"], "colour", "{guest}: {}", reply.1);
        assert_eq!(
            reply.1["version"], 2,
            "the current version stays: {}",
            reply.1
        );
        assert_eq!(
            reply.1["versions"].as_array().unwrap().len(),
            2,
            "{}",
            reply.1
        );
    }
    assert_eq!(
        template_ids(&server.get_json("/api/templates").await),
        ["colour"],
        "no colour-2"
    );
    // Other bytes are a new template as before.
    let other = post_guest(&server, "hostile").await;
    assert_eq!(other.0, 201, "{}", other.1);
}
