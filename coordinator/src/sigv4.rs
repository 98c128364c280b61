//! SigV4 for the lean Invoke client ([`crate::lambda_api`]): its one request shape (a `POST` to
//! a fixed path with fixed headers, no query string), signed exactly as `aws-sigv4`'s general
//! `sign` signs it with default settings, at a fraction of the CPU per request.
//!
//! What the general signer redoes on every call is done here once: the day's signing key (four
//! HMACs) is cached per date, region and secret; the path's canonical form and the sorted list
//! of signed header names are fixed per target. Per request there remain two SHA-256 hashes
//! (payload and canonical request) and one HMAC.
//!
//! Contract: for a target built by [`InvokeSigner::target`] (which refuses an endpoint path with
//! `.` or `..` segments, the one case where the general signer would normalize the path first),
//! [`InvokeSigner::sign`] answers the same `x-amz-date`, `x-amz-security-token` and
//! `authorization` headers as `aws_sigv4::http_request::sign` at the same time and with the same
//! credentials; the golden test below holds them equal over varied inputs.

use std::sync::Mutex;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

/// Lambda's signing name.
pub const SERVICE: &str = "lambda";

/// What the canonical URI keeps of a path as sent (aws-sigv4 encodes it again, keeping `/` and
/// RFC 3986's unreserved characters: `%` becomes `%25`).
const CANONICAL_PATH: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

/// Signs Invoke requests for one region.
#[derive(Debug)]
pub struct InvokeSigner {
    region: String,
    day_key: Mutex<Option<DayKey>>,
}

/// A signing key and the date, region and secret it was derived for.
struct DayKey {
    date: String,
    secret: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for DayKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DayKey").field("date", &self.date).finish_non_exhaustive()
    }
}

/// What is fixed about one request target: its `Host` value, canonical path and headers.
#[derive(Debug, Clone)]
pub struct SigningTarget {
    host: String,
    canonical_path: String,
    /// The request's own headers (lowercase names, trimmed values), all signed.
    headers: Vec<(String, String)>,
}

impl SigningTarget {
    /// The `Host` header's value the signature covers (the port only when it is not the
    /// scheme's default).
    pub fn host(&self) -> &str {
        &self.host
    }
}

/// The headers a signed request adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub amz_date: String,
    pub security_token: Option<String>,
    pub authorization: String,
}

/// Why a target cannot be signed here.
#[derive(Debug, thiserror::Error)]
#[error("cannot sign requests to {uri}: {reason}")]
pub struct TargetError {
    pub uri: String,
    pub reason: String,
}

impl InvokeSigner {
    pub fn new(region: impl Into<String>) -> Self {
        InvokeSigner { region: region.into(), day_key: Mutex::new(None) }
    }

