//! Who may do what: API tokens with roles, and the limit on failed authentications.
//!
//! Tokens come from the config file (`[[auth.tokens]] name, role, sha256`: only the SHA-256
//! of a token is kept) and from the legacy `--api-token`, which means `admin`. With no token
//! configured at all, access is open: every caller is `admin`, as before tokens existed
//! (the server refuses a non-loopback bind in that case unless `--insecure` is given).
//!
//! A token is compared by its digest in constant time. A presented token that matches none
//! counts against the client's address; after [`FAILURES_PER_WINDOW`] of them (or as many
//! as configured, [`Access::with_failure_limit`]) within
//! [`FAILURE_WINDOW`], every request from that address that presents a token is answered
//! 429 until the window ends, so a token cannot be guessed at network speed. This module
//! knows nothing of HTTP: the router decides which role a route needs (`api::ROUTE_ROLES`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a caller may do; each role may do everything the ones before it may.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Every GET, the WebSocket, the console read-only.
    Viewer,
    /// What a viewer may, and stream start/stop/pause/resume, the scene and its layers,
    /// named scenes, inputs on and off, audio levels, recordings, asset and media uploads.
    Operator,
    /// What an operator may, and the stream config and destinations, template uploads,
    /// swaps, rollbacks and deletes, inputs create and delete, asset and media deletes.
    Admin,
}

impl Role {
    /// Every role, least first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// The role's name, as in the config file and the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[[auth.tokens]]` entry of the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Who holds the token (shown in the log and by `GET /api/me`, never the token).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The token's SHA-256, 64 hex digits.
    pub sha256: String,
}

/// An identified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name (`api-token` for the legacy token, `anonymous` when access is open).
    pub name: Arc<str>,
    /// What the caller may do.
    pub role: Role,
}

/// Who presented what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Access is restricted and no token was presented.
    Anonymous,
    /// A known token, or anyone when access is open.
    Known(Caller),
    /// A token that matches none.
    Rejected,
}

/// Failed authentications an address may make within [`FAILURE_WINDOW`], by default.
pub const FAILURES_PER_WINDOW: u32 = 10;
/// The window of [`FAILURES_PER_WINDOW`].
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Addresses whose failures are remembered at once; beyond it the oldest are forgotten.
const MAX_TRACKED: usize = 4096;

/// The configured tokens, and the failures per client address.
#[derive(Debug)]
pub struct Access {
    /// `(name, role, SHA-256)`; empty: access is open.
    tokens: Vec<(Arc<str>, Role, [u8; 32])>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
    /// Failed authentications an address may make within [`FAILURE_WINDOW`].
    failure_limit: u32,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    since: Instant,
    count: u32,
}

/// A config error in the tokens; the message names the entry, never a token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct AccessError(String);

/// The SHA-256 of `token`, as 64 lowercase hex digits (what the config file stores).
pub fn digest_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim().as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let digit = |c: u8| (c as char).to_digit(16);
        *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

impl Access {
    /// Open access: everyone is `admin`.
    pub fn open() -> Self {
        Self {
            tokens: Vec::new(),
            failures: Mutex::default(),
            failure_limit: FAILURES_PER_WINDOW,
        }
    }

