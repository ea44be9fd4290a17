use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bulwark_oci::error::ErrorBody;
use bulwark_oci::{DigestError, EndpointError, ErrorCode, NameError};

/// An error on its way to the client as an OCI error body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    detail: Option<serde_json::Value>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: u16, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code,
            message: message.into(),
            detail: None,
            headers: Vec::new(),
        }
    }

    /// Add a response header (a challenge, `Retry-After`, ...).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

impl From<bulwark_core::Error> for ApiError {
    fn from(e: bulwark_core::Error) -> Self {
        use bulwark_core::Error as E;
        let (code, status) = e.code();
        if e.is_internal() {
            // Logged once here; the client learns nothing about internals.
            tracing::error!(error = %e, source = ?std::error::Error::source(&e), "internal error");
            return ApiError::new(status, code, "internal server error");
        }
        let err = ApiError::new(status, code, e.to_string());
        match &e {
            E::BlobUnknown(d) | E::ManifestBlobUnknown(d) => {
                err.with_detail(serde_json::json!({ "digest": d.to_string() }))
            }
            E::DigestMismatch { expected, actual } => err.with_detail(serde_json::json!({
                "expected": expected.to_string(),
                "actual": actual.to_string(),
            })),
            E::RangeInvalid { expected } => {
                err.with_detail(serde_json::json!({ "offset": expected }))
            }
            _ => err,
        }
    }
}

impl From<EndpointError> for ApiError {
    fn from(e: EndpointError) -> Self {
        let msg = e.to_string();
        match e {
            EndpointError::NotFound => ApiError::new(404, ErrorCode::Unsupported, msg),
            EndpointError::MethodNotAllowed => ApiError::new(405, ErrorCode::Unsupported, msg),
            EndpointError::Name(NameError::Name(_)) => {
                ApiError::new(400, ErrorCode::NameInvalid, msg)
            }
            EndpointError::Name(NameError::Tag(_)) => {
                ApiError::new(400, ErrorCode::TagInvalid, msg)
            }
            EndpointError::Name(NameError::Digest(
                DigestError::Invalid(_) | DigestError::Unsupported(_),
            ))
            | EndpointError::BadQuery(_) => ApiError::new(400, ErrorCode::DigestInvalid, msg),
            EndpointError::BadPagination => {
                ApiError::new(400, ErrorCode::PaginationNumberInvalid, msg)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody::single(self.code, &self.message, self.detail.as_ref());
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut resp = (self.status, json).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in self.headers {
            resp.headers_mut().insert(name, value);
        }
        resp
    }
}