    /// The fixed parts of signing `POST uri` with `headers`. `uri` must be absolute, without a
    /// query string, and its path without `.` or `..` segments.
    pub fn target(uri: &http::Uri, headers: &[(&str, &str)]) -> Result<SigningTarget, TargetError> {
        let error = |reason: &str| TargetError { uri: uri.to_string(), reason: reason.to_string() };
        let host = uri.host().ok_or_else(|| error("it has no host"))?;
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(error("it has user information"));
        }
        if uri.query().is_some() {
            return Err(error("it has a query string"));
        }
        let path = uri.path();
        if path.split('/').any(|segment| segment == "." || segment == "..") {
            return Err(error("its path has a `.` or `..` segment"));
        }
        let default_port =
            matches!((uri.scheme_str(), uri.port_u16()), (Some("http"), Some(80)) | (Some("https"), Some(443)));
        let host = match uri.port() {
            Some(port) if !default_port => format!("{host}:{port}"),
            _ => host.to_string(),
        };
        let mut headers: Vec<(String, String)> =
            headers.iter().map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_string())).collect();
        headers.sort();
        Ok(SigningTarget { host, canonical_path: utf8_percent_encode(path, CANONICAL_PATH).to_string(), headers })
    }

    /// The signature headers of `POST` to `target` with `payload`, at `now`.
    pub fn sign(
        &self,
        target: &SigningTarget,
        credentials: &Credentials,
        payload: &[u8],
        now: SystemTime,
    ) -> Signature {
        let now = time::OffsetDateTime::from(now);
        // `YYYYMMDD` and `YYYYMMDDTHHMMSSZ`, written without the formatting machinery: this runs
        // once per task of a fan-out.
        let mut amz_date = String::with_capacity(16);
        push_digits(&mut amz_date, now.year().clamp(0, 9999) as u32, 4);
        push_digits(&mut amz_date, u8::from(now.month()).into(), 2);
        push_digits(&mut amz_date, now.day().into(), 2);
        amz_date.push('T');
        push_digits(&mut amz_date, now.hour().into(), 2);
        push_digits(&mut amz_date, now.minute().into(), 2);
        push_digits(&mut amz_date, now.second().into(), 2);
        amz_date.push('Z');
        let date = &amz_date[..8];
        let token = credentials.session_token().map(|t| t.trim().to_string());

        // The canonical headers, sorted by name: the request's own, host, x-amz-date and the
        // session token.
        let mut headers: Vec<(&str, &str)> = Vec::with_capacity(target.headers.len() + 3);
        headers.extend(target.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        headers.push(("host", &target.host));
        headers.push(("x-amz-date", &amz_date));
        if let Some(token) = &token {
            headers.push(("x-amz-security-token", token));
        }
        headers.sort_unstable();

        let mut canonical = String::with_capacity(512);
        canonical.push_str("POST\n");
        canonical.push_str(&target.canonical_path);
        canonical.push_str("\n\n");
        for (name, value) in &headers {
            canonical.push_str(name);
            canonical.push(':');
            canonical.push_str(value);
            canonical.push('\n');
        }
        canonical.push('\n');
        let signed_headers_at = canonical.len();
        for (i, (name, _)) in headers.iter().enumerate() {
            if i > 0 {
                canonical.push(';');
            }
            canonical.push_str(name);
        }
        let signed_headers_end = canonical.len();
        canonical.push('\n');
        push_hex(&mut canonical, &Sha256::digest(payload));
        let signed_headers = &canonical[signed_headers_at..signed_headers_end];

        let mut scope = String::with_capacity(64);
        for part in [date, "/", &self.region, "/", SERVICE, "/aws4_request"] {
            scope.push_str(part);
        }
        let mut string_to_sign = String::with_capacity(160);
        for part in ["AWS4-HMAC-SHA256\n", &amz_date, "\n", &scope, "\n"] {
            string_to_sign.push_str(part);
        }
        push_hex(&mut string_to_sign, &Sha256::digest(canonical.as_bytes()));
        let signature = self.with_key(date, credentials.secret_access_key(), now, |key| {
            aws_sigv4::sign::v4::calculate_signature(key, string_to_sign.as_bytes())
        });
        let mut authorization = String::with_capacity(256);
        for part in [
            "AWS4-HMAC-SHA256 Credential=",
            credentials.access_key_id(),
            "/",
            &scope,
            ", SignedHeaders=",
            signed_headers,
            ", Signature=",
            &signature,
        ] {
            authorization.push_str(part);
        }
        Signature { amz_date, security_token: token, authorization }
    }

    /// Runs `f` with the signing key of `date` and `secret`, derived once per date and secret.
    fn with_key<T>(&self, date: &str, secret: &str, now: time::OffsetDateTime, f: impl FnOnce(&[u8]) -> T) -> T {
        let mut cached = self.day_key.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let fresh = cached.as_ref().is_some_and(|k| k.date == date && k.secret == secret);
        if !fresh {
            let key = aws_sigv4::sign::v4::generate_signing_key(secret, now.into(), &self.region, SERVICE);
            *cached = Some(DayKey { date: date.to_string(), secret: secret.to_string(), key: key.as_ref().to_vec() });
        }
        f(&cached.as_ref().expect("the key was just derived").key)
    }
}

/// Appends `value` in decimal, zero-padded to `width` digits.
fn push_digits(out: &mut String, value: u32, width: usize) {
    let mut digits = [b'0'; 10];
    let mut rest = value;
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    let used = 10 - value.checked_ilog10().map_or(1, |log| log as usize + 1);
    let start = used.min(10 - width);
    out.extend(digits[start..].iter().map(|&d| char::from(d)));
}

