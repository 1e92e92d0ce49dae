//! Test helpers for this crate and the crates built on it (feature `test-util`): fresh stores
//! and a macro that runs one test body on both back-ends.

use crate::Store;

/// A migrated store on a fresh Postgres database (as made by `#[sqlx::test]`).
///
/// # Panics
/// When the migrations fail — a test set-up error.
pub async fn postgres_store(pool: sqlx::PgPool) -> Store {
    let store = Store::postgres(pool);
    store.migrate().await.expect("postgres migrations");
    store
}

/// A migrated store on a fresh in-memory SQLite database.
///
/// # Panics
/// When SQLite cannot be opened or migrated — a test set-up error.
pub async fn sqlite_store() -> Store {
    Store::connect("sqlite::memory:", true)
        .await
        .expect("sqlite in-memory store")
}

/// Expands `async fn name(store) { body }` into a module `name` with two tests, `postgres`
/// (a fresh database from `#[sqlx::test]`, so `DATABASE_URL` must be set) and `sqlite`
/// (in memory), each running `body` with `store` bound to a migrated [`Store`]. The calling
/// crate needs `sqlx` and `tokio` as (dev-)dependencies.
#[macro_export]
macro_rules! store_test {
    ($(#[$meta:meta])* async fn $name:ident($store:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[::sqlx::test(migrations = false)]
            async fn postgres(pool: ::sqlx::PgPool) {
                let $store = $crate::test_util::postgres_store(pool).await;
                $body
            }

            #[::tokio::test]
            async fn sqlite() {
                let $store = $crate::test_util::sqlite_store().await;
                $body
            }
        }
    };
}