    /// Access by the legacy token (`admin`, named `api-token`) and the config file's tokens.
    pub fn new(legacy: Option<&str>, entries: &[TokenEntry]) -> Result<Self, AccessError> {
        let mut tokens: Vec<(Arc<str>, Role, [u8; 32])> = Vec::new();
        if let Some(t) = legacy {
            tokens.push((
                "api-token".into(),
                Role::Admin,
                Sha256::digest(t.as_bytes()).into(),
            ));
        }
        for (i, e) in entries.iter().enumerate() {
            let at = format!("auth.tokens[{i}]");
            let name = e.name.trim();
            if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
                return Err(AccessError(format!(
                    "{at}.name: must be 1 to 64 printable characters"
                )));
            }
            let digest = parse_digest(&e.sha256).ok_or_else(|| {
                AccessError(format!(
                    "{at}.sha256: must be 64 hex digits (the SHA-256 of the token; \
                     `stream-manager token new` prints one)"
                ))
            })?;
            if let Some((other, _, _)) = tokens.iter().find(|(n, _, _)| &**n == name) {
                return Err(AccessError(format!(
                    "{at}.name: {other:?} is already the name of another token"
                )));
            }
            if let Some((other, _, _)) = tokens.iter().find(|(_, _, d)| *d == digest) {
                return Err(AccessError(format!(
                    "{at}.sha256: the same token as {other:?}"
                )));
            }
            tokens.push((name.into(), e.role, digest));
        }
        Ok(Self {
            tokens,
            failures: Mutex::default(),
            failure_limit: FAILURES_PER_WINDOW,
        })
    }

    /// The same access, allowing `limit` failed authentications per address and minute.
    pub fn with_failure_limit(mut self, limit: u32) -> Self {
        self.failure_limit = limit.max(1);
        self
    }

    /// Failed authentications an address may make within [`FAILURE_WINDOW`].
    pub fn failure_limit(&self) -> u32 {
        self.failure_limit
    }

    /// Whether any token is configured (otherwise everyone is `admin`).
    pub fn restricted(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// Who presents `presented`. Compares against every token in constant time, so the
    /// answer's timing tells nothing of which token came close.
    pub fn identify(&self, presented: Option<&str>) -> Identity {
        if !self.restricted() {
            return Identity::Known(Caller {
                name: "anonymous".into(),
                role: Role::Admin,
            });
        }
        let Some(presented) = presented else {
            return Identity::Anonymous;
        };
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (name, role, d) in &self.tokens {
            if bool::from(d.ct_eq(&digest)) {
                found = Some(Caller {
                    name: name.clone(),
                    role: *role,
                });
            }
        }
        found.map_or(Identity::Rejected, Identity::Known)
    }

    /// How long `addr` must still wait before presenting a token again, if it is blocked.
    pub fn blocked(&self, addr: IpAddr, now: Instant) -> Option<Duration> {
        let failures = self.failures.lock().expect("failures lock");
        let f = failures.get(&addr)?;
        let end = f.since + FAILURE_WINDOW;
        (f.count >= self.failure_limit && end > now).then(|| end - now)
    }

    /// Counts a failed authentication from `addr`. Returns true when this one used up the
    /// address's allowance (the moment to log, once per burst).
    pub fn record_failure(&self, addr: IpAddr, now: Instant) -> bool {
        let mut failures = self.failures.lock().expect("failures lock");
        if failures.len() >= MAX_TRACKED && !failures.contains_key(&addr) {
            failures.retain(|_, f| f.since + FAILURE_WINDOW > now);
            if failures.len() >= MAX_TRACKED
                && let Some(oldest) = failures
                    .iter()
                    .min_by_key(|(_, f)| f.since)
                    .map(|(a, _)| *a)
            {
                failures.remove(&oldest);
            }
        }
        let f = failures.entry(addr).or_insert(Failures {
            since: now,
            count: 0,
        });
        if f.since + FAILURE_WINDOW <= now {
            *f = Failures {
                since: now,
                count: 0,
            };
        }
        f.count = f.count.saturating_add(1);
        f.count == self.failure_limit
    }
}