/// Appends `bytes` in lowercase hex.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 15)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_smithy_runtime_api::client::identity::Identity;
    use std::time::Duration;

    /// aws-sigv4's own headers for the same request.
    fn reference(
        uri: &str,
        headers: &[(&str, &str)],
        credentials: &Credentials,
        region: &str,
        payload: &[u8],
        now: SystemTime,
    ) -> Signature {
        let identity: Identity = credentials.clone().into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(SERVICE)
            .time(now)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let signable =
            SignableRequest::new("POST", uri, headers.iter().copied(), SignableBody::Bytes(payload)).unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let header =
            |name: &str| instructions.headers().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.to_string());
        Signature {
            amz_date: header("x-amz-date").unwrap(),
            security_token: header("x-amz-security-token"),
            authorization: header("authorization").unwrap(),
        }
    }

    #[test]
    fn digits_and_hex_are_written_as_format_writes_them() {
        for (value, width) in [(0, 2), (5, 2), (59, 2), (2026, 4), (7, 4), (123456, 2)] {
            let mut out = String::new();
            push_digits(&mut out, value, width);
            assert_eq!(out, format!("{value:0width$}"));
        }
        let mut out = String::new();
        push_hex(&mut out, &[0x00, 0x0f, 0xa5, 0xff]);
        assert_eq!(out, "000fa5ff");
    }

    #[test]
    fn signs_as_aws_sigv4_does() {
        let mut rng = fastrand::Rng::with_seed(11);
        let uris = [
            "https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/quack-worker/invocations",
            "http://127.0.0.1:9001/2015-03-31/functions/quack-worker/invocations",
            "http://localhost:80/2015-03-31/functions/f/invocations",
            "https://lambda.eu-west-3.amazonaws.com:443/2015-03-31/functions/f/invocations",
            "https://proxy.example:8443/base/path/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Aq%3Alive/invocations",
            "http://[::1]:4000/2015-03-31/functions/a%2Fb%2E%2E%20c/invocations",
        ];
        let headers = [("x-amz-invocation-type", "RequestResponse"), ("content-type", "application/json")];
        for round in 0..300 {
            let uri = uris[round % uris.len()];
            let region = ["us-east-1", "eu-west-3", "ap-southeast-2", "cn-north-1"][rng.usize(..4)];
            let token = (round % 3 != 0).then(|| format!("FwoGZXIvYXdzE{}==", rng.u64(..)));
            let credentials = Credentials::new(
                format!("AKIA{:016}", rng.u64(..)),
                format!("secret/{}+{}", rng.u64(..), rng.u32(..)),
                token,
                None,
                "test",
            );
            let payload: Vec<u8> = (0..rng.usize(..3000)).map(|_| rng.u8(..)).collect();
            let now = SystemTime::UNIX_EPOCH + Duration::from_millis(rng.u64(1_500_000_000_000..2_500_000_000_000));
            let signer = InvokeSigner::new(region);
            let target = InvokeSigner::target(&uri.parse().unwrap(), &headers).unwrap();
            // Twice: once deriving the day's key, once from the cache.
            for _ in 0..2 {
                assert_eq!(
                    signer.sign(&target, &credentials, &payload, now),
                    reference(uri, &headers, &credentials, region, &payload, now),
                    "{uri} {region}"
                );
            }
        }
    }

    #[test]
    fn a_new_day_or_secret_derives_a_new_key() {
        let signer = InvokeSigner::new("us-east-1");
        let uri = "https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/f/invocations";
        let target = InvokeSigner::target(&uri.parse().unwrap(), &[]).unwrap();
        let day = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for (secret, now) in
            [("a", day), ("a", day + Duration::from_secs(86_400)), ("b", day + Duration::from_secs(86_400))]
        {
            let credentials = Credentials::new("AKID", secret, None, None, "test");
            assert_eq!(
                signer.sign(&target, &credentials, b"{}", now),
                reference(uri, &[], &credentials, "us-east-1", b"{}", now)
            );
        }
    }

    #[test]
    fn refuses_targets_it_would_sign_differently() {
        for uri in [
            "https://h/a/../2015-03-31/functions/f/invocations",
            "https://h/./x/invocations",
            "https://h/x?y=1",
            "https://user@h/x",
        ] {
            assert!(InvokeSigner::target(&uri.parse().unwrap(), &[]).is_err(), "{uri}");
        }
    }
}
