//! Connecting to a back-end and applying its migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};

use crate::StoreError;

/// How long a caller waits for a pooled connection before the store reports it unavailable.
/// Short, because the API and the caches would rather fail fast (and serve stale data) than
/// queue behind a dead database.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections in a Postgres pool.
pub const PG_MAX_CONNECTIONS: u32 = 10;

/// Connections in a SQLite pool. SQLite has one writer at a time, and a deferred transaction
/// that upgrades to a write lock fails rather than waits when another writer got there first;
/// one connection serialises everything instead. Standalone's control traffic is small.
pub const SQLITE_MAX_CONNECTIONS: u32 = 1;

/// How long SQLite waits on a lock held by another process before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");
static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

#[derive(Clone, Debug)]
pub(crate) enum Backend {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// The control store: a cheap-to-clone handle on a connection pool.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) backend: Backend,
}

impl Store {
    /// Connects to `postgres://…` / `postgresql://…` or `sqlite://…` (add `?mode=rwc` to create
    /// the file) and, when `migrate` is set, applies the pending migrations.
    ///
    /// # Errors
    /// [`StoreError::UnsupportedUrl`] for another scheme; [`StoreError::Database`] when the
    /// database cannot be reached; [`StoreError::Migrate`] when a migration fails.
    pub async fn connect(url: &str, migrate: bool) -> Result<Self, StoreError> {
        let store = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(PG_MAX_CONNECTIONS)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect(url)
                .await?;
            Self::postgres(pool)
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .foreign_keys(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT);
            let pool = SqlitePoolOptions::new()
                .max_connections(SQLITE_MAX_CONNECTIONS)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await?;
            Self::sqlite(pool)
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        if migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// A store on an existing Postgres pool (e.g. one made by `#[sqlx::test]`).
    pub fn postgres(pool: PgPool) -> Self {
        Self {
            backend: Backend::Postgres(pool),
        }
    }

    /// A store on an existing SQLite pool. The pool must have foreign keys enabled (sqlx's
    /// default), or deleting a tenant would not cascade.
    pub fn sqlite(pool: SqlitePool) -> Self {
        Self {
            backend: Backend::Sqlite(pool),
        }
    }

    /// `"postgres"` or `"sqlite"`, for logs.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Postgres(_) => "postgres",
            Backend::Sqlite(_) => "sqlite",
        }
    }

    /// Applies the back-end's pending migrations (`migrations/postgres` or
    /// `migrations/sqlite`, embedded at build time).
    ///
    /// # Errors
    /// [`StoreError::Migrate`] when a migration fails or the applied ones were changed.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Postgres(pool) => PG_MIGRATOR.run(pool).await?,
            Backend::Sqlite(pool) => SQLITE_MIGRATOR.run(pool).await?,
        }
        Ok(())
    }

    /// Checks the database answers (`SELECT 1`), for readiness probes.
    ///
    /// # Errors
    /// [`StoreError::Database`] when it does not.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(drop)?);
        Ok(())
    }

    /// Closes the pool: every later call fails with [`StoreError::Database`]. Used at shutdown,
    /// and by tests that need a store that is down.
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await);
    }

    /// Rows each table holds for `tenant`, by table name (tests of tenant deletion).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    #[cfg(feature = "test-util")]
    pub async fn count_rows(
        &self,
        tenant: tenantmq_common::TenantId,
    ) -> Result<Vec<(&'static str, i64)>, StoreError> {
        use crate::db::DbId;
        let mut counts = Vec::new();
        for (table, column) in [
            ("tenants", "id"),
            ("api_keys", "tenant_id"),
            ("credentials", "tenant_id"),
            ("ca_certificates", "tenant_id"),
            ("acl_rules", "tenant_id"),
            ("usage_hourly", "tenant_id"),
        ] {
            // Table and column names come from the fixed list above, never from input.
            let sql = format!("SELECT COUNT(*) FROM {table} WHERE {column} = $1");
            let id = DbId(*tenant.as_uuid());
            let n: i64 = with_pool!(self, pool => {
                sqlx::query_scalar(&sql).bind(id).fetch_one(pool).await?
            });
            counts.push((table, n));
        }
        Ok(counts)
    }

    /// Runs raw SQL, for tests that inject faults (e.g. a trigger that makes an insert fail).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    #[cfg(feature = "test-util")]
    pub async fn execute_raw(&self, sql: &'static str) -> Result<(), StoreError> {
        with_pool!(self, pool => sqlx::raw_sql(sql).execute(pool).await.map(drop)?);
        Ok(())
    }
}
