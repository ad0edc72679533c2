//! A cheap groundedness score: how much of what an answer claims can be found in the tool
//! results the turn read.
//!
//! The claims are the answer's numbers and its proper names (capitalized words that do not
//! start a sentence); the score is the share of them that occur in the tool results (numbers
//! compared without thousands separators, names as whole words, case-insensitively). It is a signal for the
//! trace and for evals, not a judge: it costs a pass over the text and no model call.

use std::collections::{BTreeSet, HashSet};

/// The share (0 to 1) of the answer's claims found in `tool_results`; `None` when no tool
/// result was read or the answer makes no checkable claim.
pub fn score<'a>(answer: &str, tool_results: impl IntoIterator<Item = &'a str>) -> Option<f64> {
    let claims = claims(answer);
    if claims.is_empty() {
        return None;
    }
    let names: Vec<&str> = claims
        .iter()
        .filter_map(|claim| match claim {
            Claim::Name(name) => Some(name.as_str()),
            Claim::Number(_) => None,
        })
        .collect();
    // One pass over the sources: their numbers, and which claimed names are among their
    // words (compared without case, no word copied).
    let mut numbers_in_sources = HashSet::new();
    let mut names_found = vec![false; names.len()];
    let mut any = false;
    for text in tool_results {
        any |= !text.trim().is_empty();
        numbers_in_sources.extend(numbers(text));
        for word in text.split(|c: char| !c.is_alphanumeric()) {
            for (name, found) in names.iter().zip(names_found.iter_mut()) {
                if !*found && word.len() == name.len() && word.to_lowercase() == *name {
                    *found = true;
                }
            }
        }
    }
    if !any {
        return None;
    }
    let found = claims
        .iter()
        .filter(|claim| match claim {
            Claim::Number(n) => numbers_in_sources.contains(n),
            Claim::Name(name) => names
                .iter()
                .position(|n| n == name)
                .is_some_and(|i| names_found[i]),
        })
        .count();
    Some(found as f64 / claims.len() as f64)
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Claim {
    Number(String),
    Name(String),
}

fn claims(answer: &str) -> BTreeSet<Claim> {
    let mut claims: BTreeSet<Claim> = numbers(answer).map(Claim::Number).collect();
    let mut sentence_start = true;
    for word in answer.split_whitespace() {
        let bare = word.trim_matches(|c: char| !c.is_alphanumeric());
        let capitalized = bare.chars().next().is_some_and(char::is_uppercase)
            && bare.chars().count() >= 3
            && bare.chars().all(char::is_alphabetic);
        if capitalized && !sentence_start {
            claims.insert(Claim::Name(bare.to_lowercase()));
        }
        sentence_start = word.ends_with(['.', '!', '?', ':']);
    }
    claims
}

/// The numbers of a text, thousands separators dropped (`1,234.5` is `1234.5`); single
/// digits are left out (list markers, "one of 3" are not claims worth checking).
fn numbers(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .map(|run| run.trim_matches(|c| c == '.' || c == ','))
        .filter(|run| run.len() >= 2 && run.bytes().any(|b| b.is_ascii_digit()))
        .map(|run| run.replace(',', ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_that_repeats_its_sources_scores_one() {
        let score = score(
            "The result is 84. According to Tavily, Rust 1.92 shipped in December.",
            [
                "84",
                "Rust 1.92 was released in December by the Rust team (via tavily)",
            ],
        );
        assert_eq!(score, Some(1.0));
    }

    #[test]
    fn invented_numbers_and_names_lower_the_score() {
        let score = score(
            "Paris has 2,148,000 people and Lyon has 513,000.",
            ["Paris: population 2148000 (2020)"],
        )
        .unwrap();
        // Claims: 2148000, 513000, Lyon (Paris starts the sentence): one of three found.
        assert!((score - 1.0 / 3.0).abs() < 1e-9, "{score}");
    }

    #[test]
    fn no_tool_results_or_no_claims_is_no_score() {
        assert_eq!(score("It is 84.", std::iter::empty()), None);
        assert_eq!(score("hello there", ["84"]), None);
    }
}
