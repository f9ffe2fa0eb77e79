//! Metric gates: a PromQL instant query against the project's Prometheus at the moment
//! of the decision. The answer must be one number (a scalar, or a vector of exactly one
//! sample); anything else is no value, and a metric gate with no value fails closed.

use std::collections::BTreeMap;
use std::time::Duration;

use gantry_policy::MetricGate;
use serde::Deserialize;
use serde::de::IgnoredAny;

/// How long one query may take before the gate gives up on it.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
    #[serde(rename = "errorType", default)]
    error_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Scalar((f64, String)),
    Vector(Vec<Sample>),
    Matrix(IgnoredAny),
    String(IgnoredAny),
}

#[derive(Deserialize)]
struct Sample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

/// A Prometheus HTTP API client for instant queries.
#[derive(Debug, Clone)]
pub(crate) struct Prometheus {
    http: reqwest::Client,
}

impl Default for Prometheus {
    fn default() -> Self {
        Prometheus {
            http: reqwest::Client::builder()
                .timeout(QUERY_TIMEOUT)
                .build()
                .expect("an HTTP client with a timeout builds"),
        }
    }
}

impl Prometheus {
    /// Each gate's value now, by gate name: the number, or why there is none.
    pub(crate) async fn measure(
        &self,
        base: &str,
        gates: &[MetricGate],
    ) -> BTreeMap<String, Result<f64, String>> {
        let mut values = BTreeMap::new();
        for gate in gates {
            values.insert(gate.name.clone(), self.query(base, &gate.query).await);
        }
        values
    }

    async fn query(&self, base: &str, query: &str) -> Result<f64, String> {
        let url = format!("{base}/api/v1/query");
        let response = self
            .http
            .post(&url)
            .form(&[("query", query)])
            .send()
            .await
            .map_err(|e| format!("cannot reach Prometheus at {base}: {e}"))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("Prometheus at {base}: reading the answer: {e}"))?;
        let answer: Answer = serde_json::from_slice(&body).map_err(|e| {
            format!(
                "Prometheus at {base} answered {status} with something that is not its API's JSON: {e}"
            )
        })?;
        if answer.status != "success" {
            return Err(format!(
                "Prometheus refused the query ({}): {}",
                answer.error_type.as_deref().unwrap_or("error"),
                answer.error.as_deref().unwrap_or("no reason given")
            ));
        }
        match answer.data {
            Some(Data::Scalar((_, value))) => number(&value),
            Some(Data::Vector(samples)) => match samples.as_slice() {
                [sample] => number(&sample.value.1),
                [] => Err("the query returned no samples".to_owned()),
                many => Err(format!(
                    "the query returned {} series ({}); aggregate them to one, e.g. with sum(...) or max(...)",
                    many.len(),
                    many.iter()
                        .take(3)
                        .map(|s| series(&s.metric))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            },
            Some(Data::Matrix(_)) => {
                Err("the query returned a range vector; use an instant query".to_owned())
            }
            Some(Data::String(_)) => Err("the query returned a string, not a number".to_owned()),
            None => Err("Prometheus answered success without data".to_owned()),
        }
    }
}

fn number(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("the value {text:?} is not a number"))?;
    if value.is_nan() {
        return Err("the value is NaN".to_owned());
    }
    Ok(value)
}

fn series(labels: &BTreeMap<String, String>) -> String {
    let name = labels.get("__name__").map_or("", String::as_str);
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    format!("{name}{{{}}}", rest.join(","))
}
