//! A test-only trigger for the panic policy (`crate::panic_policy`): with
//! `RINGLET_TEST_PANIC_ON=SITE` in the environment at start-up, each SIGUSR1 makes shard 1
//! (shard 0 when there is one shard) panic at SITE:
//!
//! - `bus-job`: in a job sent to it over the bus;
//! - `detached-task`: in a task spawned and detached on it;
//! - `handler`: inside [`crate::panic_policy::contained`], the way a request handler runs;
//!   the broker logs it and goes on.
//!
//! Without the variable nothing is armed and SIGUSR1 keeps its default action. The trigger is
//! a thread of its own, outside every request path: serving a request never looks at it.

use ringlet_shard::signals::UserSignal;
use ringlet_shard::RuntimeHandle;

use crate::error::BrokerError;
use crate::state::ShardState;

/// The environment variable that arms the trigger.
pub const ENV: &str = "RINGLET_TEST_PANIC_ON";

/// Where the trigger panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Site {
    BusJob,
    DetachedTask,
    Handler,
}

impl Site {
    fn parse(text: &str) -> Result<Self, BrokerError> {
        match text {
            "bus-job" => Ok(Site::BusJob),
            "detached-task" => Ok(Site::DetachedTask),
            "handler" => Ok(Site::Handler),
            other => Err(BrokerError::InvalidConfig(format!(
                "{ENV}={other:?}: expected bus-job, detached-task or handler"
            ))),
        }
    }
}

/// Arms the trigger when [`ENV`] is set. Call before the listener opens: a test sends
/// SIGUSR1 once the broker accepts connections, and the handler must be in place by then.
pub fn arm_from_env(handle: &RuntimeHandle<ShardState>) -> Result<(), BrokerError> {
    let Some(text) = std::env::var_os(ENV) else {
        return Ok(());
    };
    let site = Site::parse(&text.to_string_lossy())?;
    let startup = |err: std::io::Error| BrokerError::Startup(format!("{ENV}: {err}"));
    let mut signal = UserSignal::register().map_err(startup)?;
    let shard = 1 % handle.shard_count();
    tracing::warn!(
        ?site,
        shard,
        "{ENV} is set: SIGUSR1 makes this broker panic"
    );
    let handle = handle.clone();
    std::thread::Builder::new()
        .name("panic-trigger".into())
        .spawn(move || loop {
            signal.wait();
            fire(site, shard, &handle);
        })
        .map_err(startup)?;
    Ok(())
}

fn fire(site: Site, shard: usize, handle: &RuntimeHandle<ShardState>) {
    let sent = match site {
        Site::BusJob => handle.invoke_on_blocking(shard, move |_| async move {
            panic!("{ENV}=bus-job: a bus job panicked on shard {shard}");
        }),
        Site::DetachedTask => handle.invoke_on_blocking(shard, move |_| async move {
            ringlet_shard::task::spawn_local(async move {
                panic!("{ENV}=detached-task: a detached task panicked on shard {shard}");
            })
            .detach();
        }),
        Site::Handler => handle.invoke_on_blocking(shard, move |_| async move {
            let outcome = crate::panic_policy::contained(async move {
                panic!("{ENV}=handler: a handler panicked on shard {shard}");
            })
            .await;
            if let Err(message) = outcome {
                tracing::warn!(%message, "{ENV}: the handler's panic was contained");
            }
        }),
    };
    if let Err(err) = sent {
        tracing::error!(error = %err, "{ENV}: the trigger's bus call failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_parse_and_others_are_named_in_the_error() {
        assert_eq!(Site::parse("bus-job").ok(), Some(Site::BusJob));
        assert_eq!(Site::parse("detached-task").ok(), Some(Site::DetachedTask));
        assert_eq!(Site::parse("handler").ok(), Some(Site::Handler));
        let err = Site::parse("everywhere").expect_err("unknown site");
        assert!(err.to_string().contains("\"everywhere\""), "{err}");
    }
}
