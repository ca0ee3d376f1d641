//! Static files from a document root: content types, HEAD, conditional GET, and a path check
//! that never reads outside the root.

use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{
    CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};

/// The content type for a file name's extension.
pub(crate) fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("ico") => "image/x-icon",
        Some("wasm") => "application/wasm",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// Why a request path cannot name a file under the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathRefusal {
    /// Percent-decoding failed or produced a NUL, a backslash, a drive prefix or `..`: 400.
    BadRequest,
}

/// Turns a request path into a path relative to the root: percent-decoded, and refused if it
/// holds `..`, NUL, a backslash, or a drive or root prefix after its leading slash.
pub(crate) fn relative_path(request_path: &str) -> Result<PathBuf, PathRefusal> {
    let decoded = percent_decode_path(request_path).ok_or(PathRefusal::BadRequest)?;
    if decoded.contains('\0') || decoded.contains('\\') {
        return Err(PathRefusal::BadRequest);
    }
    let mut out = PathBuf::new();
    for segment in decoded.split('/').filter(|s| !s.is_empty() && *s != ".") {
        if segment == ".." || segment.contains(':') {
            return Err(PathRefusal::BadRequest);
        }
        match Path::new(segment).components().next() {
            Some(Component::Normal(_)) => out.push(segment),
            _ => return Err(PathRefusal::BadRequest),
        }
    }
    Ok(out)
}

fn percent_decode_path(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let s = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(s, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Serves `request_path` from `root` for GET or HEAD: `None` if no such file (the caller
/// answers 404 or falls back). Directories serve their `index.html`.
pub(crate) async fn serve_file(
    root: &Path,
    request_path: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Option<Response<Bytes>> {
    let relative = match relative_path(request_path) {
        Ok(p) => p,
        Err(PathRefusal::BadRequest) => return Some(status(StatusCode::BAD_REQUEST)),
    };
    let root = tokio::fs::canonicalize(root).await.ok()?;
    let mut path = root.join(&relative);
    if tokio::fs::metadata(&path).await.ok()?.is_dir() {
        path.push("index.html");
    }
    // Symbolic links must not lead out of the root either.
    let path = tokio::fs::canonicalize(&path).await.ok()?;
    if !path.starts_with(&root) {
        return Some(status(StatusCode::NOT_FOUND));
    }
    let meta = tokio::fs::metadata(&path).await.ok()?;
    if !meta.is_file() {
        return None;
    }
    let modified = meta.modified().ok();
    let etag = format!(
        "\"{:x}-{:x}\"",
        meta.len(),
        modified
            .and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs())
    );
    let last_modified = modified.map(httpdate::fmt_http_date);
    let fresh = match headers.get(IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        Some(tags) => tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"),
        None => match (
            headers.get(IF_MODIFIED_SINCE).and_then(|v| v.to_str().ok()),
            modified,
        ) {
            (Some(since), Some(m)) => {
                httpdate::parse_http_date(since).is_ok_and(|since| unix_secs(m) <= unix_secs(since))
            }
            _ => false,
        },
    };
    let mut builder = Response::builder()
        .header(ETAG, &etag)
        .header(CONTENT_TYPE, content_type(&path));
    if let Some(lm) = &last_modified {
        builder = builder.header(LAST_MODIFIED, lm);
    }
    if fresh {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Bytes::new())
            .ok();
    }
    builder = builder.header(CONTENT_LENGTH, meta.len());
    let body = if method == Method::HEAD {
        Bytes::new()
    } else {
        Bytes::from(tokio::fs::read(&path).await.ok()?)
    };
    builder.body(body).ok()
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A response with `status` and its reason as a plain-text body.
pub(crate) fn status(status: StatusCode) -> Response<Bytes> {
    let mut resp = Response::new(Bytes::from(format!("{status}\n")));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_17_paths_outside_the_root_are_refused() {
        for bad in [
            "/../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/..%5cwin.ini",
            "/C:/Windows/win.ini",
            "/%00",
            "/a/../../b",
            "/%zz",
            "/%c0%ae%c0%ae/",
        ] {
            assert_eq!(relative_path(bad), Err(PathRefusal::BadRequest), "{bad}");
        }
        assert_eq!(
            relative_path("/a/./b%20c.html").unwrap(),
            PathBuf::from("a/b c.html")
        );
        assert_eq!(relative_path("/").unwrap(), PathBuf::new());
    }
}