/// A new random token: 32 bytes from the operating system, base64url without padding
/// (43 characters, 256 bits).
pub fn new_token() -> std::io::Result<String> {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The `[[auth.tokens]]` lines that configure `token` for `name` with `role`.
pub fn config_entry(name: &str, role: Role, token: &str) -> String {
    format!(
        "[[auth.tokens]]\nname = {}\nrole = \"{role}\"\nsha256 = \"{}\"\n",
        toml::Value::String(name.to_string()),
        digest_hex(token)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, role: Role, token: &str) -> TokenEntry {
        TokenEntry {
            name: name.into(),
            role,
            sha256: digest_hex(token),
        }
    }

    #[test]
    fn tokens_are_known_by_their_digest_only() {
        let access = Access::new(
            Some("legacy"),
            &[
                entry("wall", Role::Viewer, "v-token"),
                entry("desk", Role::Operator, "o-token"),
            ],
        )
        .unwrap();
        let known = |t| match access.identify(Some(t)) {
            Identity::Known(c) => Some((c.name.to_string(), c.role)),
            _ => None,
        };
        assert_eq!(known("v-token"), Some(("wall".into(), Role::Viewer)));
        assert_eq!(known("o-token"), Some(("desk".into(), Role::Operator)));
        assert_eq!(known("legacy"), Some(("api-token".into(), Role::Admin)));
        assert_eq!(access.identify(Some("v-token ")), Identity::Rejected);
        assert_eq!(access.identify(Some("")), Identity::Rejected);
        assert_eq!(access.identify(None), Identity::Anonymous);
        // Open access: everyone is admin, whatever they present.
        let open = Access::open();
        assert!(matches!(
            open.identify(Some("x")),
            Identity::Known(Caller {
                role: Role::Admin,
                ..
            })
        ));
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
    }

    #[test]
    fn bad_entries_name_the_entry_and_never_the_token() {
        let bad = |e: TokenEntry| Access::new(None, &[e]).unwrap_err().to_string();
        let e = bad(TokenEntry {
            name: "a".into(),
            role: Role::Admin,
            sha256: "not-hex".into(),
        });
        assert!(e.starts_with("auth.tokens[0].sha256"), "{e}");
        let e = bad(TokenEntry {
            name: " ".into(),
            role: Role::Admin,
            sha256: digest_hex("t"),
        });
        assert!(e.starts_with("auth.tokens[0].name"), "{e}");
        let e = Access::new(Some("t"), &[entry("b", Role::Viewer, "t")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("api-token") && !e.contains(&digest_hex("t")),
            "{e}"
        );
        let e = Access::new(
            None,
            &[entry("a", Role::Viewer, "1"), entry("a", Role::Viewer, "2")],
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("auth.tokens[1].name"), "{e}");
        // Upper-case hex is a digest too.
        let upper = TokenEntry {
            name: "u".into(),
            role: Role::Viewer,
            sha256: digest_hex("up").to_uppercase(),
        };
        let access = Access::new(None, &[upper]).unwrap();
        assert!(matches!(access.identify(Some("up")), Identity::Known(_)));
    }

    #[test]
    fn failures_block_an_address_for_the_rest_of_its_window() {
        let access = Access::new(Some("t"), &[]).unwrap();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        let mut reached = 0;
        for i in 0..FAILURES_PER_WINDOW {
            assert_eq!(access.blocked(a, t0), None, "blocked after {i}");
            reached += u32::from(access.record_failure(a, t0 + Duration::from_secs(1)));
        }
        assert_eq!(reached, 1, "the burst is reported once");
        let wait = access.blocked(a, t0 + Duration::from_secs(2)).unwrap();
        assert_eq!(wait, Duration::from_secs(59));
        assert!(!access.record_failure(a, t0 + Duration::from_secs(3)));
        assert_eq!(
            access.blocked(b, t0),
            None,
            "other addresses are not blocked"
        );
        assert_eq!(access.blocked(a, t0 + Duration::from_secs(61)), None);
        // A new window starts from nothing.
        assert!(!access.record_failure(a, t0 + Duration::from_secs(62)));
        assert_eq!(access.blocked(a, t0 + Duration::from_secs(62)), None);
    }

    #[test]
    fn the_failure_table_is_bounded() {
        let access = Access::new(Some("t"), &[]).unwrap();
        let now = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 100) {
            access.record_failure(IpAddr::from(i.to_be_bytes()), now);
        }
        assert!(access.failures.lock().unwrap().len() <= MAX_TRACKED);
    }

    #[test]
    fn new_tokens_are_random_and_their_config_line_parses() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        #[derive(Deserialize)]
        struct File {
            auth: Auth,
        }
        #[derive(Deserialize)]
        struct Auth {
            tokens: Vec<TokenEntry>,
        }
        let text = config_entry("studio \"B\"", Role::Operator, &a);
        let file: File = toml::from_str(&text).unwrap();
        assert_eq!(
            file.auth.tokens,
            vec![entry("studio \"B\"", Role::Operator, &a)]
        );
        assert!(!text.contains(&a));
    }
}
