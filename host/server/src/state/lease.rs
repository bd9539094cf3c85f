//! The channel's lease: which of the instances that share one Redis and key prefix is the
//! primary (renders, pushes, answers the API) and which are standbys.
//!
//! `<prefix>lease` holds `"<epoch> <instance name>"` with a TTL of [`LEASE_TTL`]; the
//! primary renews it every [`RENEW_EVERY`]. Each acquisition raises the epoch
//! (`<prefix>lease:epoch`, never lowered, even by a store that lost its data: the acquirer
//! passes the highest epoch it has seen). A standby polls the lease every [`POLL_EVERY`] and
//! takes it once it lapsed; the instance that takes it then loads everything from the store,
//! as a restarted process does. An instance finds its own name in the lease only when it was
//! restarted before the lease lapsed; it takes the lease back at once.
//!
//! Fencing: the holder's store refuses writes while another instance holds the lease
//! ([`super::store::RedisStore::fence`]), and a primary that finds another holder when it
//! renews stops at once ([`Lease::keep`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;
use utoipa::ToSchema;

use super::store::{RedisStore, StateStore, StoreError};

/// How long the lease lives without renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(3);
/// How often the primary renews the lease.
pub const RENEW_EVERY: Duration = Duration::from_secs(1);
/// How often a standby looks at the lease.
pub const POLL_EVERY: Duration = Duration::from_millis(250);
/// Key of the lease (after the prefix).
pub const KEY_LEASE: &str = "lease";
/// Key of the highest epoch given out (after the prefix).
pub const KEY_LEASE_EPOCH: &str = "lease:epoch";

/// Takes the lease when nobody holds it or when it holds this instance's own name.
/// `KEYS`: lease, epoch; `ARGV`: name, TTL in ms, the highest epoch the caller has seen.
/// Returns `{1, value}` when taken, `{0, holder}` when another instance holds it.
const ACQUIRE: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder then
  local space = string.find(holder, ' ', 1, true)
  if not space or string.sub(holder, space + 1) ~= ARGV[1] then
    return {0, holder}
  end
end
local epoch = math.max(tonumber(redis.call('GET', KEYS[2]) or '0') or 0, tonumber(ARGV[3]) or 0) + 1
redis.call('SET', KEYS[2], string.format('%d', epoch))
local value = string.format('%d', epoch) .. ' ' .. ARGV[1]
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return {1, value}
";

/// Renews the lease if the caller holds it. `KEYS`: lease; `ARGV`: the held value, TTL in
/// ms. Returns `{1, value}` renewed, `{0, holder}` held by another, `{2, ''}` nobody holds it.
const RENEW: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, holder}
end
if holder then
  return {0, holder}
end
return {2, ''}
";

/// Primary or standby.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InstanceRole {
    /// Holds the lease: renders, pushes, answers the API.
    #[default]
    Primary,
    /// Follows the primary's lease and takes the channel over when it lapses.
    Standby,
}

impl InstanceRole {
    /// `primary` or `standby`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Standby => "standby",
        }
    }
}

/// This instance's part in the channel, for `/api/health` and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatus {
    /// This instance's name (`--instance-name`; default `<host name>:<http port>`).
    pub name: String,
    /// `primary` or `standby`.
    pub role: InstanceRole,
    /// The lease epoch this instance holds (primary) or last saw held (standby); absent
    /// without Redis (no lease) or before the lease was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// A standby: the instance holding the lease, when one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
}

impl InstanceStatus {
    /// A primary without a lease (no Redis: nothing to share the channel with).
    pub fn alone(name: &str) -> Self {
        Self {
            name: name.into(),
            role: InstanceRole::Primary,
            epoch: None,
            primary: None,
        }
    }
}

/// A lease value: `(epoch, holder name)`.
pub fn parse_holder(value: &str) -> Option<(u64, &str)> {
    let (epoch, name) = value.split_once(' ')?;
    Some((epoch.parse().ok()?, name))
}

/// The lease of one channel (one Redis and prefix), seen from one instance.
pub struct Lease {
    store: Arc<RedisStore>,
    key: String,
    epoch_key: String,
    marker_key: String,
    name: String,
    held: Mutex<Option<String>>,
    status: watch::Sender<InstanceStatus>,
    reachable: Arc<AtomicBool>,
}

