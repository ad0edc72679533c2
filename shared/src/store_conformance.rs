//! The behaviour every [`SessionStore`] must have, as a reusable suite: the in-memory store runs
//! it in unit tests, the DynamoDB store against DynamoDB Local in `tests/tests/dynamodb_store.rs`.
//!
//! Each check is a `pub async fn` taking the store; [`run_all`] runs them in turn and
//! [`session_store_conformance_tests!`](crate::session_store_conformance_tests) writes one
//! `#[tokio::test]` per check. Every check makes its own random user and session ids, so the
//! checks can share a store and run concurrently. They panic on failure: this is test code.

mod fixtures;
mod lifecycle;
mod turns;

pub use fixtures::{
    chat_turn, claim, claimed, commit, new_id, record, session_of, tool_turn, trace, traces_of, ALL,
};
pub use lifecycle::*;
pub use turns::*;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};

use crate::ports::SessionStore;

/// Creates `table` as template.yaml defines it (PK/SK strings, on demand, TTL on `expires_at`),
/// for tests and benches against DynamoDB Local. Panics on failure.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str) {
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attribute definition")
    };
    let key = |name: &str, key_type| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .expect("key schema")
    };
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(attribute("PK"))
        .attribute_definitions(attribute("SK"))
        .key_schema(key("PK", KeyType::Hash))
        .key_schema(key("SK", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("CreateTable on DynamoDB Local");
    let ttl = TimeToLiveSpecification::builder()
        .attribute_name("expires_at")
        .enabled(true)
        .build()
        .expect("TTL specification");
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(ttl)
        .send()
        .await
        .expect("UpdateTimeToLive");
}

/// Writes one `#[tokio::test]` per conformance check for the store built by `$make` (an
/// expression, evaluated in each async test, so `make_store().await` works).
#[macro_export]
macro_rules! session_store_conformance_tests {
    ($make:expr) => {
        $crate::session_store_conformance_tests!(@each $make;
            create_then_load_gives_an_empty_window,
            appended_turns_are_loaded_back_in_order_with_totals,
            window_is_the_newest_messages_and_the_sessions_version,
            pages_cover_every_message_and_trace_once,
            stale_expected_version_conflicts_and_stores_nothing,
            concurrent_appends_have_exactly_one_winner,
            other_users_sessions_are_not_found,
            sessions_are_listed_most_recently_updated_first,
            delete_removes_everything,
            a_turn_racing_a_delete_cannot_resurrect_the_session,
            idempotency_claim_is_completed_by_its_turn,
            released_lapsed_and_expired_keys_are_free,
            delete_removes_idempotency_records,
            reused_session_id_on_create_is_already_exists,
            oversized_message_is_truncated_to_fit,
            usage_is_counted_with_the_turn,
            concurrent_turns_of_one_user_all_count,
        );
    };
    (@each $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let store = $make;
                $crate::store_conformance::$check(&store).await;
            }
        )*
    };
}

/// Runs every check, in order.
pub async fn run_all(store: &dyn SessionStore) {
    create_then_load_gives_an_empty_window(store).await;
    appended_turns_are_loaded_back_in_order_with_totals(store).await;
    window_is_the_newest_messages_and_the_sessions_version(store).await;
    pages_cover_every_message_and_trace_once(store).await;
    stale_expected_version_conflicts_and_stores_nothing(store).await;
    concurrent_appends_have_exactly_one_winner(store).await;
    other_users_sessions_are_not_found(store).await;
    sessions_are_listed_most_recently_updated_first(store).await;
    delete_removes_everything(store).await;
    a_turn_racing_a_delete_cannot_resurrect_the_session(store).await;
    idempotency_claim_is_completed_by_its_turn(store).await;
    released_lapsed_and_expired_keys_are_free(store).await;
    delete_removes_idempotency_records(store).await;
    reused_session_id_on_create_is_already_exists(store).await;
    oversized_message_is_truncated_to_fit(store).await;
    usage_is_counted_with_the_turn(store).await;
    concurrent_turns_of_one_user_all_count(store).await;
}
