//! Pins a glommio 0.9 failure and our workaround (its own test binary, so its own process:
//! it changes the working directory).
//!
//! glommio's `Directory::open` passes a relative path to openat with dirfd -1 instead of
//! AT_FDCWD, so it fails with EBADF. The broker's default data directory is `./data`, and the
//! log fsyncs its directory whenever it creates a segment or a checkpoint, so with a relative
//! data directory every partition failed to open. `rt::sync_dir` makes the path absolute.

mod common;

use common::{batch, run};
use glommio::GlommioError;
use ringlet_io::{LogConfig, PartitionLog};
use std::path::Path;

/// Linux EBADF (the test crate does not depend on libc).
const EBADF: i32 = 9;

#[test]
fn a_log_under_a_relative_directory_opens_appends_and_reopens() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::env::set_current_dir(dir.path()).expect("enter the temp dir");
    std::fs::create_dir("data").expect("create ./data");
    run(async move {
        // The failure the workaround exists for; if this starts passing, glommio fixed it.
        let raw = glommio::io::Directory::open("data").await;
        let errno = match raw {
            Err(GlommioError::EnhancedIoError { source, .. }) => source.raw_os_error(),
            Err(GlommioError::IoError(source)) => source.raw_os_error(),
            _ => None,
        };
        assert_eq!(
            errno,
            Some(EBADF),
            "glommio's Directory::open on a relative path"
        );

        let relative = Path::new("data/p-0");
        let log = PartitionLog::open(relative, LogConfig::default())
            .await
            .expect("open a log on a relative path");
        let info = log
            .append(batch(10, 100, 1_000, 7), 0, None)
            .await
            .expect("append");
        log.wait_durable(info.last_offset).await.expect("durable");
        log.close().await.expect("close");

        let reopened = PartitionLog::open(relative, LogConfig::default())
            .await
            .expect("reopen on the relative path");
        let read = reopened.read(0, 1 << 20).await.expect("read back");
        assert_eq!(read.next_offset, info.last_offset + 1, "the batch survived");
        reopened.close().await.expect("close");
    });
}
