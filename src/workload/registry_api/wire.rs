//! HTTP exchanges as the simulator carries them: a request and its answer are one datagram each,
//! numbered by the client so a late or repeated answer is matched to its request. It models one
//! keep-alive connection per client (what `testbed bench registry` opens over real TCP); the API
//! reads the same `HttpRequest` and writes the same `HttpResponse` as behind the HTTPS server.
//!
//! Layout, integers big-endian, text and bytes each after a `u32` length:
//! request `b'Q'`, id `u64`, method, target (path and `?query`), `u16` header count, each
//! header's name and value, body; answer `b'A'`, id `u64`, status `u16`, headers, body.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use runtime::{HttpRequest, HttpResponse};

/// Headers in one message at most.
const HEADERS_MAX: usize = 64;

/// A request numbered `id`.
pub fn encode_request(id: u64, request: &HttpRequest) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(b'Q');
    out.put_u64(id);
    put(&mut out, request.method.as_bytes());
    let target = if request.query.is_empty() {
        request.path.clone()
    } else {
        format!("{}?{}", request.path, request.query)
    };
    put(&mut out, target.as_bytes());
    put_headers(&mut out, request.headers.iter().map(|(n, v)| (n.as_bytes(), &v[..])));
    put(&mut out, &request.body);
    out.freeze()
}

/// The answer to request `id`.
pub fn encode_response(id: u64, response: &HttpResponse) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(b'A');
    out.put_u64(id);
    out.put_u16(response.status);
    put_headers(
        &mut out,
        response.headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
    );
    put(&mut out, &response.body);
    out.freeze()
}

/// A request and its id, if `bytes` is one.
pub fn decode_request(bytes: &[u8]) -> Option<(u64, HttpRequest)> {
    let mut r = Reader(bytes);
    (r.u8()? == b'Q').then_some(())?;
    let id = r.u64()?;
    let method = String::from_utf8(r.bytes()?.to_vec()).ok()?;
    let target = String::from_utf8(r.bytes()?.to_vec()).ok()?;
    let headers = r.headers()?;
    let body = r.bytes()?.to_vec();
    r.0.is_empty().then_some(())?;
    let mut request = HttpRequest::new(&method, &target, body);
    request.headers = headers
        .into_iter()
        .map(|(n, v)| Some((String::from_utf8(n).ok()?.to_ascii_lowercase(), Bytes::from(v))))
        .collect::<Option<_>>()?;
    Some((id, request))
}

/// An answer as a client reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// Every header but `Content-Type`, as sent.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

impl Answer {
    /// The value of header `name` (any case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Its `Retry-After`, in whole seconds, if it gives one that reads.
    pub fn retry_after(&self) -> Option<Duration> {
        self.header("retry-after")
            .and_then(|s| s.parse::<u64>().ok())
            .map(Duration::from_secs)
    }

    /// The body as JSON (`Null` if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// An answer and the id of its request, if `bytes` is one.
pub fn decode_response(bytes: &[u8]) -> Option<(u64, Answer)> {
    let mut r = Reader(bytes);
    (r.u8()? == b'A').then_some(())?;
    let id = r.u64()?;
    let status = r.u16()?;
    let headers = r.headers()?;
    let body = Bytes::copy_from_slice(r.bytes()?);
    r.0.is_empty().then_some(())?;
    let headers = headers
        .into_iter()
        .map(|(n, v)| Some((String::from_utf8(n).ok()?, String::from_utf8(v).ok()?)))
        .collect::<Option<_>>()?;
    Some((id, Answer { status, headers, body }))
}

fn put(out: &mut BytesMut, bytes: &[u8]) {
    out.put_u32(u32::try_from(bytes.len()).expect("a message part under 4 GiB"));
    out.put_slice(bytes);
}

fn put_headers<'a>(out: &mut BytesMut, headers: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>) {
    out.put_u16(u16::try_from(headers.len()).expect("under 65536 headers"));
    for (name, value) in headers {
        put(out, name);
        put(out, value);
    }
}

/// Reads a message front to back; `None` once it does not read.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        (self.0.len() >= n).then(|| {
            let (head, rest) = self.0.split_at(n);
            self.0 = rest;
            head
        })
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self
            .take(4)
            .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")))?;
        self.take(usize::try_from(len).ok()?)
    }

    fn headers(&mut self) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
        let count = usize::from(self.u16()?);
        (count <= HEADERS_MAX).then_some(())?;
        (0..count)
            .map(|_| Some((self.bytes()?.to_vec(), self.bytes()?.to_vec())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_and_its_answer_cross_the_wire_whole() {
        let mut request = HttpRequest::new("POST", "/api/v1/transactions?x=1", &b"{\"raw\":\"0x00\"}"[..]);
        request
            .headers
            .push(("authorization".into(), Bytes::from_static(b" Bearer hmk_1 ")));
        let (id, back) = decode_request(&encode_request(7, &request)).expect("reads");
        assert_eq!(id, 7);
        assert_eq!(
            (back.method.as_str(), back.path.as_str(), back.query.as_str()),
            ("POST", "/api/v1/transactions", "x=1")
        );
        assert_eq!(back.headers, request.headers);
        assert_eq!(back.body, request.body);

        let answer = HttpResponse::new(429, "application/json", "{}").with_header("Retry-After", "3");
        let (id, back) = decode_response(&encode_response(9, &answer)).expect("reads");
        assert_eq!((id, back.status, back.body.clone()), (9, 429, answer.body.clone()));
        assert_eq!(back.header("retry-after"), Some("3"));
    }

    #[test]
    fn a_cut_or_padded_message_does_not_read() {
        let bytes = encode_request(1, &HttpRequest::new("GET", "/health", Vec::new()));
        for cut in 0..bytes.len() {
            assert!(decode_request(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        let mut padded = bytes.to_vec();
        padded.push(0);
        assert!(decode_request(&padded).is_none());
        assert!(decode_response(&bytes).is_none(), "a request is not an answer");
    }
}
