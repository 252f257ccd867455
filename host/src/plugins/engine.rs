//! One wasmtime engine for every plugin.

use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; a call's CPU deadline is counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Plugin instances alive at once. Calls beyond this wait for a slot
/// ([`super::Runtime::slots`]) rather than fail in the allocator.
pub const MAX_INSTANCES: u32 = 100;

/// Dirty bytes of a linear memory reset in place (kept resident) when its slot
/// is given back; dirty pages beyond that are decommitted. Per warm slot, so
/// with at most `MAX_INSTANCES` of them this bounds what stays resident.
const KEEP_RESIDENT: usize = 1 << 20;
const TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// Build the engine: component model, epoch interruption for CPU deadlines, and
/// the pooling allocator sized for a webhook server (tens of plugins, not
/// thousands of instances). Falls back to on-demand allocation when the machine
/// cannot reserve the pool's virtual memory.
pub fn build(memory_cap: usize) -> wasmtime::Result<Engine> {
    let mut config = base_config();
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(MAX_INSTANCES)
        .total_core_instances(1000)
        .max_core_instances_per_component(50)
        .total_memories(200)
        .max_memories_per_component(2)
        .total_tables(400)
        .max_tables_per_component(8)
        .total_stacks(100)
        .max_memory_size(memory_cap);
    // A slot given back is reset by copying back only the pages the call
    // dirtied (found with PAGEMAP_SCAN, Linux 6.7+) instead of an `madvise`
    // that unmaps them: the next call on the slot then takes no page faults,
    // and the process no TLB shootdowns. Without the ioctl, keeping memory
    // resident would mean a memset of all of it per call, dearer than the
    // faults it saves: there the default (`madvise`) stays.
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        pool.pagemap_scan(Enabled::Yes)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(TABLE_KEEP_RESIDENT);
    }
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = match Engine::new(&config) {
        Ok(engine) => engine,
        Err(err) => {
            tracing::warn!(error = %err, "pooling allocator unavailable; using on-demand instance allocation");
            Engine::new(&base_config())?
        }
    };
    spawn_epoch_ticker(&engine);
    Ok(engine)
}

fn base_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true).epoch_interruption(true);
    // The contracts have no async functions, streams or futures. Without
    // this, every call goes through the component-model concurrency machinery
    // (a task, an event loop) instead of straight onto its fiber.
    config.concurrency_support(false);
    config
}

/// Advance the epoch every tick for as long as the engine lives.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread");
}
