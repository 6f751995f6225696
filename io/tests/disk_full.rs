//! Disk full, for real: the log lives on a small loop-mounted ext4 file system (needs root and
//! a loop device; set RINGLET_NO_MOUNT=1 to skip where that is impossible). Appends fill it
//! until one fails with ENOSPC; the log must stay consistent and readable, keep what it had
//! acknowledged, and accept appends again once space is freed.

mod common;

use common::{batch, read_all, run, stamped};
use ringlet_io::{LogConfig, PartitionLog};
use std::path::{Path, PathBuf};
use std::process::Command;

struct SmallFs {
    mount_point: PathBuf,
    _root: tempfile::TempDir,
}

impl SmallFs {
    /// An ext4 image of `mib` MiB, loop-mounted under a temp dir.
    fn mount(mib: u64) -> Result<Self, String> {
        let root = tempfile::tempdir().map_err(|e| e.to_string())?;
        let image = root.path().join("fs.img");
        let mount_point = root.path().join("mnt");
        std::fs::create_dir(&mount_point).map_err(|e| e.to_string())?;
        let file = std::fs::File::create(&image).map_err(|e| e.to_string())?;
        file.set_len(mib << 20).map_err(|e| e.to_string())?;
        let mkfs = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-O", "^has_journal", "-b", "4096"])
            .arg(&image)
            .status()
            .map_err(|e| format!("mkfs.ext4: {e}"))?;
        if !mkfs.success() {
            return Err(format!("mkfs.ext4 failed: {mkfs}"));
        }
        let mount = Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&mount_point)
            .status()
            .map_err(|e| format!("mount: {e}"))?;
        if !mount.success() {
            return Err(format!("mount -o loop failed: {mount}"));
        }
        Ok(Self {
            mount_point,
            _root: root,
        })
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mount_point)
            .status();
    }
}

#[test]
fn enospc_fails_appends_keeps_the_log_and_recovers_when_space_frees() {
    let fs = match SmallFs::mount(16) {
        Ok(fs) => fs,
        Err(err) if std::env::var("RINGLET_NO_MOUNT").is_ok() => {
            eprintln!("skipped (RINGLET_NO_MOUNT set): {err}");
            return;
        }
        Err(err) => {
            panic!("cannot make a small file system ({err}); set RINGLET_NO_MOUNT=1 to skip")
        }
    };
    let mount_point = fs.mount_point.clone();
    run(async move { fill_and_recover(&mount_point).await });
    drop(fs);
}

async fn fill_and_recover(mount_point: &Path) {
    // Ballast we can delete later to free space.
    let ballast = mount_point.join("ballast");
    std::fs::write(&ballast, vec![1u8; 4 << 20]).expect("ballast");
    let dir = mount_point.join("topic-0");
    let config = LogConfig {
        segment_bytes: 1 << 20,
        ..LogConfig::default()
    };
    let log = PartitionLog::open(&dir, config.clone())
        .await
        .expect("open");
    let mut acknowledged = Vec::new();
    let mut full_error = None;
    for tag in 0..10_000u64 {
        let raw = batch(16, 1000, tag as i64, tag);
        match log.append(raw.clone(), 0, None).await {
            Ok(info) => acknowledged.push(stamped(raw, info.base_offset, 0)),
            Err(err) => {
                full_error = Some(err);
                break;
            }
        }
    }
    let err = full_error.expect("a 16 MiB file system must fill up");
    assert!(err.is_disk_full(), "expected ENOSPC, got {err}");
    let end = log.log_end_offset();
    assert!(
        read_all(&log, 0).await == acknowledged.concat(),
        "log readable and intact when full"
    );
    log.wait_durable(end - 1)
        .await
        .expect("what was written can still be made durable");
    let again = log.append(batch(16, 1000, 0, 1), 0, None).await;
    assert!(again.is_err_and(|e| e.is_disk_full()), "still full");
    assert_eq!(
        log.log_end_offset(),
        end,
        "failed appends leave the end alone"
    );

    std::fs::remove_file(&ballast).expect("free space");
    for tag in 0..50u64 {
        let raw = batch(16, 1000, tag as i64, 50_000 + tag);
        let info = log
            .append(raw.clone(), 0, None)
            .await
            .expect("append after space freed");
        acknowledged.push(stamped(raw, info.base_offset, 0));
    }
    log.wait_durable(log.log_end_offset() - 1)
        .await
        .expect("durable after space freed");
    drop(log);
    let log = PartitionLog::open(&dir, config).await.expect("reopen");
    assert!(
        read_all(&log, 0).await == acknowledged.concat(),
        "everything acknowledged survives"
    );
    log.close().await.expect("close");
}
