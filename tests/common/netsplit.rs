//! Network partitions between broker processes on one machine: one TCP proxy per ordered pair
//! of nodes (`from -> to`) in front of `to`'s internal (rpc) port. Each node is told to reach
//! its peers through its own proxies, so isolating a node is closing and refusing every proxied
//! connection to or from it, while its Kafka port stays reachable by clients (a client on the
//! minority side). Runs in CI: plain threads and sockets, no privileges. The proxies live until
//! the test process exits.

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often a copying thread looks at the cut flags while its socket is idle.
const POLL: Duration = Duration::from_millis(50);

#[derive(Clone, Default)]
pub struct NetSplit {
    isolated: Arc<Mutex<HashSet<i32>>>,
}

impl NetSplit {
    pub fn new() -> NetSplit {
        NetSplit::default()
    }

    /// Starts the proxy for `from -> to` forwarding to `target`; returns its address.
    pub fn proxy(&self, from: i32, to: i32, target: SocketAddr) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a proxy port");
        let address = listener.local_addr().expect("proxy address");
        let split = self.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if split.cut(from, to) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                split.pipe(client.try_clone(), server.try_clone(), from, to);
                split.pipe(Ok(server), Ok(client), from, to);
            }
        });
        address
    }

    /// Cuts every link to and from `node`; returns once the copying threads have seen the cut
    /// (they look every [`POLL`]), so nothing crosses the partition after the call.
    pub fn isolate(&self, node: i32) {
        self.isolated.lock().expect("netsplit lock").insert(node);
        std::thread::sleep(POLL * 4);
    }

    /// Restores all links.
    pub fn heal(&self) {
        self.isolated.lock().expect("netsplit lock").clear();
    }

    fn cut(&self, from: i32, to: i32) -> bool {
        let isolated = self.isolated.lock().expect("netsplit lock");
        isolated.contains(&from) || isolated.contains(&to)
    }

    fn pipe(
        &self,
        source: std::io::Result<TcpStream>,
        sink: std::io::Result<TcpStream>,
        from: i32,
        to: i32,
    ) {
        let (Ok(mut source), Ok(mut sink)) = (source, sink) else {
            return;
        };
        let split = self.clone();
        std::thread::spawn(move || {
            let _ = source.set_read_timeout(Some(POLL));
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                if split.cut(from, to) {
                    break;
                }
                match source.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => {
                        if sink.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                    }
                    Err(err)
                        if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(err) if err.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = source.shutdown(Shutdown::Both);
            let _ = sink.shutdown(Shutdown::Both);
        });
    }
}
