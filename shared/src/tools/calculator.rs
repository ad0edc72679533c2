//! The `calculator` tool: evaluates an arithmetic expression exactly as written, with a
//! precise error (what and where) when it is malformed.

use schemars::JsonSchema;
use serde::Deserialize;

/// Input of the calculator.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalculatorInput {
    /// An arithmetic expression: numbers, + - * / % ^, parentheses, and the functions
    /// sqrt, abs, ln, log10, exp, round, floor, ceil; constants pi and e. Example: "(2+3)*4^2".
    pub expression: String,
}

/// Why an expression could not be evaluated.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum CalcError {
    /// Nothing to evaluate.
    #[error("the expression is empty")]
    Empty,
    /// A character that is not part of the grammar.
    #[error("unexpected character '{found}' at position {position}")]
    UnexpectedChar {
        /// The character.
        found: char,
        /// 1-based character position.
        position: usize,
    },
    /// A token in the wrong place.
    #[error("expected {expected} at position {position}")]
    Expected {
        /// What was expected.
        expected: &'static str,
        /// 1-based character position.
        position: usize,
    },
    /// A name that is neither a function nor a constant.
    #[error("unknown name '{name}' at position {position}")]
    UnknownName {
        /// The name.
        name: String,
        /// 1-based character position.
        position: usize,
    },
    /// Division or remainder by zero.
    #[error("division by zero")]
    DivisionByZero,
    /// The result is not a finite number.
    #[error("the result is not a finite number")]
    NotFinite,
    /// Too deeply nested.
    #[error("the expression is nested too deeply")]
    TooDeep,
}

const MAX_DEPTH: usize = 64;

/// Evaluates an arithmetic expression.
pub fn evaluate(expression: &str) -> Result<f64, CalcError> {
    let chars: Vec<char> = expression.chars().collect();
    let mut parser = Parser {
        chars,
        pos: 0,
        depth: 0,
    };
    parser.skip_ws();
    if parser.pos == parser.chars.len() {
        return Err(CalcError::Empty);
    }
    let value = parser.expr()?;
    parser.skip_ws();
    if let Some(&found) = parser.chars.get(parser.pos) {
        return Err(if found == ')' {
            CalcError::Expected {
                expected: "an operator (unbalanced ')')",
                position: parser.pos + 1,
            }
        } else {
            CalcError::UnexpectedChar {
                found,
                position: parser.pos + 1,
            }
        });
    }
    if value.is_finite() {
        Ok(value)
    } else {
        Err(CalcError::NotFinite)
    }
}

