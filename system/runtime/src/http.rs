//! The HTTP seam: a service is a pure function from a request (and the time) to a response, and
//! a backend owns sockets, TLS, connection limits and body size limits.
//!
//! As with [`crate::Actor`], the service never touches the network or a clock, so the same
//! handlers run behind the production HTTPS server (`runtime-tokio`) and in plain unit tests.

use bytes::Bytes;

use crate::WallTime;

/// One HTTP request whose body has been read in full (within the backend's limit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method, upper case (`GET`, `POST`, ...).
    pub method: String,
    /// The path, without the query (`/ca/bundle`).
    pub path: String,
    /// The raw query after `?`, empty if none.
    pub query: String,
    /// Every header field as received, in order, names in lower case; a name sent twice is here
    /// twice (a service that wants one value can refuse two).
    pub headers: Vec<(String, Bytes)>,
    /// The body.
    pub body: Bytes,
}

impl HttpRequest {
    /// A request of `method` for `target` (path with an optional `?query`), with `body`.
    pub fn new(method: &str, target: &str, body: impl Into<Bytes>) -> Self {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        HttpRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// The same request with one more header field (`name` taken in lower case).
    pub fn with_header(mut self, name: &str, value: impl Into<Bytes>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// The values of every field named `name` (any case), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }

    /// The query's `key=value` pairs, percent-decoded, in order. A pair that does not decode is
    /// returned as an error naming it.
    pub fn query_pairs(&self) -> Result<Vec<(String, String)>, String> {
        self.query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                match (percent_decode(k), percent_decode(v)) {
                    (Some(k), Some(v)) => Ok((k, v)),
                    _ => Err(format!("query parameter {pair:?} is not valid percent-encoded UTF-8")),
                }
            })
            .collect()
    }
}

/// Decodes `%XX` escapes and `+` (a space in forms); `None` on a bad escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hi = (bytes.next()? as char).to_digit(16)?;
                let lo = (bytes.next()? as char).to_digit(16)?;
                out.push((hi * 16 + lo) as u8);
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

/// A response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// Further headers (`Allow` on a 405, for instance).
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Bytes,
    /// Set: this answer may still be bettered ([`HttpService::resume`]); a backend that can wait
    /// holds it back until then, one that cannot sends it as it is.
    pub pending: Option<Pending>,
}

/// What a service that cannot answer yet (a transaction taken, not yet committed) asks of the
/// backend: ask again, through [`HttpService::resume`], when something may have changed, and
/// once more, for the last time, at `until`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// What the service needs to find the answer again (opaque to the backend).
    pub token: String,
    /// The host's wall time at which the backend asks the last time.
    pub until: WallTime,
}

impl HttpResponse {
    /// A response with `status`, `content_type` and `body`, and no other headers.
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        HttpResponse {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
            pending: None,
        }
    }

    /// Marks this answer as one that may still be bettered, up to `until` (see [`Pending`]).
    pub fn pending(mut self, token: impl Into<String>, until: WallTime) -> Self {
        self.pending = Some(Pending {
            token: token.into(),
            until,
        });
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// What a backend serves: handles one request at a time, at `now` by the host's wall clock.
pub trait HttpService: Send {
    /// Answers `request`. Never panics on any input: bad requests get a 4xx naming the problem.
    fn handle(&mut self, request: &HttpRequest, now: WallTime) -> HttpResponse;

    /// Asked again about `first`, an answer [`HttpResponse::pending`] this service gave: the
    /// answer that replaces it, or `None` to go on waiting. `last` is set on the last call (at
    /// [`Pending::until`]), where `None` sends `first` as it is (without its mark). A backend
    /// asks when it was told something changed and at an interval of its own; one that cannot
    /// hold an answer (or holds too many) asks once, at once, with `last` set, so that the
    /// service always has a last word on each. The default never betters an answer.
    fn resume(&mut self, first: &HttpResponse, now: WallTime, last: bool) -> Option<HttpResponse> {
        let _ = (first, now, last);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_are_found_by_any_case_and_kept_when_repeated() {
        let r = HttpRequest::new("GET", "/", "")
            .with_header("Authorization", "Bearer a")
            .with_header("x-other", "1")
            .with_header("AUTHORIZATION", "Bearer b");
        let values: Vec<&[u8]> = r.header_values("authorization").collect();
        assert_eq!(values, [&b"Bearer a"[..], &b"Bearer b"[..]]);
        assert_eq!(r.header_values("missing").count(), 0);
    }

    #[test]
    fn targets_split_into_path_and_decoded_query() {
        let r = HttpRequest::new("GET", "/ct/proof?index=3&name=node%2D1.mesh&x", "");
        assert_eq!(r.path, "/ct/proof");
        assert_eq!(
            r.query_pairs().unwrap(),
            vec![
                ("index".into(), "3".into()),
                ("name".into(), "node-1.mesh".into()),
                ("x".into(), String::new())
            ]
        );
        let bad = HttpRequest::new("GET", "/a?k=%zz", "");
        assert!(bad.query_pairs().unwrap_err().contains("k=%zz"));
        assert!(HttpRequest::new("GET", "/a?k=%ff", "").query_pairs().is_err());
    }
}
