//! The admin console, served by the binary itself: its files without a token, revalidated by
//! ETag, under a Content-Security-Policy that allows only itself; its WebSocket at `/ws` on
//! the same port, with the token, and refused to pages of another origin.

use crate::harness::*;

/// Local files a page or module names (`src="…"`, `href="…"`, `from "./…"`, `import("./…")`).
fn references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for marker in [
        "src=\"",
        "href=\"",
        "from \"",
        "from '",
        "import(\"",
        "import \"",
    ] {
        for part in text.split(marker).skip(1) {
            let end = part.find(['"', '\'']).unwrap_or(0);
            let r = &part[..end];
            let local = !r.is_empty()
                && !r.contains(':')
                && !r.starts_with('#')
                && !r.starts_with("//")
                && (r.ends_with(".js") || r.ends_with(".css") || r.ends_with(".png"));
            if local {
                out.push(r.trim_start_matches("./").to_string());
            }
        }
    }
    out
}

#[tokio::test]
async fn the_console_is_served_by_the_binary_under_its_own_policy() {
    let token = "console-t0ken";
    let server = Server::builder().token(token).start().await;
    let http = reqwest::Client::new();

    // The page needs no token (it asks for one); the API still does.
    let page = http.get(server.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert!(header(&page, "content-type").starts_with("text/html"));
    let csp = header(&page, "content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data: blob:",
    ] {
        assert!(csp.contains(directive), "{directive:?} not in {csp:?}");
    }
    assert_eq!(header(&page, "cache-control"), "no-cache");
    let etag = header(&page, "etag");
    assert!(etag.len() > 2, "no ETag");
    let html = page.text().await.unwrap();
    assert!(html.contains("type=\"module\""), "{html}");
    let api = http.get(server.url("/api/stream/state")).send().await;
    assert_eq!(api.unwrap().status(), 401);

    // Everything the page loads is served, with its type, from the binary; nothing remote.
    let mut todo = references(&html);
    let mut seen = Vec::new();
    assert!(!todo.is_empty(), "the page loads nothing: {html}");
    while let Some(path) = todo.pop() {
        if seen.contains(&path) {
            continue;
        }
        let reply = http.get(server.url(&format!("/{path}"))).send().await;
        let reply = reply.unwrap();
        assert_eq!(reply.status(), 200, "/{path}");
        let kind = header(&reply, "content-type");
        if path.ends_with(".js") {
            assert!(kind.starts_with("text/javascript"), "/{path}: {kind}");
            let text = reply.text().await.unwrap();
            // Module paths resolve against the module's own directory.
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            for r in references(&text) {
                let joined = if dir.is_empty() || r.starts_with('/') {
                    r.trim_start_matches('/').to_string()
                } else if let Some(up) = r.strip_prefix("../") {
                    let parent = dir.rsplit_once('/').map_or("", |(d, _)| d);
                    if parent.is_empty() {
                        up.to_string()
                    } else {
                        format!("{parent}/{up}")
                    }
                } else {
                    format!("{dir}/{r}")
                };
                todo.push(joined);
            }
        } else if path.ends_with(".css") {
            assert!(kind.starts_with("text/css"), "/{path}: {kind}");
        }
        seen.push(path);
    }
    for remote in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(
            !html.contains(remote),
            "a remote reference ({remote}…) in the page"
        );
    }

    // A reload revalidates: the same ETag is a 304 without a body.
    let again = http
        .get(server.url("/"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.unwrap().is_empty());
    let missing = http
        .get(server.url("/no-such-file.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // The WebSocket on the page's own port: the page's origin with the token is let in…
    let ws_url = server.url("/ws").replacen("http", "ws", 1);
    let own = server.url("").trim_end_matches('/').to_string();
    let mut ws = Ws::connect_from(&ws_url, Some(token), Some(&own))
        .await
        .unwrap_or_else(|e| panic!("the console's own origin refused: {e:?}"));
    let first = ws.next(secs(5.0)).await;
    assert_eq!(first["type"], "stateUpdate", "{first}");
    // …another site's page is not, token or not, on either port; no token is a 401.
    for url in [ws_url.clone(), server.ws_url()] {
        match Ws::connect_from(&url, Some(token), Some("http://evil.example")).await {
            Ok(_) => panic!("{url}: a foreign origin was let in"),
            Err((status, detail)) => assert_eq!(status, Some(403), "{url}: {detail}"),
        }
    }
    match Ws::connect_from(&ws_url, None, Some(&own)).await {
        Ok(_) => panic!("the console's WebSocket without a token"),
        Err((status, detail)) => assert_eq!(status, Some(401), "{detail}"),
    }
}
