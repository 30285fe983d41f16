//! The gate every `/api/v1/` request passes: its key ([`crate::keys`]), then its key's rate limit
//! ([`crate::ratelimit`]). What passes carries the rate-limit headers its answer must have; what
//! does not is answered here, as the guide's clients expect:
//!
//! - `401` with `WWW-Authenticate: Bearer` (RFC 6750) and a JSON error whose `code` says whether
//!   the key was missing, malformed, unknown or revoked, and whose `message` says what to do;
//! - `429` with `Retry-After`, the three `X-RateLimit-*` headers and the message "Rate limit
//!   exceeded". A refused request does not count against the key.
//!
//! A request must carry one `Authorization` field: two are refused as malformed rather than one
//! of them picked.

use std::collections::BTreeMap;

use runtime::{HttpRequest, HttpResponse, WallTime};

use crate::keys::{ApiKeys, AuthError, KeyRecord, Whitespace};
use crate::ratelimit::{Decision, RateLimiter};

/// The JSON content type of every answer.
pub const JSON: &str = "application/json";

/// A request let through: whose it is, and the headers its answer carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admission {
    /// The key's record.
    pub key: KeyRecord,
    /// `X-RateLimit-Limit`, `-Remaining` and `-Reset`, for the answer.
    pub headers: Vec<(&'static str, String)>,
}

/// The keys and the rate limits of one API node.
#[derive(Debug, Default)]
pub struct Gate {
    keys: ApiKeys,
    limiter: RateLimiter,
    /// Requests refused 429, by their key's tier.
    limited: BTreeMap<&'static str, u64>,
    /// Requests refused 401, by the error's code.
    unauthorized: BTreeMap<&'static str, u64>,
    /// How the `Authorization` header's whitespace is read.
    whitespace: Whitespace,
}

impl Gate {
    /// A gate letting through the holders of `keys`.
    pub fn new(keys: ApiKeys) -> Self {
        Gate {
            keys,
            ..Gate::default()
        }
    }

    /// Requests refused 429 so far, by their key's tier name.
    pub fn limited(&self) -> &BTreeMap<&'static str, u64> {
        &self.limited
    }

    /// Requests refused 401 so far, by why (`missing_api_key`, `malformed_api_key`, …).
    pub fn unauthorized(&self) -> &BTreeMap<&'static str, u64> {
        &self.unauthorized
    }

    /// Reads the `Authorization` header's whitespace as `whitespace` says (the default: as
    /// documented, ignored around the credential).
    pub fn set_whitespace(&mut self, whitespace: Whitespace) {
        self.whitespace = whitespace;
    }

    /// Takes a new set of keys (the key file changed); what keys spent is kept.
    pub fn replace_keys(&mut self, keys: ApiKeys) {
        self.keys = keys;
    }

    /// Lets `request` through, or answers it.
    pub fn admit(&mut self, request: &HttpRequest, now: WallTime) -> Result<Admission, HttpResponse> {
        let mut values = request.header_values("authorization");
        let first = values.next();
        let key = match (first, values.next()) {
            (_, Some(_)) => Err(AuthError::Malformed("more than one Authorization header: send one")),
            (value, None) => self.keys.authenticate_reading(value, self.whitespace),
        };
        let key = match key {
            Ok(key) => key,
            Err(why) => {
                *self.unauthorized.entry(why.code()).or_default() += 1;
                return Err(refused(why));
            }
        };
        let now_ns = u64::try_from(now.as_unix_nanos()).unwrap_or(0);
        let decision = self.limiter.check(&key.id, key.tier(), now_ns);
        let headers = rate_headers(&decision);
        if !decision.allowed {
            *self.limited.entry(key.tier().name).or_default() += 1;
            let retry = decision.retry_after_s.unwrap_or(1);
            let mut answer = error(
                429,
                "rate_limited",
                &format!("Rate limit exceeded: retry after {retry} s"),
            )
            .with_header("Retry-After", retry.to_string());
            answer.headers.extend(headers);
            return Err(answer);
        }
        Ok(Admission {
            key: key.clone(),
            headers,
        })
    }
}

fn rate_headers(decision: &Decision) -> Vec<(&'static str, String)> {
    vec![
        ("X-RateLimit-Limit", decision.limit.to_string()),
        ("X-RateLimit-Remaining", decision.remaining.to_string()),
        ("X-RateLimit-Reset", decision.reset_unix_s.to_string()),
    ]
}

/// The 401 for `why`.
fn refused(why: AuthError) -> HttpResponse {
    // RFC 6750 §3: no error attribute when no credential was sent, invalid_token otherwise.
    let challenge = match why {
        AuthError::Missing => "Bearer realm=\"erc8004\"".to_owned(),
        _ => "Bearer realm=\"erc8004\", error=\"invalid_token\"".to_owned(),
    };
    error(401, why.code(), &why.to_string()).with_header("WWW-Authenticate", challenge)
}

