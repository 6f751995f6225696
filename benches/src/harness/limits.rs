//! Physical limits of the machine, read from the JSON that `iperf3 -J` (loopback TCP) and
//! `fio --output-format=json` (sequential O_DIRECT writes) print, so every broker figure can be
//! read as a fraction of what the hardware does in the same run.

use serde_json::Value;

use super::json::Limits;

/// Receiver-side bits/s of an `iperf3 -J` TCP run, as bytes/s.
pub fn iperf3_bytes_per_s(report: &Value) -> Option<f64> {
    let end = report.get("end")?;
    let bits = end
        .get("sum_received")
        .or_else(|| end.get("sum"))?
        .get("bits_per_second")?
        .as_f64()?;
    Some(bits / 8.0)
}

/// Write bandwidth summed over the jobs of a `fio --output-format=json` run, bytes/s.
pub fn fio_write_bytes_per_s(report: &Value) -> Option<f64> {
    let jobs = report.get("jobs")?.as_array()?;
    let total: f64 = jobs
        .iter()
        .filter_map(|job| job.get("write")?.get("bw_bytes")?.as_f64())
        .sum();
    (total > 0.0).then_some(total)
}

/// Builds `Limits` from the two tool outputs; a missing or unreadable one becomes a note.
pub fn limits_from(iperf3: Option<&str>, fio: Option<&str>) -> Limits {
    let mut limits = Limits::default();
    match iperf3.map(serde_json::from_str::<Value>) {
        Some(Ok(value)) => {
            limits.loopback_tcp_bytes_per_s = iperf3_bytes_per_s(&value);
            if let Some(error) = value.get("error").and_then(Value::as_str) {
                limits.notes.push(format!("iperf3 failed: {error}"));
            }
        }
        Some(Err(err)) => limits
            .notes
            .push(format!("iperf3 output unreadable: {err}")),
        None => limits.notes.push("iperf3 not run".into()),
    }
    match fio.map(serde_json::from_str::<Value>) {
        Some(Ok(value)) => limits.disk_seq_write_bytes_per_s = fio_write_bytes_per_s(&value),
        Some(Err(err)) => limits.notes.push(format!("fio output unreadable: {err}")),
        None => limits.notes.push("fio not run".into()),
    }
    limits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_the_tools_print() {
        let iperf = r#"{"end":{"sum_sent":{"bits_per_second":8.0e10},"sum_received":{"bits_per_second":4.0e10}}}"#;
        let fio = r#"{"jobs":[{"jobname":"seq","write":{"bw_bytes":1000000,"bw":976}}]}"#;
        let limits = limits_from(Some(iperf), Some(fio));
        assert_eq!(limits.loopback_tcp_bytes_per_s, Some(5.0e9));
        assert_eq!(limits.disk_seq_write_bytes_per_s, Some(1.0e6));
        assert!(limits.notes.is_empty());
    }

    #[test]
    fn missing_or_garbled_outputs_become_notes() {
        let limits = limits_from(Some("not json"), None);
        assert_eq!(limits.loopback_tcp_bytes_per_s, None);
        assert_eq!(limits.notes.len(), 2);
        let refused = r#"{"end":{},"error":"unable to connect to server: Connection refused"}"#;
        let limits = limits_from(Some(refused), None);
        assert_eq!(limits.loopback_tcp_bytes_per_s, None);
        assert!(
            limits.notes[0].contains("Connection refused"),
            "{:?}",
            limits.notes
        );
    }
}
