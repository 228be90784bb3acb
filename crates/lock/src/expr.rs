//! A tiny builder for DynamoDB expressions: every attribute name goes through
//! a `#placeholder` (so reserved words such as `status` and `ttl` are safe)
//! and every value through a `:placeholder`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

#[derive(Default)]
pub(crate) struct Expr {
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
    sets: Vec<String>,
    removes: Vec<String>,
    adds: Vec<String>,
    deletes: Vec<String>,
}

impl Expr {
    /// Placeholder for an attribute name.
    pub fn name(&mut self, attr: &str) -> String {
        let placeholder = format!("#{attr}");
        self.names.insert(placeholder.clone(), attr.to_owned());
        placeholder
    }

    /// Placeholder for a value.
    pub fn value(&mut self, label: &str, value: AttributeValue) -> String {
        let placeholder = format!(":{label}");
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    pub fn string(&mut self, label: &str, value: impl Into<String>) -> String {
        self.value(label, AttributeValue::S(value.into()))
    }

    pub fn number(&mut self, label: &str, value: u64) -> String {
        self.value(label, AttributeValue::N(value.to_string()))
    }

    /// `SET attr = :attr`.
    pub fn set(&mut self, attr: &str, value: AttributeValue) {
        let name = self.name(attr);
        let value = self.value(attr, value);
        self.sets.push(format!("{name} = {value}"));
    }

    pub fn set_string(&mut self, attr: &str, value: impl Into<String>) {
        self.set(attr, AttributeValue::S(value.into()));
    }

    pub fn set_number(&mut self, attr: &str, value: u64) {
        self.set(attr, AttributeValue::N(value.to_string()));
    }

    /// `SET attr = value` when present, `REMOVE attr` otherwise, so a new
    /// grant never inherits a field of the previous one.
    pub fn set_or_remove(&mut self, attr: &str, value: Option<AttributeValue>) {
        match value {
            Some(v) => self.set(attr, v),
            None => self.remove(attr),
        }
    }

    /// A raw `SET` clause built from placeholders obtained from this builder.
    pub fn set_raw(&mut self, clause: String) {
        self.sets.push(clause);
    }

    pub fn remove(&mut self, attr: &str) {
        let name = self.name(attr);
        self.removes.push(name);
    }

    /// A raw `REMOVE` path built from placeholders obtained from this builder
    /// (a list element, `#waiters[0]`).
    pub fn remove_raw(&mut self, path: String) {
        self.removes.push(path);
    }

    /// A raw `ADD path :value` clause (to a set), from placeholders of this builder.
    pub fn add_raw(&mut self, clause: String) {
        self.adds.push(clause);
    }

    /// A raw `DELETE path :value` clause (from a set), from placeholders of this builder.
    pub fn delete_raw(&mut self, clause: String) {
        self.deletes.push(clause);
    }

    /// The names and values the update expression and `condition` use,
    /// and no others: DynamoDB refuses a request that declares a
    /// placeholder it never uses, and a builder shared by branches (an
    /// ending that hands the key on, or not) cannot always know which
    /// placeholders its branch will need.
    pub fn used_placeholders(
        self,
        condition: &str,
    ) -> (HashMap<String, String>, HashMap<String, AttributeValue>) {
        let text = format!("{} {condition}", self.update_expression());
        let used = |placeholder: &str| {
            text.match_indices(placeholder).any(|(at, _)| {
                !text[at + placeholder.len()..]
                    .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            })
        };
        let names = self.names.into_iter().filter(|(p, _)| used(p)).collect();
        let values = self.values.into_iter().filter(|(p, _)| used(p)).collect();
        (names, values)
    }

    /// The full update expression.
    pub fn update_expression(&self) -> String {
        [
            ("SET", &self.sets),
            ("REMOVE", &self.removes),
            ("ADD", &self.adds),
            ("DELETE", &self.deletes),
        ]
        .iter()
        .filter(|(_, clauses)| !clauses.is_empty())
        .map(|(action, clauses)| format!("{action} {}", clauses.join(", ")))
        .collect::<Vec<_>>()
        .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_placeholders_used_are_sent() {
        let mut e = Expr::default();
        e.set_number("fence", 1);
        let _unused_name = e.name("lineVersion");
        let _unused_value = e.number("one", 1);
        let status = e.name("status");
        let done = e.string("done", "COMPLETED");
        // A placeholder that is a prefix of a used one is still unused.
        let _prefix = e.number("fen", 2);
        let (names, values) = e.used_placeholders(&format!("{status} = {done}"));
        let mut names: Vec<_> = names.into_keys().collect();
        names.sort();
        let mut values: Vec<_> = values.into_keys().collect();
        values.sort();
        assert_eq!(names, ["#fence", "#status"]);
        assert_eq!(values, [":done", ":fence"]);
    }
}
