//! `docs/cost.md` holds the table `make cost` prints: the document cannot drift from the code
//! that bills the turns.

use shared::domain::cost_report::{report_markdown, Workload};

#[test]
fn docs_cost_md_has_the_table_the_ledger_computes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cost.md");
    let doc = std::fs::read_to_string(path).expect("docs/cost.md");
    let table = report_markdown(&Workload::reference());
    assert!(
        doc.contains(&table),
        "docs/cost.md is out of date; paste the output of `make cost`:\n{table}"
    );
}
