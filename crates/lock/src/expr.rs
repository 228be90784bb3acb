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
