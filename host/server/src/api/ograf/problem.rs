//! The facade's errors: RFC 7807 problem details (`application/problem+json`), the shape the
//! OGraf Server API's `ErrorResponse` gives them. `type` is
//! `urn:stream-manager:problem:<code>` with the same kind of machine code `/api` puts in
//! `error.code`; `title` is the status's summary, `detail` this occurrence's cause.
//!
//! A fault of the graphic itself (its template refused or faulted on the data) is 550, the
//! status the OGraf Server API defines for an error from within a GraphicInstance.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::api::error::ApiError;
use sm_scene::SceneError;

/// The media type of a problem body (RFC 7807 section 3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Prefix of every problem `type` (followed by the code).
pub const TYPE_PREFIX: &str = "urn:stream-manager:problem:";

/// 550: the OGraf Server API's status for an error thrown by the GraphicInstance.
pub fn graphic_error_status() -> StatusCode {
    StatusCode::from_u16(550).expect("550 is a valid status code")
}

/// The body of an error response (RFC 7807 section 3.1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProblemBody {
    /// `urn:stream-manager:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong this time, naming the field, id or template at fault.
    pub detail: String,
}

/// An error response of the facade.
#[derive(Debug)]
pub struct Problem {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine code (the end of `type`).
    pub code: &'static str,
    /// Human text for `detail`.
    pub detail: String,
    /// `Retry-After` in seconds (429).
    pub retry_after: Option<u64>,
}

impl Problem {
    /// A problem with this status, code and detail.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// 400 `invalid_body`: the request is not what the operation takes.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_body", detail)
    }

    /// 404 `not_found`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 550 `graphic_failed`: the graphic's template refused or faulted.
    pub fn graphic_failed(detail: impl Into<String>) -> Self {
        Self::new(graphic_error_status(), "graphic_failed", detail)
    }

    /// 500 `internal`: logged in full, shown as a summary.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "OGraf request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed; see its log",
        )
    }

    /// The body.
    pub fn body(&self) -> ProblemBody {
        let title = if self.status == graphic_error_status() {
            "Graphic Error"
        } else {
            self.status.canonical_reason().unwrap_or("Error")
        };
        ProblemBody {
            kind: format!("{TYPE_PREFIX}{}", self.code),
            title: title.to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut res = (self.status, Json(self.body())).into_response();
        let headers = res.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

/// The API's own errors (a body's content type, size or syntax; a refused token) keep their
/// status and code.
impl From<ApiError> for Problem {
    fn from(e: ApiError) -> Self {
        Self::new(e.status, e.code, e.message)
    }
}

/// A scene edit the scene refused. Params refused by the template are told apart by the
/// caller (550); what is left is the request's values (400) or a template gone meanwhile
/// (404).
impl From<SceneError> for Problem {
    fn from(e: SceneError) -> Self {
        match e {
            SceneError::UnknownTemplate { .. } => Self::not_found(e.to_string()),
            e => Self::bad_request(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parts(p: Problem) -> (StatusCode, Option<String>, serde_json::Value) {
        let res = p.into_response();
        let status = res.status();
        let ct = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, ct, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn problems_are_rfc7807_bodies() {
        let (status, ct, body) = parts(Problem::not_found("no graphic \"x\"")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(ct.as_deref(), Some(PROBLEM_JSON));
        assert_eq!(
            body,
            serde_json::json!({
                "type": "urn:stream-manager:problem:not_found",
                "title": "Not Found",
                "status": 404,
                "detail": "no graphic \"x\""
            })
        );
    }

    #[tokio::test]
    async fn a_graphic_fault_is_550() {
        let (status, ct, body) = parts(Problem::graphic_failed("rejected: no")).await;
        assert_eq!(status.as_u16(), 550);
        assert_eq!(ct.as_deref(), Some(PROBLEM_JSON));
        assert_eq!(body["status"], 550);
        assert_eq!(body["title"], "Graphic Error");
        assert_eq!(body["type"], "urn:stream-manager:problem:graphic_failed");
    }

    #[tokio::test]
    async fn api_errors_keep_status_and_code_and_429_says_when() {
        let e = ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "JSON only",
        );
        let (status, _, body) = parts(e.into()).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(
            (
                body["type"].as_str().unwrap(),
                body["detail"].as_str().unwrap()
            ),
            (
                "urn:stream-manager:problem:unsupported_media_type",
                "JSON only"
            )
        );
        let mut p = Problem::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", "wait");
        p.retry_after = Some(7);
        let res = p.into_response();
        assert_eq!(res.headers()[header::RETRY_AFTER], "7");
    }

    #[test]
    fn scene_refusals_are_client_errors() {
        let p = Problem::from(SceneError::UnknownTemplate {
            field: "layers[0].template.id".into(),
            template: "gone".into(),
        });
        assert_eq!(p.status, StatusCode::NOT_FOUND);
        let p = Problem::from(SceneError::OutOfRange {
            field: "layers".into(),
            reason: "at most 256".into(),
        });
        assert_eq!(p.status, StatusCode::BAD_REQUEST);
        assert!(p.detail.contains("at most 256"), "{}", p.detail);
    }
}
