"""Unit tests of evals/scoring.py: python3 evals/test_scoring.py (or -m unittest)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import scoring  # noqa: E402


class ContainsTerm(unittest.TestCase):
    def test_whole_terms_only(self):
        self.assertTrue(scoring.contains_term("The calculator tool says: 84", "84"))
        self.assertFalse(scoring.contains_term("The answer is 184", "84"))
        self.assertFalse(scoring.contains_term("The answer is 84.5", "84"))
        self.assertFalse(scoring.contains_term("about 12.5", "2.5"))
        self.assertTrue(scoring.contains_term("It is 12.5.", "12.5"))
        self.assertFalse(scoring.contains_term("a Parisian cafe", "Paris"))
        self.assertTrue(scoring.contains_term("in  EUROPE/paris now", "Europe/Paris"))
        self.assertTrue(scoring.contains_term("not live.", "not live"))


class Tools(unittest.TestCase):
    def test_exact_choice_is_perfect(self):
        t = scoring.score_tools(["calculator"], ["calculator", "calculator"])
        self.assertEqual((t.precision, t.recall, t.score), (1.0, 1.0, 1.0))

    def test_unexpected_tool_lowers_precision(self):
        t = scoring.score_tools(["calculator"], ["calculator", "web_search"])
        self.assertEqual(t.precision, 0.5)
        self.assertEqual(t.recall, 1.0)
        self.assertAlmostEqual(t.score, 2 / 3)
        self.assertEqual(t.unexpected, ["web_search"])

    def test_missing_tool_lowers_recall(self):
        t = scoring.score_tools(["calculator", "current_time"], ["calculator"])
        self.assertEqual((t.precision, t.recall), (1.0, 0.5))
        self.assertEqual(t.missing, ["current_time"])

    def test_no_tool_expected(self):
        self.assertEqual(scoring.score_tools([], []).score, 1.0)
        t = scoring.score_tools([], ["calculator"])
        self.assertEqual((t.precision, t.score), (0.0, 0.0))

    def test_forbidden_tool_scores_zero(self):
        t = scoring.score_tools(["calculator"], ["calculator", "web_search"], forbidden=["web_search"])
        self.assertEqual(t.forbidden_called, ["web_search"])
        self.assertEqual(t.score, 0.0)
        self.assertEqual(scoring.score_tools([], [], forbidden=["web_search"]).score, 1.0)

    def test_nothing_called_when_one_expected(self):
        self.assertEqual(scoring.score_tools(["calculator"], []).score, 0.0)


class Facts(unittest.TestCase):
    def test_share_of_facts_found(self):
        score, missing = scoring.score_facts("12*7 is 84 and 100/8 is 12.5", ["84", "12.5", "Paris"])
        self.assertAlmostEqual(score, 2 / 3)
        self.assertEqual(missing, ["Paris"])
        self.assertEqual(scoring.score_facts("anything", []), (1.0, []))
        self.assertEqual(scoring.score_facts("184", ["84"])[0], 0.0)


class Claims(unittest.TestCase):
    def test_numbers_and_entities(self):
        answer = "It is 3 pm in Europe/Paris. The Eiffel Tower is 330 m tall, says Wikipedia."
        self.assertEqual(
            scoring.claims(answer), ["3", "330", "Europe/Paris", "Eiffel", "Tower", "Wikipedia"]
        )

    def test_sentence_starts_and_common_words_are_not_entities(self):
        self.assertEqual(scoring.entities("Hello there. Sure, I can. The end\nNext line"), [])

    def test_timestamps_are_not_entities(self):
        text = '{"utc":"2026-12-02T06:10:59Z","local":"2026-12-02T07:10:59+01:00","weekday":"Wednesday"}'
        self.assertEqual(scoring.entities("It is " + text + " in Europe/Paris"), ["Wednesday", "Europe/Paris"])

    def test_numbers_match_by_value(self):
        self.assertTrue(scoring.supported("84", '{"result": 84.0}'))
        self.assertTrue(scoring.supported("1,000", "total 1000"))
        self.assertFalse(scoring.supported("85", "84"))
        self.assertFalse(scoring.supported("4", "84"))


class Grounded(unittest.TestCase):
    def test_claims_in_the_tool_results(self):
        g = scoring.score_groundedness("12*7 is 84.", ["84"], prompt="What is 12*7?")
        self.assertEqual(g.score, 1.0)
        self.assertEqual(g.source, "tool results")

    def test_made_up_claims_lower_the_score(self):
        g = scoring.score_groundedness("It is 84, according to Gauss.", ["85"], prompt="What is 12*7?")
        self.assertEqual(g.score, 0.0)
        self.assertEqual(g.unsupported, ["84", "Gauss"])
        half = scoring.score_groundedness("84 and 90", ["84"])
        self.assertEqual(half.score, 0.5)

    def test_the_tools_called_may_be_named(self):
        answer = "The web_search tool says: nothing"
        self.assertEqual(scoring.score_groundedness(answer, ["nothing"]).score, 0.0)
        g = scoring.score_groundedness(answer, ["nothing"], tool_names=["web_search"])
        self.assertEqual(g.score, 1.0)

    def test_trace_value_wins(self):
        g = scoring.score_groundedness("made up 99", ["1"], trace_value=0.25)
        self.assertEqual((g.score, g.source), (0.25, "trace"))
        self.assertEqual(scoring.score_groundedness("x", ["1"], trace_value=7).score, 1.0)

    def test_no_tool_results_is_not_measured(self):
        g = scoring.score_groundedness("It is 84.", None)
        self.assertIsNone(g.score)
        self.assertIsNone(scoring.score_groundedness("It is 84.", []).score)

    def test_no_claims_is_grounded(self):
        self.assertEqual(scoring.score_groundedness("done", ["84"]).score, 1.0)


class VerdictTests(unittest.TestCase):
    def run_verdict(self, tools=None, facts=1.0, missing=(), grounded=1.0, cost=0.001, max_cost=0.01,
                    latency=100.0, max_latency=None, error=None):
        tools = tools or scoring.score_tools(["calculator"], ["calculator"])
        g = scoring.Groundedness(score=grounded, source="tool results")
        return scoring.verdict(tools, facts, list(missing), g, cost, max_cost, latency, max_latency,
                               min_score=0.8, error=error)

    def test_all_good_passes(self):
        v = self.run_verdict()
        self.assertEqual((v.score, v.passed), (1.0, True))

    def test_cost_over_the_ceiling_fails(self):
        v = self.run_verdict(cost=0.02)
        self.assertFalse(v.passed)
        self.assertFalse(v.cost_ok)
        self.assertEqual(v.score, 1.0)

    def test_unpriced_turn_is_not_a_breach(self):
        self.assertTrue(self.run_verdict(cost=None).cost_ok)

    def test_latency_over_its_ceiling_fails(self):
        v = self.run_verdict(latency=5000, max_latency=1000)
        self.assertFalse(v.passed)
        self.assertFalse(v.latency_ok)

    def test_missing_fact_fails_even_with_a_high_score(self):
        v = self.run_verdict(facts=0.9, missing=["84"])
        self.assertGreater(v.score, 0.8)
        self.assertFalse(v.passed)

    def test_forbidden_tool_fails(self):
        tools = scoring.score_tools([], ["web_search"], forbidden=["web_search"])
        v = self.run_verdict(tools=tools)
        self.assertFalse(v.passed)
        self.assertAlmostEqual(v.score, 2 / 3)

    def test_unmeasured_groundedness_is_left_out_of_the_mean(self):
        v = self.run_verdict(facts=0.5, missing=["x"], grounded=None)
        self.assertEqual(v.score, 0.75)

    def test_failed_turn_scores_zero(self):
        v = self.run_verdict(error="HTTP 503")
        self.assertEqual((v.score, v.passed), (0.0, False))

    def test_overall_is_the_mean(self):
        self.assertEqual(scoring.overall([1.0, 0.5]), 0.75)
        self.assertEqual(scoring.overall([]), 0.0)


if __name__ == "__main__":
    unittest.main()
