//! Pins a glommio 0.9 failure and our workaround (its own test binary, so its own process:
//! glommio's per-device IOPOLL decision is made once per process and cannot be reset).
//!
//! glommio decides whether a block device supports the IOPOLL ring by reading the first DMA
//! file opened on it. An empty file answers that read at EOF without reaching the driver, the
//! probe "succeeds", and on devices without poll queues (virtio here, most cloud disks) every
//! later DMA read fails with EOPNOTSUPP. `ringlet_io` primes each device with a non-empty file
//! before its first open (`rt::prime_device`). This test opens a log first (priming), *then*
//! opens an empty DMA file the way the failure needs, and checks that reads still work — if
//! the priming were removed or ran too late, this device would fail the read.

mod common;

use common::{batch, run};
use glommio::io::DmaFile;
use ringlet_io::{LogConfig, PartitionLog};

#[test]
fn an_empty_dma_file_opened_after_priming_does_not_break_reads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    run(async move {
        let log = PartitionLog::open(&path.join("p-0"), LogConfig::default())
            .await
            .expect("open log (primes the device)");
        let empty = path.join("empty.bin");
        std::fs::write(&empty, b"").expect("create empty file");
        let file = DmaFile::open(&empty).await.expect("open empty DMA file");
        file.close().await.expect("close empty DMA file");

        let info = log
            .append(batch(10, 100, 1_000, 7), 0, None)
            .await
            .expect("append");
        log.wait_durable(info.last_offset).await.expect("durable");
        log.close().await.expect("close");
        let reopened = PartitionLog::open(&path.join("p-0"), LogConfig::default())
            .await
            .expect("reopen");
        let read = reopened
            .read(0, 1 << 20)
            .await
            .expect("cold DMA read after the empty open");
        assert_eq!(
            read.next_offset,
            info.last_offset + 1,
            "the whole batch came back"
        );
        reopened.close().await.expect("close");
    });
}
