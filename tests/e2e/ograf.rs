//! The OGraf facade (`/ograf/v1`) as an OGraf controller uses it: the graphics and their
//! manifests, the program renderer, and a lower third loaded, played, updated, stopped and
//! cleared, checked on the decoded output; errors as problems, a template's refusal as 550.
//!
//! Every facade response is checked against the pinned OGraf Server API
//! (`tests/e2e/data/ograf/server-api.json` and the JSON Schemas beside it, see the README
//! there): the operation by method and path template, the response by status (a status the
//! document does not list for the operation fails the test, except the client errors it
//! lists nowhere, see [`OUTSIDE_THE_DOCUMENT`]), the content type, and the body against the
//! response's schema with every `$ref` resolved locally.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;
use crate::harness::*;
use crate::pixels::*;

// ---------------------------------------------------------------------------------------
// The pinned Server API

/// Where the Server API document lives; `../json-schemas/…` references resolve against it.
const SPEC_BASE: &str = "https://ograf.ebu.io/v1/specification/open-api/server-api.json";

/// The old address of the GDD object meta-schema that the Server API refers to; it now
/// lives in the OGraf repository as `gdd/object.json`.
const OLD_GDD_OBJECT: &str =
    "https://superflytv.github.io/GraphicsDataDefinition/gdd-meta-schema/v1/lib/object.json";

/// The JSON Schemas of the pinned revision, below `data/ograf/json-schemas/`.
const SCHEMAS: [&str; 8] = [
    "graphics/schema.json",
    "gdd/object.json",
    "gdd/gdd-types.json",
    "gdd/basic-types.json",
    "lib/action.json",
    "lib/constraints/number.json",
    "lib/constraints/boolean.json",
    "lib/constraints/string.json",
];

/// Statuses the document lists for no operation that the facade answers all the same, as
/// RFC 7807 problems: a malformed request (400, 413, 415), a method the route does not take
/// (405), and access (401, 403, 429: the Server API leaves security to the vendor).
const OUTSIDE_THE_DOCUMENT: [u16; 7] = [400, 401, 403, 405, 413, 415, 429];

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/data/ograf")
}

fn read_json(path: PathBuf) -> Value {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The Server API document.
fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| read_json(data_dir().join("server-api.json")))
}

/// A validator of `schema`, a schema of the Server API document: its `#/components/…`
/// references resolve in the document, the others in the pinned JSON Schemas.
fn validator(schema: &Value) -> jsonschema::Validator {
    let mut resources: Vec<(String, Value)> = SCHEMAS
        .iter()
        .map(|p| {
            let doc = read_json(data_dir().join("json-schemas").join(p));
            (doc["$id"].as_str().expect("an $id").to_string(), doc)
        })
        .collect();
    let mut old = read_json(data_dir().join("json-schemas/gdd/object.json"));
    old["$id"] = json!(OLD_GDD_OBJECT);
    resources.push((OLD_GDD_OBJECT.to_string(), old));
    let registry = jsonschema::Registry::new()
        .extend(resources)
        .expect("the pinned schemas register")
        .prepare()
        .expect("the pinned schemas resolve");
    let mut root = schema.clone();
    root["components"] = spec()["components"].clone();
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .with_base_uri(SPEC_BASE)
        .with_registry(&registry)
        .build(&root)
        .unwrap_or_else(|e| panic!("the schema {schema} does not compile: {e}"))
}

