//! Metric gates: a value that meets the threshold passes; anything else fails closed.

use gantry_policy::{Comparison, Gates, MetricGate};

use crate::{check, facts};

fn gates() -> Gates {
    Gates {
        metrics: vec![
            MetricGate {
                name: "error-rate".to_owned(),
                query: "sum(rate(http_requests_total{code=~\"5..\"}[5m])) / sum(rate(http_requests_total[5m]))".to_owned(),
                comparison: Comparison::Below,
                threshold: 0.01,
            },
            MetricGate {
                name: "ready-replicas".to_owned(),
                query: "min(kube_deployment_status_replicas_ready{namespace=\"shop\"})".to_owned(),
                comparison: Comparison::AtLeast,
                threshold: 3.0,
            },
        ],
        ..Gates::default()
    }
}

#[test]
fn metrics() {
    let mut facts = facts();
    facts.metrics.insert("error-rate".to_owned(), Ok(0.002));
    facts.metrics.insert("ready-replicas".to_owned(), Ok(3.0));
    check(
        &gates(),
        &facts,
        "allow
        metric:error-rate pass: 0.002 < 0.01
        metric:ready-replicas pass: 3 >= 3",
    );
    facts.metrics.insert("error-rate".to_owned(), Ok(0.05));
    facts.metrics.insert(
        "ready-replicas".to_owned(),
        Err("Prometheus answered 503 Service Unavailable".to_owned()),
    );
    check(
        &gates(),
        &facts,
        r#"deny
        metric:error-rate fail: sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) is 0.05, must be < 0.01
        metric:ready-replicas fail: no value (fails closed): Prometheus answered 503 Service Unavailable"#,
    );
    facts.metrics.clear();
    check(
        &gates(),
        &facts,
        "deny
        metric:error-rate fail: no value was measured (fails closed)
        metric:ready-replicas fail: no value was measured (fails closed)",
    );
}
