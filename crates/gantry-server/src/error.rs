//! One error type for every route: client errors carry a stable code and name the
//! field; internal errors get a generic body and are logged once.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gantry_api::ErrorBody;
use gantry_core::Refusal;
use gantry_engine::EngineError;
use gantry_store::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        field: Option<&str>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: field.map(str::to_owned),
        }
    }

    pub fn bad_request(message: impl Into<String>, field: Option<&str>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message, field)
    }

    /// A request that is well-formed but names something wrong (422).
    pub fn invalid(message: impl Into<String>, field: &str) -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            message,
            Some(field),
        )
    }

    pub fn unauthorized(message: &str) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message, None)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message, None)
    }

    fn internal(error: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(%error, "request failed inside the server");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed; its log says why",
            None,
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code.to_owned(),
            message: self.message,
            field: self.field,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", error.to_string(), None)
            }
            StoreError::Conflict(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", error.to_string(), None)
            }
            StoreError::Corrupt(_) | StoreError::Database(_) => ApiError::internal(&error),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> ApiError {
        let message = error.to_string();
        match error {
            EngineError::UnknownProject(_) => ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_project",
                message,
                Some("project"),
            ),
            EngineError::UnknownRelease { .. } => ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_release",
                message,
                Some("release"),
            ),
            EngineError::Refused(Refusal::UnknownEnvironment { .. }) => ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_environment",
                message,
                Some("environment"),
            ),
            EngineError::Refused(_) => ApiError::new(
                StatusCode::CONFLICT,
                "refused",
                message,
                Some("environment"),
            ),
            EngineError::Invalid(_) => ApiError::bad_request(message, None),
            EngineError::InvalidField { field, .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                message,
                Some(field),
            ),
            EngineError::Registry { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unresolvable",
                message,
                Some("components"),
            ),
            EngineError::NotCounted { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "not_counted",
                message,
                Some("approver"),
            ),
            EngineError::Store(store) => store.into(),
        }
    }
}