/// Asserts that `status`, `content_type` and `body`, the answer of `method` on the
/// operation at `template` (a path of the document, e.g. `/graphics/{graphicId}`), are
/// what the document says that operation answers.
fn assert_conforms(method: &str, template: &str, status: u16, content_type: &str, body: &Value) {
    let what = format!(
        "{} {template} answered {status} ({content_type}): {body}",
        method.to_uppercase()
    );
    let op = &spec()["paths"][template][method];
    assert!(
        op.is_object(),
        "{what}: not an operation of the pinned Server API"
    );
    let response = &op["responses"][status.to_string()];
    let schema = if response.is_object() {
        let content = response["content"]
            .as_object()
            .unwrap_or_else(|| panic!("{what}: the document gives no content"));
        let schema = &content
            .get("application/json")
            .unwrap_or_else(|| panic!("{what}: the document's content is not JSON"))["schema"];
        // An ErrorResponse is an RFC 7807 problem, whose media type is
        // application/problem+json (a +json type, RFC 6839).
        let problem = schema["$ref"] == "#/components/schemas/ErrorResponse";
        assert!(
            content_type == "application/json"
                || (problem && content_type == "application/problem+json"),
            "{what}: wrong content type"
        );
        schema.clone()
    } else {
        assert!(
            OUTSIDE_THE_DOCUMENT.contains(&status),
            "{what}: the pinned Server API lists no {status} for this operation"
        );
        assert_eq!(content_type, "application/problem+json", "{what}");
        json!({"$ref": "#/components/schemas/ErrorResponse"})
    };
    let errors: Vec<String> = validator(&schema)
        .iter_errors(body)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: not valid against the document:\n{errors:#?}"
    );
    if content_type == "application/problem+json" {
        // RFC 7807 asks a little more than the document's schema.
        assert_eq!(body["status"], status, "{what}");
        for field in ["type", "title", "detail"] {
            assert!(body[field].is_string(), "{what}: no {field}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Requests

/// Sends `req` (`method` on the operation at `template`), checks the answer against the
/// document and returns it.
async fn send_checked(
    server: &Server,
    req: reqwest::RequestBuilder,
    method: &Method,
    template: &str,
) -> Reply {
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("request failed: {e}\nserver log:\n{}", server.log_tail(30)));
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let (status, body) = reply_of(resp).await;
    assert_conforms(
        &method.as_str().to_lowercase(),
        template,
        status,
        &content_type,
        &body,
    );
    (status, body)
}

/// `method` on `path` below `/ograf/v1` (the operation at `template`) with a raw JSON body
/// (or none), with the server's token; checked against the document.
async fn ograf_raw(
    server: &Server,
    method: Method,
    template: &str,
    path: &str,
    body: Option<&str>,
) -> Reply {
    let mut req = server.request(method.clone(), &format!("/ograf/v1{path}"));
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    send_checked(server, req, &method, template).await
}

/// [`ograf_raw`] with a JSON body that must answer `status`; returns the body.
async fn ograf(
    server: &Server,
    method: Method,
    template: &str,
    path: &str,
    body: Option<&Value>,
    status: u16,
) -> Value {
    let text = body.map(Value::to_string);
    let (got, reply) = ograf_raw(server, method.clone(), template, path, text.as_deref()).await;
    assert_eq!(
        got,
        status,
        "{method} /ograf/v1{path} {} answered {got}: {reply}",
        text.unwrap_or_default()
    );
    reply
}

/// `GET` of the operation at `template` that must answer 200.
async fn ograf_get(server: &Server, template: &str, path: &str) -> Value {
    ograf(server, Method::GET, template, path, None, 200).await
}

const GI: &str = "/renderers/{rendererId}/target/graphicInstance";

/// An action (`load`, `playAction`, …) on the program renderer that must answer `status`.
async fn action(server: &Server, name: &str, body: &Value, status: u16) -> Value {
    let method = if name == "clear" {
        Method::PUT
    } else {
        Method::POST
    };
    let template = format!("{GI}/{name}");
    let path = format!("/renderers/program/target/graphicInstance/{name}");
    ograf(server, method, &template, &path, Some(body), status).await
}

/// The body of an action on instance `id` on layer `l3`.
fn on_l3(id: &str, params: Value) -> Value {
    json!({"renderTarget": {"layerId": "l3"}, "graphicInstanceId": id, "params": params})
}

/// The layer `id` of the live scene, if there is one.
async fn layer(server: &Server, id: &str) -> Option<Value> {
    let scene = server.get_json("/api/scene").await;
    scene["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == id)
        .cloned()
}

// ---------------------------------------------------------------------------------------
// Pixels

/// The accent bar of the lower third on layer `l3`: a 320×180 box (its 1280×200 default
/// size clamped to the canvas) draws it 36 to 46 px from the left, 32 to 147 px down.
const BAR: (u32, u32) = (41, 90);

/// Waits until the latest decoded frame shows `looks` at [`BAR`]; returns that frame.
async fn wait_bar(player: &Player, look: Look, context: &str) -> Vec<u8> {
    let (x, y) = BAR;
    wait_until(context, secs(10.0), async || {
        let (_, last) = player.first_and_last();
        let p = pixel(&last, x, y);
        if (look.1)(p) {
            Ok(last)
        } else {
            Err(format!("({x},{y}) is {p:?}, expected {}", look.0))
        }
    })
    .await
}

/// Pixels right of the accent bar (the panel and its text) that differ between `a` and `b`
/// by more than compression would.
fn changed_right_of_bar(a: &[u8], b: &[u8]) -> usize {
    (0..H)
        .flat_map(|y| (60..W).map(move |x| ((y * W + x) * 3) as usize))
        .filter(|&i| (0..3).any(|c| a[i + c].abs_diff(b[i + c]) > 40))
        .count()
}

// ---------------------------------------------------------------------------------------
// Tests

/// The whole story of a lower third through the facade, with the output decoded: listed,
/// loaded (nothing on air), played (on air), updated (new text and colour), stopped (gone),
/// cleared (the layer removed); every answer valid against the pinned Server API, errors
/// as problems.
#[tokio::test]
async fn ograf_drives_a_lower_third_on_the_program() {
    let builder = crate::common::with_bundled(Server::builder().token("ograf-secret"));
    let (server, player) = live_server(builder).await;
    let scene = stream_scene(
        "#000000",
        json!([rect("keep", (300, 160, 16, 16), "#00ff00")]),
    );
    call(&server, Method::PATCH, "/api/scene", Some(&scene), 200).await;

    // The server, its graphics (every manifest valid: GDD-clean schemas) and the renderer.
    let info = ograf_get(&server, "/", "").await;
    assert_eq!(info["name"], "stream-manager");
    assert_eq!(ograf_get(&server, "/", "/").await, info);
    let list = ograf_get(&server, "/graphics", "/graphics").await;
    let mut ids: Vec<&str> = list["graphics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        ["clock", "lower-third", "scoreboard", "slate", "ticker"]
    );
    for id in &ids {
        let g = ograf_get(&server, "/graphics/{graphicId}", &format!("/graphics/{id}")).await;
        assert_eq!(g["graphic"]["id"], *id);
        assert_eq!(g["manifest"], g["graphic"]);
    }
    let l3 = ograf_get(&server, "/graphics/{graphicId}", "/graphics/lower-third").await;
    let props = &l3["graphic"]["schema"]["properties"];
    assert_eq!(props["accentColor"]["gddType"], "color-rrggbbaa", "{props}");
    assert_eq!(props["font"]["type"], "string", "{props}");
    let renderers = ograf_get(&server, "/renderers", "/renderers").await;
    assert_eq!(renderers["renderers"].as_array().unwrap().len(), 1);
    assert_eq!(renderers["renderers"][0]["id"], "program");
    let program = ograf_get(&server, "/renderers/{rendererId}", "/renderers/program").await;
    let schema = &program["renderer"]["renderTargetSchema"];
    assert_eq!(schema["required"], json!(["layerId"]), "{program}");
    assert_eq!(schema["properties"]["layerId"]["type"], "string");
    assert_eq!(program["renderer"]["renderTargets"], json!([]));

    // Load: a layer l3, not on air.
    let load = json!({
        "renderTarget": {"layerId": "l3"}, "graphicId": "lower-third",
        "params": {"data": {"name": "Ada Lovelace", "title": "Mathematician", "accentColor": "#ff0000"}}
    });
    let t = Instant::now();
    let loaded = action(&server, "load", &load, 200).await;
    let id = loaded["graphicInstanceId"].as_str().unwrap().to_string();
    assert_looks(
        &player.settled_after(t).await,
        &[(BAR.0, BAR.1, BLACK)],
        "loaded, not played",
    );
    let l = layer(&server, "l3").await.expect("layer l3 after load");
    assert_eq!(
        (&l["kind"], &l["template"]["playing"]),
        (&json!("template"), &json!(false)),
        "{l}"
    );
    assert_eq!(l["template"]["params"]["name"], "Ada Lovelace");
    let target = ograf_get(
        &server,
        "/renderers/{rendererId}/target",
        "/renderers/program/target?renderTarget=%7B%22layerId%22%3A%22l3%22%7D",
    )
    .await;
    assert_eq!(
        target["graphicInstances"][0]["graphicInstanceId"],
        id.as_str()
    );
    assert_eq!(
        target["graphicInstances"][0]["graphic"]["id"],
        "lower-third"
    );
    let program = ograf_get(&server, "/renderers/{rendererId}", "/renderers/program").await;
    assert_eq!(
        program["renderer"]["renderTargets"][0]["renderTarget"],
        json!({"layerId": "l3"})
    );

    // Play: on air.
    let played = action(&server, "playAction", &on_l3(&id, json!({})), 200).await;
    assert_eq!(played["currentStep"], 0, "{played}");
    let red = wait_bar(&player, RED, "the lower third's red accent bar on air").await;
    assert_eq!(
        layer(&server, "l3").await.unwrap()["template"]["playing"],
        true
    );

    // Update: new text and a blue accent, live.
    let data = json!({"data": {"name": "Grace Hopper", "accentColor": "#0000ff"}});
    action(&server, "updateAction", &on_l3(&id, data), 200).await;
    let blue = wait_bar(&player, BLUE, "the accent bar turned blue").await;
    let changed = changed_right_of_bar(&red, &blue);
    assert!(
        changed > 150,
        "the panel's text did not change on air ({changed} pixels)"
    );
    let params = layer(&server, "l3").await.unwrap()["template"]["params"].clone();
    assert_eq!(
        (&params["name"], &params["title"], &params["accentColor"]),
        (
            &json!("Grace Hopper"),
            &json!("Mathematician"),
            &json!("#0000ff")
        ),
        "{params}"
    );

    // Refusals: as problems, each valid against the document; nothing changes on air.
    let problem = ograf(
        &server,
        Method::GET,
        "/graphics/{graphicId}",
        "/graphics/nope",
        None,
        404,
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("nope"),
        "{problem}"
    );
    ograf(
        &server,
        Method::GET,
        "/renderers/{rendererId}",
        "/renderers/other",
        None,
        404,
    )
    .await;
    let mut unknown = load.clone();
    unknown["graphicId"] = json!("nope");
    action(&server, "load", &unknown, 404).await;
    let mut onto_api_layer = load.clone();
    onto_api_layer["renderTarget"] = json!({"layerId": "keep"});
    action(&server, "load", &onto_api_layer, 404).await;
    let malformed = "/renderers/program/target/graphicInstance/load";
    let (status, _) = ograf_raw(
        &server,
        Method::POST,
        &format!("{GI}/load"),
        malformed,
        Some("{\"renderTarget\":"),
    )
    .await;
    assert_eq!(status, 400);
    action(
        &server,
        "load",
        &json!({"graphicId": "lower-third", "params": {"data": {}}}),
        400,
    )
    .await;
    let bad = json!({"data": {"name": 5}});
    let problem = action(&server, "updateAction", &on_l3(&id, bad), 400).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("name"),
        "{problem}"
    );
    action(&server, "playAction", &on_l3("l3-00000000", json!({})), 404).await;
    let anonymous = server.client().get(server.url("/ograf/v1/graphics"));
    let (status, _) = send_checked(&server, anonymous, &Method::GET, "/graphics").await;
    assert_eq!(status, 401);
    let anonymous = server
        .client()
        .post(server.url("/ograf/v1/renderers/program/target/graphicInstance/stopAction"))
        .json(&on_l3(&id, json!({})));
    let (status, _) = send_checked(
        &server,
        anonymous,
        &Method::POST,
        &format!("{GI}/stopAction"),
    )
    .await;
    assert_eq!(status, 401);
    assert_looks(
        &player.settled_after(Instant::now()).await,
        &[(BAR.0, BAR.1, BLUE)],
        "still on air after the refusals",
    );

    // Stop: off air, still loaded.
    action(&server, "stopAction", &on_l3(&id, json!({})), 200).await;
    wait_bar(&player, BLACK, "the lower third gone after stop").await;
    assert_eq!(
        layer(&server, "l3").await.unwrap()["template"]["playing"],
        false
    );

    // Clear: the facade's layer is removed, the layer made through /api stays.
    let cleared = action(
        &server,
        "clear",
        &json!({"filters": [{"graphicId": "lower-third"}]}),
        200,
    )
    .await;
    assert_eq!(
        cleared["graphicInstances"],
        json!([{"renderTarget": {"layerId": "l3"}, "graphicInstanceId": id}])
    );
    assert!(
        layer(&server, "l3").await.is_none(),
        "l3 is still in the scene"
    );
    assert!(
        layer(&server, "keep").await.is_some(),
        "clear removed a layer of /api"
    );
    action(&server, "playAction", &on_l3(&id, json!({})), 404).await;
    let cleared = action(&server, "clear", &json!({"filters": []}), 200).await;
    assert_eq!(cleared["graphicInstances"], json!([]));
}

/// A template that refuses the data at `load` or `updateAction` is a 550 problem naming its
/// reason, and the scene stays as it was.
#[tokio::test]
async fn ograf_template_refusals_are_550() {
    let server = Server::start().await;
    clear_scene(&server).await;
    let (status, body) = post_guest(&server, "hostile").await;
    assert_eq!(status, 201, "{body}");
    // Its hand-written schema is made GDD-clean too.
    let g = ograf_get(&server, "/graphics/{graphicId}", "/graphics/hostile").await;
    assert_eq!(
        g["graphic"]["schema"]["properties"]["mode"]["type"],
        "string"
    );

    let load = |data: Value| json!({"renderTarget": {"layerId": "l3"}, "graphicId": "hostile", "params": {"data": data}});
    let refused = action(
        &server,
        "load",
        &load(json!({"reject": true, "reason": "not today"})),
        550,
    )
    .await;
    assert!(
        refused["detail"].as_str().unwrap().contains("not today"),
        "{refused}"
    );
    assert!(
        layer(&server, "l3").await.is_none(),
        "a refused load left a layer"
    );

    let loaded = action(&server, "load", &load(json!({"mode": "ok"})), 200).await;
    let id = loaded["graphicInstanceId"].as_str().unwrap().to_string();
    let before = layer(&server, "l3").await.unwrap();
    for data in [
        json!({"reject": true, "reason": "no update"}),
        json!({"mode": "sundial"}),
    ] {
        let refused = action(
            &server,
            "updateAction",
            &on_l3(&id, json!({"data": data})),
            550,
        )
        .await;
        assert_eq!(refused["title"], "Graphic Error", "{refused}");
        assert_eq!(
            layer(&server, "l3").await.unwrap(),
            before,
            "a refused update changed the layer"
        );
    }
    action(
        &server,
        "updateAction",
        &on_l3(&id, json!({"data": {"mode": "unchanged"}})),
        200,
    )
    .await;
    let after = layer(&server, "l3").await.unwrap();
    assert_eq!(after["template"]["params"]["mode"], "unchanged", "{after}");
}

/// The check of answers against the document is not a rubber stamp: it refuses what the
/// document does not allow (a missing field, a manifest that is not one, an untyped GDD
/// property, a status or content type the operation does not have).
#[test]
fn ograf_answers_are_checked_against_the_document() {
    let refuses = |method: &str, template: &str, status: u16, ct: &str, body: Value| {
        let caught =
            std::panic::catch_unwind(|| assert_conforms(method, template, status, ct, &body));
        assert!(
            caught.is_err(),
            "{method} {template} {status} {ct} {body} passed"
        );
    };
    let json = "application/json";
    let problem = "application/problem+json";
    let manifest = json!({
        "$schema": "https://ograf.ebu.io/v1/specification/json-schemas/graphics/schema.json",
        "id": "g", "name": "G", "main": "/api/templates/g",
        "supportsRealTime": true, "supportsNonRealTime": false,
        "schema": {"type": "object", "properties": {"name": {"type": "string"}}}
    });
    let graphic = "/graphics/{graphicId}";
    assert_conforms(
        "get",
        graphic,
        200,
        json,
        &json!({"graphic": manifest, "manifest": manifest}),
    );
    refuses("get", graphic, 200, json, json!({"graphic": manifest}));
    let mut untyped = manifest.clone();
    untyped["schema"]["properties"]["name"] = json!({"maxLength": 3});
    refuses(
        "get",
        graphic,
        200,
        json,
        json!({"graphic": untyped, "manifest": untyped}),
    );
    let mut no_uri = manifest.clone();
    no_uri.as_object_mut().unwrap().remove("$schema");
    refuses(
        "get",
        graphic,
        200,
        json,
        json!({"graphic": no_uri, "manifest": no_uri}),
    );
    refuses("get", "/graphics", 200, json, json!({}));
    refuses(
        "get",
        "/graphics",
        200,
        json,
        json!({"graphics": [{"id": "g"}]}),
    );
    refuses("get", "/graphics", 418, json, json!({"graphics": []}));
    refuses(
        "get",
        "/graphics",
        200,
        "text/plain",
        json!({"graphics": []}),
    );
    refuses("get", "/nowhere", 200, json, json!({}));
    let p = json!({"type": "urn:x", "title": "Not Found", "status": 404, "detail": "no"});
    assert_conforms("get", graphic, 404, problem, &p);
    refuses("get", graphic, 404, "text/html", p.clone());
    refuses(
        "get",
        graphic,
        404,
        problem,
        json!({"type": "urn:x", "title": "Not Found", "status": "404", "detail": "no"}),
    );
    refuses(
        "get",
        graphic,
        404,
        problem,
        json!({"type": "urn:x", "title": "Not Found", "status": 400, "detail": "no"}),
    );
    refuses(
        "post",
        &format!("{GI}/load"),
        200,
        json,
        json!({"statusCode": 200}),
    );
    refuses(
        "post",
        &format!("{GI}/playAction"),
        200,
        json,
        json!({"graphicInstanceId": "a", "statusCode": 200}),
    );
    let mut p550 = p.clone();
    p550["status"] = json!(550);
    assert_conforms("post", &format!("{GI}/load"), 550, problem, &p550);
    refuses("get", "/graphics", 550, problem, p550);
    // The renderer's target schema is checked through the GDD meta-schema the document
    // names by its old address.
    let renderer = |schema: Value| {
        json!({"renderer": {"id": "program", "name": "Program", "status": {"status": "OK"},
            "renderTargets": [], "renderTargetSchema": schema}})
    };
    let layer_id = json!({"type": "object", "properties": {"layerId": {"type": "string"}}, "required": ["layerId"]});
    assert_conforms(
        "get",
        "/renderers/{rendererId}",
        200,
        json,
        &renderer(layer_id),
    );
    refuses(
        "get",
        "/renderers/{rendererId}",
        200,
        json,
        renderer(json!({"oneOf": [{"type": "object"}]})),
    );
}
