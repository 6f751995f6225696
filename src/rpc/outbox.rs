//! The write queue of one connection: frames are encoded as they are queued and the writer
//! takes everything queued as one buffer, so a burst of small Raft messages or responses
//! costs one `send` instead of one per frame.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

use bytes::{Bytes, BytesMut};
use futures_lite::io::{AsyncWrite, AsyncWriteExt};

use crate::rpc::error::RpcError;
use crate::rpc::frame::{encode_into, Frame};

/// Frames queued and not yet taken by the writer. One writer, any number of producers.
#[derive(Default)]
pub(crate) struct Outbox {
    queued: RefCell<BytesMut>,
    frames: Cell<usize>,
    writer: RefCell<Option<Waker>>,
}

impl Outbox {
    /// Queues `frame` and wakes the writer.
    pub(crate) fn push(&self, frame: &Frame) {
        encode_into(frame, &mut self.queued.borrow_mut());
        self.frames.set(self.frames.get() + 1);
        if let Some(waker) = self.writer.borrow_mut().take() {
            waker.wake();
        }
    }

    /// Bytes queued and not yet handed to the socket.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued.borrow().len()
    }

    /// Frames queued and not yet handed to the socket.
    pub(crate) fn queued_frames(&self) -> usize {
        self.frames.get()
    }

    /// Drops everything queued (the connection it was meant for is gone).
    pub(crate) fn clear(&self) {
        self.queued.borrow_mut().clear();
        self.frames.set(0);
    }

    /// Waits until something is queued and takes all of it.
    async fn next_batch(&self) -> Bytes {
        poll_fn(|cx| {
            let mut queued = self.queued.borrow_mut();
            if queued.is_empty() {
                *self.writer.borrow_mut() = Some(cx.waker().clone());
                return Poll::Pending;
            }
            self.frames.set(0);
            Poll::Ready(queued.split().freeze())
        })
        .await
    }

    /// Writes queued frames to `writer` until a write fails. Runs as long as the connection
    /// does; the caller ends it by dropping the future.
    pub(crate) async fn write_to<W: AsyncWrite + Unpin>(&self, mut writer: W) -> RpcError {
        loop {
            let batch = self.next_batch().await;
            if let Err(err) = writer.write_all(&batch).await {
                return RpcError::Io(err);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::frame::decode;

    #[test]
    fn queued_frames_leave_as_one_batch() {
        futures_lite::future::block_on(async {
            let outbox = Outbox::default();
            outbox.push(&Frame::raft(Bytes::from_static(b"one")));
            outbox.push(&Frame::request(2, Bytes::from_static(b"two")));
            assert_eq!(outbox.queued_frames(), 2);
            let mut batch = BytesMut::from(&outbox.next_batch().await[..]);
            assert_eq!(outbox.queued_bytes(), 0);
            assert_eq!(outbox.queued_frames(), 0);
            assert_eq!(
                &decode(&mut batch, 64).unwrap().unwrap().payload[..],
                b"one"
            );
            assert_eq!(
                &decode(&mut batch, 64).unwrap().unwrap().payload[..],
                b"two"
            );
            assert!(batch.is_empty());
        });
    }
}
