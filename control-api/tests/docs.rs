//! docs/control-api.md states the plan numbers; they must be the code's.

use tenantmq_common::quota::{PLAN_NAMES, Quotas};

#[test]
fn plans_table_matches_the_code() {
    let doc = include_str!("../../docs/control-api.md");
    let table = doc
        .split("<!-- plans-table")
        .nth(1)
        .expect("plans table marker");
    let mut rows = 0;
    for line in table.lines().skip(3).take_while(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let field = cells[0].trim_matches('`');
        for (plan, cell) in PLAN_NAMES.iter().zip(&cells[1..]) {
            let quotas = serde_json::to_value(Quotas::for_plan(plan).expect("plan")).expect("json");
            assert_eq!(quotas[field].to_string(), *cell, "{field} of {plan}");
        }
        rows += 1;
    }
    let fields = serde_json::to_value(Quotas::free())
        .expect("json")
        .as_object()
        .expect("object")
        .len();
    assert_eq!(rows, fields, "every quota field has a row");
}