/// Formats a result: whole numbers without a fraction, others with up to 12 significant digits.
pub fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        let text = format!("{value:.12}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        text.to_owned()
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn skip_ws(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.chars.get(self.pos).copied()
    }

    fn expected(&self, expected: &'static str) -> CalcError {
        CalcError::Expected {
            expected,
            position: self.pos + 1,
        }
    }

    /// expr := term (('+' | '-') term)*
    fn expr(&mut self) -> Result<f64, CalcError> {
        let mut value = self.term()?;
        while let Some(op @ ('+' | '-')) = self.peek() {
            self.pos += 1;
            let rhs = self.term()?;
            value = if op == '+' { value + rhs } else { value - rhs };
        }
        Ok(value)
    }

    /// term := unary (('*' | '/' | '%') unary)*
    fn term(&mut self) -> Result<f64, CalcError> {
        let mut value = self.unary()?;
        while let Some(op @ ('*' | '/' | '%' | '×' | '÷')) = self.peek() {
            self.pos += 1;
            let rhs = self.unary()?;
            value = match op {
                '*' | '×' => value * rhs,
                _ if rhs == 0.0 => return Err(CalcError::DivisionByZero),
                '%' => value % rhs,
                _ => value / rhs,
            };
        }
        Ok(value)
    }

    /// unary := ('-' | '+') unary | power
    fn unary(&mut self) -> Result<f64, CalcError> {
        match self.peek() {
            Some('-') => {
                self.pos += 1;
                self.nested(|p| p.unary()).map(|v| -v)
            }
            Some('+') => {
                self.pos += 1;
                self.nested(|p| p.unary())
            }
            _ => self.power(),
        }
    }

    /// power := atom ('^' unary)?   (right-associative, binds tighter than unary minus on the left)
    fn power(&mut self) -> Result<f64, CalcError> {
        let base = self.atom()?;
        if self.peek() == Some('^') {
            self.pos += 1;
            let exponent = self.nested(|p| p.unary())?;
            return Ok(base.powf(exponent));
        }
        Ok(base)
    }

    fn nested(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<f64, CalcError>,
    ) -> Result<f64, CalcError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(CalcError::TooDeep);
        }
        let result = f(self);
        self.depth -= 1;
        result
    }

    /// atom := number | '(' expr ')' | name | name '(' expr ')'
    fn atom(&mut self) -> Result<f64, CalcError> {
        match self.peek() {
            None => Err(self.expected("a number or '('")),
            Some('(') => {
                self.pos += 1;
                let value = self.nested(|p| p.expr())?;
                if self.peek() != Some(')') {
                    return Err(self.expected("')'"));
                }
                self.pos += 1;
                Ok(value)
            }
            Some(c) if c.is_ascii_digit() || c == '.' => self.number(),
            Some(c) if c.is_alphabetic() => self.name(),
            Some(found) => Err(CalcError::UnexpectedChar {
                found,
                position: self.pos + 1,
            }),
        }
    }

    fn number(&mut self) -> Result<f64, CalcError> {
        let start = self.pos;
        let digit_or_sep = |c: &char| c.is_ascii_digit() || *c == '.' || *c == '_';
        while self.chars.get(self.pos).is_some_and(digit_or_sep) {
            self.pos += 1;
        }
        if matches!(self.chars.get(self.pos), Some('e' | 'E'))
            && self
                .chars
                .get(self.pos + 1)
                .is_some_and(|c| c.is_ascii_digit() || *c == '-' || *c == '+')
        {
            self.pos += 2;
            while self.chars.get(self.pos).is_some_and(char::is_ascii_digit) {
                self.pos += 1;
            }
        }
        let text: String = self.chars[start..self.pos]
            .iter()
            .filter(|c| **c != '_')
            .collect();
        text.parse::<f64>().map_err(|_| CalcError::Expected {
            expected: "a number",
            position: start + 1,
        })
    }

    fn name(&mut self) -> Result<f64, CalcError> {
        let start = self.pos;
        while self
            .chars
            .get(self.pos)
            .is_some_and(|c| c.is_alphanumeric())
        {
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos]
            .iter()
            .collect::<String>()
            .to_lowercase();
        let function: Option<fn(f64) -> f64> = match name.as_str() {
            "pi" => return Ok(std::f64::consts::PI),
            "e" => return Ok(std::f64::consts::E),
            "sqrt" => Some(f64::sqrt),
            "abs" => Some(f64::abs),
            "ln" => Some(f64::ln),
            "log10" | "log" => Some(f64::log10),
            "exp" => Some(f64::exp),
            "round" => Some(f64::round),
            "floor" => Some(f64::floor),
            "ceil" => Some(f64::ceil),
            _ => None,
        };
        let Some(function) = function else {
            return Err(CalcError::UnknownName {
                name,
                position: start + 1,
            });
        };
        if self.peek() != Some('(') {
            return Err(self.expected("'(' after a function name"));
        }
        let argument = self.atom()?;
        Ok(function(argument))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_operator_precedence_and_parentheses() {
        assert_eq!(evaluate("12*(3+4)"), Ok(84.0));
        assert_eq!(evaluate("2 + 3 * 4"), Ok(14.0));
        assert_eq!(evaluate("2^3^2"), Ok(512.0));
        assert_eq!(evaluate("-2^2"), Ok(-4.0));
        assert_eq!(evaluate("10 % 4"), Ok(2.0));
        assert_eq!(evaluate("1.5e3 / 3"), Ok(500.0));
        assert_eq!(evaluate("sqrt(16) + abs(-2)"), Ok(6.0));
        assert_eq!(evaluate("1_000 * 2"), Ok(2000.0));
    }

    #[test]
    fn names_what_is_wrong_and_where() {
        assert_eq!(evaluate("   "), Err(CalcError::Empty));
        assert_eq!(
            evaluate("2 + x"),
            Err(CalcError::UnknownName {
                name: "x".into(),
                position: 5
            })
        );
        assert_eq!(
            evaluate("2 # 3"),
            Err(CalcError::UnexpectedChar {
                found: '#',
                position: 3
            })
        );
        assert_eq!(
            evaluate("(1 + 2"),
            Err(CalcError::Expected {
                expected: "')'",
                position: 7
            })
        );
        assert_eq!(
            evaluate("1 +"),
            Err(CalcError::Expected {
                expected: "a number or '('",
                position: 4
            })
        );
        assert_eq!(evaluate("1/0"), Err(CalcError::DivisionByZero));
        assert_eq!(
            evaluate("1.2.3"),
            Err(CalcError::Expected {
                expected: "a number",
                position: 1
            })
        );
        assert_eq!(evaluate(&"(".repeat(500)), Err(CalcError::TooDeep));
        assert_eq!(evaluate("10^400"), Err(CalcError::NotFinite));
    }

    #[test]
    fn formats_whole_numbers_without_a_fraction() {
        assert_eq!(format_number(84.0), "84");
        assert_eq!(format_number(0.1 + 0.2), "0.3");
        assert_eq!(format_number(-2.5), "-2.5");
    }
}
