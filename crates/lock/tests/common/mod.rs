//! The harness both conformance suites share: a store under test on either
//! adapter, and the macro that runs each case on both.

use std::time::Duration;

use baton_lock::{LockClient, LockOptions, LockStore, MemoryStore};
use baton_testkit::TestTable;

/// A store under test: how to make a fresh one, and how to let its clock
/// reach a lease end.
pub trait Subject: LockStore {
    /// A new, empty store deciding with `options`.
    async fn fresh(options: LockOptions) -> Self;

    /// Returns once the store's clock reads `epoch_secs` or later.
    async fn reach(&self, epoch_secs: u64);

    /// Returns once the store's clock reads `epoch_ms` milliseconds or later.
    async fn reach_ms(&self, epoch_ms: u64);

    /// The store's clock in whole epoch seconds.
    fn now_secs(&self) -> u64 {
        self.now_millis() / 1000
    }
}

impl Subject for LockClient {
    async fn fresh(options: LockOptions) -> Self {
        TestTable::create().await.client(options)
    }

    /// DynamoDB decides by the wall clock: wait for it, checking again after
    /// each sleep in case the timer fires early.
    async fn reach(&self, epoch_secs: u64) {
        self.reach_ms(epoch_secs * 1000).await;
    }

    async fn reach_ms(&self, target: u64) {
        loop {
            let now = self.now_millis();
            if now >= target {
                return;
            }
            tokio::time::sleep(Duration::from_millis(target - now)).await;
        }
    }
}

impl Subject for MemoryStore {
    async fn reach_ms(&self, epoch_ms: u64) {
        let now = self.now_millis();
        if epoch_ms > now {
            self.advance_clock(Duration::from_millis(epoch_ms - now));
        }
    }

    async fn fresh(options: LockOptions) -> Self {
        MemoryStore::with_options(options)
    }

    async fn reach(&self, epoch_secs: u64) {
        let (now, target) = (self.now_millis(), epoch_secs * 1000);
        if target > now {
            self.advance_clock(Duration::from_millis(target - now));
        }
        assert!(self.now_millis() >= target);
    }
}

/// Runs every listed case on both adapters; `case with OPTIONS` gives the
/// store other options than [`fast_options`].
#[macro_export]
macro_rules! conformance {
    ($($case:ident $(with $options:expr)?),* $(,)?) => {
        mod dynamodb {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let store = <::baton_lock::LockClient as Subject>::fresh(options!($($options)?)).await;
                    super::$case(store).await;
                }
            )*
        }
        mod memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let store = <::baton_lock::MemoryStore as Subject>::fresh(options!($($options)?)).await;
                    super::$case(store).await;
                }
            )*
        }
    };
}

#[macro_export]
macro_rules! options {
    () => {
        ::baton_testkit::fast_options()
    };
    ($options:expr) => {
        $options
    };
}
