//! Several host processes share one database: their snowflake ids must never
//! collide. Each `Store` here has its own connection pool, as a process would.

use std::collections::HashSet;

use trackbridge_host::store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_generators_on_one_database_never_collide() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("ids.db").display());
    // Migrate once, then open the other "processes".
    let first = Store::connect(&url).await.unwrap();
    let mut stores = vec![first];
    for _ in 0..3 {
        stores.push(Store::connect(&url).await.unwrap());
    }
    let mut tasks = Vec::new();
    for (p, store) in stores.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..40 {
                let org = store
                    .create_organization("Acme", &format!("acme-{p}-{n}"))
                    .await
                    .unwrap();
                ids.push(org.id);
            }
            ids
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().copied().collect();
    assert_eq!(all.len(), 160);
    assert_eq!(unique.len(), all.len(), "every id is distinct");
    assert!(
        all.iter().all(|id| (*id >> 48) == 16),
        "version segment is 16"
    );
}
