//! Key–value stores behind the State Manager: in memory (the default, nothing survives a
//! restart) and Redis (everything survives; several instances share one Redis by key prefix).
//!
//! Every Redis call is bounded by a short timeout so that a Redis that hangs or is gone
//! costs a request a few hundred milliseconds at most, never a stalled handler.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use deadpool_redis::redis;
use futures_util::future::BoxFuture;

/// A store failure: the store is unreachable or answered with an error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Connecting to or talking with Redis failed.
    #[error("redis: {0}")]
    Redis(String),
    /// Redis did not answer in time.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// Another instance holds the channel's lease: this one may not write.
    #[error("another instance holds the lease ({0}); this instance writes nothing")]
    Fenced(String),
}

/// Where state is persisted. Values are bytes: JSON text, or the uploaded bytes of an asset.
pub trait StateStore: Send + Sync + 'static {
    /// Short name for health reports (`memory`, `redis`).
    fn kind(&self) -> &'static str;
    /// Reads a key.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;
    /// Writes a key, with an optional time to live.
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Deletes a key (absent is fine).
    fn del<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Checks that the store answers.
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// A stored value and when it expires.
type Entry = (Vec<u8>, Option<Instant>);

/// In-process store: the default when no Redis URL is configured.
#[derive(Default)]
pub struct MemoryStore {
    map: Mutex<HashMap<String, Entry>>,
}

impl StateStore for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        let map = self.map.lock().expect("memory store lock");
        let value = map
            .get(key)
            .filter(|(_, expiry)| expiry.is_none_or(|e| e > Instant::now()))
            .map(|(v, _)| v.clone());
        Box::pin(std::future::ready(Ok(value)))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let expiry = ttl.map(|t| Instant::now() + t);
        self.map
            .lock()
            .expect("memory store lock")
            .insert(key.to_string(), (value.to_vec(), expiry));
        Box::pin(std::future::ready(Ok(())))
    }

    fn del<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.map.lock().expect("memory store lock").remove(key);
        Box::pin(std::future::ready(Ok(())))
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Redis through a deadpool connection pool.
///
/// Once [`RedisStore::fence`] names the lease this instance holds, every write is made by a
/// script that first checks the lease: while another instance holds it the write is refused
/// with [`StoreError::Fenced`], so a primary that lost the channel (frozen, or cut off from
/// Redis for longer than the lease) cannot overwrite what its successor wrote.
pub struct RedisStore {
    pool: deadpool_redis::Pool,
    timeout: Duration,
    fence: Mutex<Option<Fence>>,
}

/// The lease key and the value this instance holds it with.
#[derive(Debug, Clone)]
struct Fence {
    key: String,
    value: String,
}

/// A write under a fence: `KEYS[1]` the lease, `KEYS[2]` the key; `ARGV[1]` the holder's
/// value, `ARGV[2]` the value (`SET`; absent: `DEL`), `ARGV[3]` a TTL in ms. Refused while
/// another instance holds the lease; allowed while nobody does (a lapsed lease of a live
/// instance is taken back within a second, and nobody else is writing).
const FENCED_WRITE: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return redis.error_reply('FENCED ' .. holder)
end
if ARGV[2] == nil then
  redis.call('DEL', KEYS[2])
  return 'OK'
end
if ARGV[3] then
  return redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
end
return redis.call('SET', KEYS[2], ARGV[2])
";

impl RedisStore {
    /// Creates the pool; connects lazily, so an unreachable Redis is not an error here.
    pub fn new(url: &str) -> Result<Self, StoreError> {
        let timeout = Duration::from_millis(800);
        let mut cfg = deadpool_redis::Config::from_url(url);
        let mut pool_cfg = deadpool_redis::PoolConfig::new(8);
        pool_cfg.timeouts.wait = Some(timeout);
        pool_cfg.timeouts.create = Some(timeout);
        pool_cfg.timeouts.recycle = Some(timeout);
        cfg.pool = Some(pool_cfg);
        let pool = cfg
            .create_pool(Some(deadpool_redis::Runtime::Tokio1))
            .map_err(|e| StoreError::Redis(e.to_string()))?;
        Ok(Self {
            pool,
            timeout,
            fence: Mutex::new(None),
        })
    }

    /// Makes every later write conditional on `key` holding `value` or nothing.
    pub fn fence(&self, key: &str, value: &str) {
        *self.fence.lock().expect("fence lock") = Some(Fence {
            key: key.into(),
            value: value.into(),
        });
    }

    /// Runs a Lua script with `keys` and `args`.
    pub async fn eval<T: redis::FromRedisValue>(
        &self,
        script: &str,
        keys: &[&str],
        args: &[&[u8]],
    ) -> Result<T, StoreError> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script).arg(keys.len()).arg(keys);
        for a in args {
            cmd.arg(*a);
        }
        self.run(cmd).await
    }

    /// A write: plain, or through [`FENCED_WRITE`] once fenced.
    async fn write(
        &self,
        key: &str,
        value: Option<&[u8]>,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        let fence = self.fence.lock().expect("fence lock").clone();
        let ttl = ttl.map(|t| (t.as_millis() as u64).max(1).to_string());
        let Some(fence) = fence else {
            let mut cmd = redis::cmd(if value.is_some() { "SET" } else { "DEL" });
            cmd.arg(key);
            if let Some(v) = value {
                cmd.arg(v);
            }
            if let Some(ttl) = &ttl {
                cmd.arg("PX").arg(ttl);
            }
            let _: redis::Value = self.run(cmd).await?;
            return Ok(());
        };
        let mut args: Vec<&[u8]> = vec![fence.value.as_bytes()];
        args.extend(value);
        args.extend(ttl.as_ref().map(String::as_bytes));
        match self
            .eval::<redis::Value>(FENCED_WRITE, &[&fence.key, key], &args)
            .await
        {
            Err(StoreError::Redis(e)) if e.contains("FENCED") => {
                let holder = e.split("FENCED").nth(1).unwrap_or("").trim();
                Err(StoreError::Fenced(match holder.split_once(' ') {
                    Some((epoch, name)) => format!("{name}, epoch {epoch}"),
                    None => holder.to_string(),
                }))
            }
            other => other.map(drop),
        }
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, StoreError> {
        let fut = async {
            let mut conn = self
                .pool
                .get()
                .await
                .map_err(|e| StoreError::Redis(e.to_string()))?;
            cmd.query_async::<T>(&mut conn)
                .await
                .map_err(|e| StoreError::Redis(e.to_string()))
        };
        tokio::time::timeout(self.timeout * 2, fut)
            .await
            .map_err(|_| StoreError::Timeout(self.timeout * 2))?
    }
}

impl StateStore for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        Box::pin(self.run(cmd))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.write(key, Some(value), ttl))
    }

    fn del<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.write(key, None, None))
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async {
            let _: String = self.run(redis::cmd("PING")).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_round_trip_and_ttl() {
        let s = MemoryStore::default();
        s.set("a", b"1", None).await.unwrap();
        s.set("b", b"2", Some(Duration::from_millis(1)))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(s.get("a").await.unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(s.get("b").await.unwrap(), None);
    }
}
