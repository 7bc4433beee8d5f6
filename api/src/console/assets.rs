//! The console's style sheet and script, compiled into the binary. Each is served under
//! a name carrying a digest of its content, so browsers may keep it for good: a new
//! version is a new name.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::ConsoleError;
use crate::error::ApiError;

pub struct Asset {
    stem: &'static str,
    extension: &'static str,
    content_type: &'static str,
    body: &'static str,
    digest: LazyLock<String>,
}

impl Asset {
    /// Where pages link it: `/app/assets/<stem>.<digest>.<extension>`.
    pub fn path(&self) -> String {
        format!("/app/assets/{}", self.file_name())
    }

    fn file_name(&self) -> String {
        format!("{}.{}.{}", self.stem, *self.digest, self.extension)
    }
}

fn digest(body: &str) -> String {
    Sha256::digest(body.as_bytes())[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub static CSS: Asset = Asset {
    stem: "console",
    extension: "css",
    content_type: "text/css; charset=utf-8",
    body: include_str!("static/console.css"),
    digest: LazyLock::new(|| digest(include_str!("static/console.css"))),
};

pub static JS: Asset = Asset {
    stem: "console",
    extension: "js",
    content_type: "text/javascript; charset=utf-8",
    body: include_str!("static/console.js"),
    digest: LazyLock::new(|| digest(include_str!("static/console.js"))),
};

pub static ICON: Asset = Asset {
    stem: "icon",
    extension: "svg",
    content_type: "image/svg+xml",
    body: include_str!("static/icon.svg"),
    digest: LazyLock::new(|| digest(include_str!("static/icon.svg"))),
};

pub async fn serve(Path(file): Path<String>) -> Result<Response, ConsoleError> {
    let asset = [&CSS, &JS, &ICON]
        .into_iter()
        .find(|a| a.file_name() == file)
        .ok_or_else(|| ApiError::not_found("no such asset (of this version)"))?;
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    Ok(response)
}
