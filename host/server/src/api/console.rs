//! The admin console: the files under `host/server/web/`, embedded into the binary at build
//! time (`build.rs` lists the directory) and served at `/` without a token — the page asks
//! for one, and the API and the WebSocket check it.
//!
//! Every answer carries an `ETag` (a hash of the file) with `Cache-Control: no-cache`, so a
//! reload revalidates each file for a `304` and a new binary's files are taken at once, and a
//! Content-Security-Policy ([`CSP`]) that lets the page load only its own files, talk only to
//! its own origin (REST and the WebSocket at `/ws`) and show `data:` and `blob:` images.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::OnceLock;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// `(path under web/, contents)` of every console file, sorted by path.
static FILES: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/console_files.rs"));

/// What the page may load and talk to.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

struct File {
    path: &'static str,
    body: &'static [u8],
    mime: &'static str,
    etag: HeaderValue,
}

fn files() -> &'static [File] {
    static TABLE: OnceLock<Vec<File>> = OnceLock::new();
    TABLE.get_or_init(|| {
        FILES
            .iter()
            .map(|&(path, body)| {
                let mut h = DefaultHasher::new();
                body.hash(&mut h);
                File {
                    path,
                    body,
                    mime: mime(path),
                    etag: HeaderValue::from_str(&format!("\"{:016x}\"", h.finish()))
                        .expect("hex is a valid header value"),
                }
            })
            .collect()
    })
}

fn mime(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        _ => "text/plain; charset=utf-8",
    }
}

/// The console's routes: `/` (its `index.html`) and every other file at its path.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    pages("index.html")
}

/// Every file under `web/` at its path, but `index` (a page, e.g. `template.html` for
/// `template preview`) at `/`.
pub fn pages<S: Clone + Send + Sync + 'static>(index: &str) -> Router<S> {
    files().iter().fold(Router::new(), |router, file| {
        let path = if file.path == index {
            "/".to_string()
        } else {
            format!("/{}", file.path)
        };
        router.route(&path, get(move |headers: HeaderMap| serve(file, headers)))
    })
}

async fn serve(file: &'static File, headers: HeaderMap) -> Response {
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tags| tags.as_bytes() == file.etag.as_bytes());
    let common = [
        (header::ETAG, file.etag.clone()),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(header::CONTENT_TYPE, HeaderValue::from_static(file.mime))],
        file.body,
    )
        .into_response()
}

/// Whether a WebSocket upgrade comes from the server's own pages: a browser sends `Origin`,
/// which must name the host it connects to (`Host`); a client that is not a browser sends
/// none. This stops another site's page from using a browser's access to the server.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let (Ok(origin), Some(Ok(host))) = (
        origin.to_str(),
        headers.get(header::HOST).map(HeaderValue::to_str),
    ) else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_under_web_is_embedded_with_its_type() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        let mut on_disk = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if e.file_name().to_string_lossy().starts_with('.') {
                    continue;
                }
                if p.is_dir() {
                    stack.push(p);
                } else {
                    on_disk.push(p.strip_prefix(&dir).unwrap().display().to_string());
                }
            }
        }
        on_disk.sort();
        let embedded: Vec<_> = files().iter().map(|f| f.path.to_string()).collect();
        assert_eq!(embedded, on_disk);
        assert!(embedded.iter().any(|p| p == "index.html"));
        for f in files() {
            let on_disk = std::fs::read(dir.join(f.path)).unwrap();
            let served = match String::from_utf8(on_disk) {
                Ok(text) => super::super::web_text::served(f.path, &text).into_bytes(),
                Err(e) => e.into_bytes(),
            };
            assert_eq!(f.body, served.as_slice(), "{} is stale", f.path);
        }
    }

    #[test]
    fn only_the_servers_own_origin_may_open_the_websocket() {
        let with = |origin: Option<&str>, host: Option<&str>| {
            let mut h = HeaderMap::new();
            if let Some(o) = origin {
                h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
            }
            if let Some(v) = host {
                h.insert(header::HOST, HeaderValue::from_str(v).unwrap());
            }
            same_origin(&h)
        };
        assert!(with(None, Some("127.0.0.1:4200")), "not a browser");
        assert!(with(Some("http://127.0.0.1:4200"), Some("127.0.0.1:4200")));
        assert!(with(
            Some("https://Console.example:443"),
            Some("console.example:443")
        ));
        assert!(!with(Some("http://evil.example"), Some("127.0.0.1:4200")));
        assert!(!with(Some("http://127.0.0.1:4201"), Some("127.0.0.1:4200")));
        assert!(!with(Some("null"), Some("127.0.0.1:4200")));
        assert!(!with(Some("http://127.0.0.1:4200"), None));
    }
}