/// What a look at the lease found.
enum Look {
    /// Another instance holds it.
    Other,
    /// Nobody holds it, or this instance's name does (a restart).
    Takeable,
}

impl Lease {
    /// The lease under `prefix` for the instance `name`, starting as a standby that has
    /// not looked yet. `marker_key` is the store's marker (see [`super::KEY_INSTANCE`]).
    pub fn new(store: Arc<RedisStore>, prefix: &str, name: &str, marker_key: &str) -> Self {
        let status = InstanceStatus {
            role: InstanceRole::Standby,
            ..InstanceStatus::alone(name)
        };
        Self {
            store,
            key: format!("{prefix}{KEY_LEASE}"),
            epoch_key: format!("{prefix}{KEY_LEASE_EPOCH}"),
            marker_key: format!("{prefix}{marker_key}"),
            name: name.into(),
            held: Mutex::new(None),
            status: watch::channel(status).0,
            reachable: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Whether the store answered the last look at the lease.
    pub fn reachable(&self) -> Arc<AtomicBool> {
        self.reachable.clone()
    }

    /// Serves as primary without the lease: the store could not be reached at start. The
    /// lease is taken by [`Lease::keep`] once it answers.
    pub fn assume_primary(&self) {
        self.status.send_modify(|s| s.role = InstanceRole::Primary);
    }

    /// This instance's status, kept current.
    pub fn status(&self) -> watch::Receiver<InstanceStatus> {
        self.status.subscribe()
    }

    /// Takes the lease if nobody else holds it. On success every later write of the store
    /// is fenced by it.
    pub async fn try_acquire(&self) -> Result<bool, StoreError> {
        let seen = self.status.borrow().epoch.unwrap_or(0).to_string();
        let ttl = LEASE_TTL.as_millis().to_string();
        let (won, value): (i64, String) = self
            .store
            .eval(
                ACQUIRE,
                &[&self.key, &self.epoch_key],
                &[self.name.as_bytes(), ttl.as_bytes(), seen.as_bytes()],
            )
            .await?;
        let (epoch, holder) = parse_holder(&value).unwrap_or((0, &value));
        if won == 1 {
            self.store.fence(&self.key, &value);
            *self.held.lock().expect("lease lock") = Some(value.clone());
            self.status.send_modify(|s| {
                s.role = InstanceRole::Primary;
                s.epoch = Some(epoch);
                s.primary = None;
            });
            Ok(true)
        } else {
            self.follow(epoch, holder);
            Ok(false)
        }
    }

    fn follow(&self, epoch: u64, holder: &str) {
        self.status.send_modify(|s| {
            s.role = InstanceRole::Standby;
            s.epoch = Some(epoch);
            s.primary = Some(holder.into());
        });
    }

    /// Reads the lease into this instance's status, without taking it.
    pub async fn refresh(&self) {
        let _ = self.look().await;
    }

    /// Looks at the lease without taking it.
    async fn look(&self) -> Result<Look, StoreError> {
        let value = self.store.get(&self.key).await;
        self.reachable.store(value.is_ok(), Ordering::Relaxed);
        let value = value?;
        let value = value.map(|v| String::from_utf8_lossy(&v).into_owned());
        match value.as_deref().and_then(parse_holder) {
            Some((_, name)) if name == self.name => Ok(Look::Takeable),
            Some((epoch, name)) => {
                self.follow(epoch, name);
                Ok(Look::Other)
            }
            None if value.is_some() => Ok(Look::Other),
            None => {
                self.status.send_modify(|s| s.primary = None);
                Ok(Look::Takeable)
            }
        }
    }

    /// A standby's wait: returns once this instance holds the lease. `patient` (started with
    /// `--standby`): leaves a free lease for one [`LEASE_TTL`] after start to an instance
    /// started as primary at the same time. A lease that vanished together with the store's
    /// marker (a store that lost its data while the primary lives) is left for two renewal
    /// periods, for the primary to take it back.
    pub async fn acquire_when_free(&self, patient: bool) {
        let started = Instant::now();
        let mut saw_holder = false;
        let mut free_since: Option<Instant> = None;
        let mut unreachable = false;
        loop {
            match self.look().await {
                Ok(Look::Other) => {
                    saw_holder = true;
                    free_since = None;
                }
                Ok(Look::Takeable) => {
                    let since = *free_since.get_or_insert_with(Instant::now);
                    let emptied =
                        saw_holder && matches!(self.store.get(&self.marker_key).await, Ok(None));
                    let wait_free = if emptied {
                        RENEW_EVERY * 2
                    } else {
                        Duration::ZERO
                    };
                    let polite = !patient || started.elapsed() >= LEASE_TTL;
                    if polite && since.elapsed() >= wait_free {
                        match self.try_acquire().await {
                            Ok(true) => return,
                            Ok(false) => free_since = None,
                            Err(e) => tracing::debug!(error = %e, "lease not taken"),
                        }
                    }
                }
                Err(e) => {
                    if !unreachable {
                        tracing::warn!(error = %e, "standby: the lease cannot be read; waiting");
                    }
                    unreachable = true;
                    tokio::time::sleep(POLL_EVERY).await;
                    continue;
                }
            }
            if std::mem::take(&mut unreachable) {
                tracing::info!("standby: the lease can be read again");
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// The primary's renewal loop; runs until the process ends. A lease that lapsed (Redis
    /// was unreachable from here for longer than its TTL, or lost its data) is taken again
    /// with a new epoch when nobody else took it; when another instance holds it, `lost` is
    /// called with the holder (it must stop this instance at once).
    pub async fn keep(self: Arc<Self>, lost: impl Fn(&str)) {
        let mut tick = tokio::time::interval(RENEW_EVERY);
        let ttl = LEASE_TTL.as_millis().to_string();
        let mut failing = false;
        loop {
            tick.tick().await;
            let held = self.held.lock().expect("lease lock").clone();
            let Some(held) = held else {
                // Started while Redis was unreachable: take it when it answers.
                match self.try_acquire().await {
                    Ok(true) => tracing::info!(epoch = ?self.status.borrow().epoch, "lease taken"),
                    Ok(false) => lost(self.status.borrow().primary.as_deref().unwrap_or("")),
                    Err(_) => {}
                }
                continue;
            };
            let renewed: Result<(i64, String), _> = self
                .store
                .eval(RENEW, &[&self.key], &[held.as_bytes(), ttl.as_bytes()])
                .await;
            match renewed {
                Ok((1, _)) => {
                    if std::mem::take(&mut failing) {
                        tracing::info!("lease renewed again");
                    }
                }
                Ok((0, holder)) => lost(&holder),
                Ok(_) => match self.try_acquire().await {
                    Ok(true) => tracing::warn!(
                        epoch = ?self.status.borrow().epoch,
                        "the lease had lapsed and nobody took it; taken again"
                    ),
                    Ok(false) => lost(self.status.borrow().primary.as_deref().unwrap_or("")),
                    Err(e) => {
                        tracing::warn!(error = %e, "the lapsed lease could not be taken again")
                    }
                },
                Err(e) => {
                    if !failing {
                        tracing::warn!(
                            error = %e,
                            "the lease cannot be renewed; streaming on (a standby that reaches \
                             Redis takes the channel once the lease lapses, and this instance \
                             then stops)"
                        );
                    }
                    failing = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_values_parse() {
        assert_eq!(parse_holder("7 host:4200"), Some((7, "host:4200")));
        assert_eq!(
            parse_holder("7 a name with spaces"),
            Some((7, "a name with spaces"))
        );
        assert_eq!(parse_holder("x host"), None);
        assert_eq!(parse_holder("7"), None);
    }

    #[test]
    fn status_serializes_as_documented() {
        let s = InstanceStatus {
            name: "a:1".into(),
            role: InstanceRole::Standby,
            epoch: Some(3),
            primary: Some("b:2".into()),
        };
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::json!({"name": "a:1", "role": "standby", "epoch": 3, "primary": "b:2"})
        );
        let alone = serde_json::to_value(InstanceStatus::alone("a:1")).unwrap();
        assert_eq!(alone, serde_json::json!({"name": "a:1", "role": "primary"}));
    }
}
