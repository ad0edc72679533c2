//! Prints the monthly cost of the reference workload (`docs/cost.md`'s table), computed by the
//! ledger's code: `make cost`, or `cargo run -q -p shared --example cost`.

use shared::domain::cost_report::{report_markdown, Workload};

fn main() {
    print!("{}", report_markdown(&Workload::reference()));
}
