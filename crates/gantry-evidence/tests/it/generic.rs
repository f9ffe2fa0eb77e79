use serde_json::json;

use crate::{check, data};

#[test]
fn document_is_kept_whole() {
    let document: serde_json::Value =
        serde_json::from_slice(&data("generic-load-test.json")).unwrap();
    check(
        "generic:load-test",
        "generic-load-test.json",
        &json!({"family": "generic", "declared_type": "load-test", "document": document}),
        &[],
    );
}

#[test]
fn arrays_are_documents_too() {
    let parsed =
        gantry_evidence::parse(&crate::kind("generic:list"), b" [1, {\"a\": 2}] ").unwrap();
    assert_eq!(
        serde_json::to_value(&parsed.summary).unwrap(),
        json!({"family": "generic", "declared_type": "list", "document": [1, {"a": 2}]})
    );
}