/// A JSON error: `{"error": {"code", "message"}}`.
pub fn error(status: u16, code: &str, message: &str) -> HttpResponse {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    HttpResponse::new(status, JSON, format!("{body}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::ApiKeys;

    const NOW_S: i64 = 1_700_000_000;

    fn at(s: i64) -> WallTime {
        WallTime::from_unix_nanos(s * 1_000_000_000)
    }

    fn gate_with(tier: &str) -> (Gate, String, String) {
        let mut keys = ApiKeys::new();
        let (key, record) = keys.create(&[7; 36], tier, "test", NOW_S).unwrap();
        let id = record.id.clone();
        (Gate::new(keys), key, id)
    }

    fn get(key: Option<&str>) -> HttpRequest {
        let request = HttpRequest::new("GET", "/api/v1/agents/", "");
        match key {
            Some(k) => request.with_header("authorization", format!("Bearer {k}")),
            None => request,
        }
    }

    fn header<'a>(r: &'a HttpResponse, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn code(r: &HttpResponse) -> String {
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        body["error"]["code"].as_str().unwrap().to_owned()
    }

    #[test]
    fn a_key_is_let_through_with_its_limits_and_each_refusal_is_a_401_saying_why() {
        let (mut gate, key, id) = gate_with("standard");
        let admitted = gate.admit(&get(Some(&key)), at(NOW_S)).unwrap();
        assert_eq!(admitted.key.id, id);
        assert_eq!(
            admitted.headers,
            vec![
                ("X-RateLimit-Limit", "1000".to_owned()),
                ("X-RateLimit-Remaining", "999".to_owned()),
                ("X-RateLimit-Reset", (NOW_S + 1).to_string()),
            ]
        );

        let missing = gate.admit(&get(None), at(NOW_S)).unwrap_err();
        assert_eq!((missing.status, code(&missing)), (401, "missing_api_key".into()));
        assert_eq!(header(&missing, "www-authenticate"), Some("Bearer realm=\"erc8004\""));

        let twice = get(Some(&key)).with_header("Authorization", format!("Bearer {key}"));
        let twice = gate.admit(&twice, at(NOW_S)).unwrap_err();
        assert_eq!((twice.status, code(&twice)), (401, "malformed_api_key".into()));
        assert!(String::from_utf8_lossy(&twice.body).contains("more than one Authorization header"));

        let other = format!("hmk_{id}_{}", "0".repeat(64));
        let unknown = gate.admit(&get(Some(&other)), at(NOW_S)).unwrap_err();
        assert_eq!((unknown.status, code(&unknown)), (401, "unknown_api_key".into()));
        assert!(header(&unknown, "www-authenticate").unwrap().contains("invalid_token"));

        let mut keys = ApiKeys::from_json(&{
            let mut k = ApiKeys::new();
            k.create(&[7; 36], "standard", "test", NOW_S).unwrap();
            k.to_json()
        })
        .unwrap();
        keys.revoke(&id, NOW_S + 5).unwrap();
        gate.replace_keys(keys);
        let revoked = gate.admit(&get(Some(&key)), at(NOW_S + 6)).unwrap_err();
        assert_eq!((revoked.status, code(&revoked)), (401, "revoked_api_key".into()));
    }

    #[test]
    fn past_its_limit_a_key_gets_429_with_retry_after_and_is_not_charged() {
        let (mut gate, key, _) = gate_with("free");
        for _ in 0..100 {
            assert!(gate.admit(&get(Some(&key)), at(NOW_S)).is_ok());
        }
        let limited = gate.admit(&get(Some(&key)), at(NOW_S)).unwrap_err();
        assert_eq!((limited.status, code(&limited)), (429, "rate_limited".into()));
        assert!(String::from_utf8_lossy(&limited.body).contains("Rate limit exceeded"));
        // 100 a minute: one comes back every 0.6 s, so a retry in 1 s succeeds.
        assert_eq!(header(&limited, "retry-after"), Some("1"));
        assert_eq!(header(&limited, "x-ratelimit-limit"), Some("100"));
        assert_eq!(header(&limited, "x-ratelimit-remaining"), Some("0"));
        assert_eq!(header(&limited, "x-ratelimit-reset"), Some(&*(NOW_S + 60).to_string()));
        // Refusals cost nothing: asking again at once is refused the same way, and a second later
        // one request is let through.
        for _ in 0..50 {
            assert_eq!(gate.admit(&get(Some(&key)), at(NOW_S)).unwrap_err().status, 429);
        }
        assert!(gate.admit(&get(Some(&key)), at(NOW_S + 1)).is_ok());
    }
}
