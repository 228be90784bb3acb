//! `sdk-calls`: what the infra contract test (tests/infra/infra_contract.py)
//! needs to know about Rust source files, read with a Rust parser (syn), so
//! that comments, string literals, raw strings, lifetimes, test-only code and
//! line breaks inside a call chain are what the compiler says they are.
//!
//! Usage: `sdk-calls [--methods a,b,..] [--builders T,U,..] FILE...`
//!
//! Prints one JSON document, `{"files": [...]}`, one entry per FILE:
//! - `calls`: zero-argument method calls `recv.op()` that may be AWS SDK
//!   operations (an SDK client's operation methods take no argument and
//!   return a fluent builder). Listed are the calls named in `--methods`, and
//!   any other whose builder is sent: the receiver chain of a zero-argument
//!   `.send()` or `.into_paginator()` leads back to it through setters (calls
//!   with arguments) and through the `let` bindings of the same function. Each
//!   has its line and column, the receiver's source text, `sent` (reached
//!   from such a send) and `then` (the methods called on its result in the
//!   same expression), and `in_macro`.
//! - `builders`: calls `T::builder()` for a type T named in `--builders`.
//! - `consts`: `const NAME: &str = ...;` items, with the value when it is a
//!   string literal.
//! - `error`: why the file could not be read or parsed (nothing else is
//!   listed for it then).
//! - `test_only`: the file is an out-of-line module that another FILE
//!   declares under `#[cfg(test)]`, or one such a module declares; nothing of
//!   it is listed.
//!
//! Code compiled only for tests is skipped: items and `let` statements under
//! a `cfg` that requires `test`, and `#[test]` / `#[tokio::test]` functions.
//! A macro's body is parsed as comma-separated expressions, else as
//! statements; when neither parses (`select!`, `macro_rules!`) its tokens are
//! scanned for `.op()` with the methods chained after it (no `sent` there).
//!
//! Which of these calls are AWS requests, and which IAM action each needs, is
//! decided by the contract test, not here.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit::{self, Visit};
use syn::{
    Attribute, Block, Expr, ExprCall, ExprClosure, ExprMethodCall, ImplItem, ImplItemFn, Item,
    ItemFn, Meta, Pat, Stmt, Token, TraitItem, TraitItemFn, Type, Visibility,
};

/// Zero-argument calls that send a fluent builder's request.
const SENDS: &[&str] = &["send", "into_paginator"];
/// Zero-argument calls a builder may go through between its operation and
/// the send (a copy, the SDK's request customization, a paginator's items):
/// they are not the operation.
const PASS_THROUGH: &[&str] = &["clone", "customize", "into_paginator", "items"];

struct Options {
    methods: HashSet<String>,
    builders: HashSet<String>,
}

/// (line, column) of a call's method name: one key per call site.
type Key = (usize, usize);

struct CallFacts {
    method: String,
    receiver: String,
    sent: bool,
    then: BTreeSet<String>,
    in_macro: bool,
}

struct Const {
    line: usize,
    name: String,
    value: Option<String>,
    public: bool,
}

/// `mod name;` at the top level of a file.
struct ModDecl {
    name: String,
    path: Option<String>,
    test_only: bool,
}

#[derive(Default)]
struct Found {
    calls: BTreeMap<Key, CallFacts>,
    /// Methods called after each zero-argument call in its expression, kept
    /// for every such call: it may turn out to be sent further on.
    then: BTreeMap<Key, BTreeSet<String>>,
    builders: BTreeSet<(usize, String)>,
    consts: Vec<Const>,
    mods: Vec<ModDecl>,
}

struct Lister<'f, 'ast> {
    opts: &'f Options,
    found: &'f mut Found,
    /// `let` bindings in scope, innermost last: name and initializer (None
    /// when the pattern binds it some other way: it still shadows).
    bindings: Vec<(String, Option<&'ast Expr>)>,
    in_macro: bool,
    /// Depth of inline `mod x { .. }` blocks.
    depth: usize,
}

fn key(span: Span) -> Key {
    let start = span.start();
    (start.line, start.column + 1)
}

fn source_text<T: Spanned>(node: &T) -> String {
    let text = node.span().source_text().unwrap_or_default();
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace(" .", ".")
}

impl<'f, 'ast> Lister<'f, 'ast> {
    /// A lister for a macro body parsed here: same scope, shorter lifetime.
    fn sub<'s, 'm>(&'s mut self) -> Lister<'s, 'm>
    where
        'ast: 'm,
    {
        Lister {
            opts: self.opts,
            found: &mut *self.found,
            bindings: self.bindings.clone(),
            in_macro: true,
            depth: self.depth,
        }
    }

    fn record(&mut self, call: &ExprMethodCall) -> &mut CallFacts {
        let in_macro = self.in_macro;
        self.found
            .calls
            .entry(key(call.method.span()))
            .or_insert_with(|| CallFacts {
                method: call.method.to_string(),
                receiver: source_text(&*call.receiver),
                sent: false,
                then: BTreeSet::new(),
                in_macro,
            })
    }

    /// The operation call a sent builder comes from: back along the receiver
    /// chain, past setters, to the first zero-argument call; a local variable
    /// is followed to its `let` (among the first `upto` bindings).
    fn operation(&self, expr: &'ast Expr, upto: usize) -> Option<&'ast ExprMethodCall> {
        match expr {
            Expr::MethodCall(call)
                if call.args.is_empty() && !PASS_THROUGH.contains(&&*call.method.to_string()) =>
            {
                Some(call)
            }
            Expr::MethodCall(call) => self.operation(&call.receiver, upto),
            Expr::Paren(paren) => self.operation(&paren.expr, upto),
            Expr::Path(path) if path.qself.is_none() => {
                let name = path.path.get_ident()?.to_string();
                let i = self.bindings[..upto]
                    .iter()
                    .rposition(|(n, _)| *n == name)?;
                self.operation(self.bindings[i].1?, i)
            }
            _ => None,
        }
    }

    fn bind(&mut self, pat: &'ast Pat, init: Option<&'ast Expr>) {
        match pat {
            Pat::Ident(p) if p.subpat.is_none() => self.bindings.push((p.ident.to_string(), init)),
            Pat::Type(typed) => self.bind(&typed.pat, init),
            _ => {
                let mut names = PatNames::default();
                names.visit_pat(pat);
                self.bindings.extend(names.0.into_iter().map(|n| (n, None)));
            }
        }
    }

    fn visit_stmts(&mut self, stmts: &'ast [Stmt]) {
        let mark = self.bindings.len();
        for stmt in stmts {
            match stmt {
                Stmt::Local(local) => {
                    if test_only(&local.attrs) {
                        continue;
                    }
                    self.visit_local(local);
                    self.bind(&local.pat, local.init.as_ref().map(|init| &*init.expr));
                }
                _ => self.visit_stmt(stmt),
            }
        }
        self.bindings.truncate(mark);
    }

    fn record_const(
        &mut self,
        attrs_vis: (&[Attribute], &Visibility),
        name: &syn::Ident,
        ty: &Type,
        expr: &Expr,
    ) {
        let (attrs, vis) = attrs_vis;
        let is_str = matches!(ty, Type::Reference(r) if r.mutability.is_none()
            && matches!(&*r.elem, Type::Path(p) if p.qself.is_none() && p.path.is_ident("str")));
        if !is_str || test_only(attrs) {
            return;
        }
        let value = match expr {
            Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            _ => None,
        };
        self.found.consts.push(Const {
            line: name.span().start().line,
            name: name.to_string(),
            value,
            public: !matches!(vis, Visibility::Inherited),
        });
    }

    /// Tokens no parser took: `.op()` calls and `T::builder()` calls.
    fn scan(&mut self, tokens: TokenStream) {
        let tts: Vec<TokenTree> = tokens.into_iter().collect();
        for (i, tt) in tts.iter().enumerate() {
            match tt {
                TokenTree::Group(group) => self.scan(group.stream()),
                TokenTree::Punct(p) if p.as_char() == '.' => {
                    let [TokenTree::Ident(name), TokenTree::Group(args), ..] = &tts[i + 1..] else {
                        continue;
                    };
                    let method = name.to_string();
                    if args.delimiter() != Delimiter::Parenthesis
                        || !args.stream().is_empty()
                        || !self.opts.methods.contains(&method)
                    {
                        continue;
                    }
                    let then = chain_after(&tts[i + 3..]);
                    let facts =
                        self.found
                            .calls
                            .entry(key(name.span()))
                            .or_insert_with(|| CallFacts {
                                method,
                                receiver: String::new(),
                                sent: false,
                                then: BTreeSet::new(),
                                in_macro: true,
                            });
                    facts.then.extend(then);
                }
                TokenTree::Ident(ty) if self.opts.builders.contains(&ty.to_string()) => {
                    if let [
                        TokenTree::Punct(a),
                        TokenTree::Punct(b),
                        TokenTree::Ident(f),
                        TokenTree::Group(g),
                        ..,
                    ] = &tts[i + 1..]
                        && a.as_char() == ':'
                        && b.as_char() == ':'
                        && f == "builder"
                        && g.delimiter() == Delimiter::Parenthesis
                    {
                        self.found
                            .builders
                            .insert((ty.span().start().line, ty.to_string()));
                    }
                }
                _ => {}
            }
        }
    }
}

/// Method names chained after a call in a token list, up to the end of its
/// expression (`,`, `;`, `=`, `=>`).
fn chain_after(tts: &[TokenTree]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tts.len() {
        match &tts[i] {
            TokenTree::Punct(p) if p.as_char() == '.' => {
                if let Some(TokenTree::Ident(name)) = tts.get(i + 1) {
                    out.push(name.to_string());
                }
                i += 2;
            }
            TokenTree::Punct(p) if matches!(p.as_char(), ',' | ';' | '=') => break,
            _ => i += 1,
        }
    }
    out
}

#[derive(Default)]
struct PatNames(Vec<String>);

impl<'ast> Visit<'ast> for PatNames {
    fn visit_pat_ident(&mut self, p: &'ast syn::PatIdent) {
        self.0.push(p.ident.to_string());
        visit::visit_pat_ident(self, p);
    }
}

/// Whether a `cfg` predicate holds only when `test` does.
fn requires_test(meta: &Meta) -> bool {
    match meta {
        Meta::Path(path) => path.is_ident("test"),
        Meta::List(list) => {
            let Ok(args) = list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
            else {
                return false;
            };
            if list.path.is_ident("all") {
                args.iter().any(requires_test)
            } else if list.path.is_ident("any") {
                !args.is_empty() && args.iter().all(requires_test)
            } else {
                false
            }
        }
        Meta::NameValue(_) => false,
    }
}

/// `#[cfg(test)]` (or a cfg requiring test), `#[test]`, `#[tokio::test]`.
fn test_only(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|attr| {
        let path = attr.path();
        if path.is_ident("cfg") {
            attr.parse_args::<Meta>()
                .is_ok_and(|meta| requires_test(&meta))
        } else {
            path.segments.last().is_some_and(|s| s.ident == "test")
        }
    })
}

fn item_attrs(item: &Item) -> &[Attribute] {
    match item {
        Item::Const(i) => &i.attrs,
        Item::Enum(i) => &i.attrs,
        Item::ExternCrate(i) => &i.attrs,
        Item::Fn(i) => &i.attrs,
        Item::ForeignMod(i) => &i.attrs,
        Item::Impl(i) => &i.attrs,
        Item::Macro(i) => &i.attrs,
        Item::Mod(i) => &i.attrs,
        Item::Static(i) => &i.attrs,
        Item::Struct(i) => &i.attrs,
        Item::Trait(i) => &i.attrs,
        Item::TraitAlias(i) => &i.attrs,
        Item::Type(i) => &i.attrs,
        Item::Union(i) => &i.attrs,
        Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

impl<'ast> Visit<'ast> for Lister<'_, 'ast> {
    fn visit_item(&mut self, item: &'ast Item) {
        let test = test_only(item_attrs(item));
        if let Item::Mod(m) = item
            && m.content.is_none()
        {
            if self.depth == 0 {
                let path =
                    m.attrs
                        .iter()
                        .find(|a| a.path().is_ident("path"))
                        .and_then(|a| match &a.meta {
                            Meta::NameValue(nv) => match &nv.value {
                                Expr::Lit(syn::ExprLit {
                                    lit: syn::Lit::Str(s),
                                    ..
                                }) => Some(s.value()),
                                _ => None,
                            },
                            _ => None,
                        });
                let name = m.ident.to_string().trim_start_matches("r#").to_owned();
                self.found.mods.push(ModDecl {
                    name,
                    path,
                    test_only: test,
                });
            }
            return;
        }
        if test {
            return;
        }
        match item {
            Item::Mod(_) => {
                self.depth += 1;
                visit::visit_item(self, item);
                self.depth -= 1;
            }
            Item::Const(c) => {
                self.record_const((&c.attrs, &c.vis), &c.ident, &c.ty, &c.expr);
                visit::visit_item(self, item);
            }
            _ => visit::visit_item(self, item),
        }
    }

    fn visit_impl_item(&mut self, item: &'ast ImplItem) {
        let attrs = match item {
            ImplItem::Const(i) => &i.attrs,
            ImplItem::Fn(i) => &i.attrs,
            ImplItem::Type(i) => &i.attrs,
            ImplItem::Macro(i) => &i.attrs,
            _ => return visit::visit_impl_item(self, item),
        };
        if test_only(attrs) {
            return;
        }
        if let ImplItem::Const(c) = item {
            self.record_const((&c.attrs, &c.vis), &c.ident, &c.ty, &c.expr);
        }
        visit::visit_impl_item(self, item);
    }

    fn visit_trait_item(&mut self, item: &'ast TraitItem) {
        let attrs = match item {
            TraitItem::Const(i) => &i.attrs,
            TraitItem::Fn(i) => &i.attrs,
            TraitItem::Type(i) => &i.attrs,
            TraitItem::Macro(i) => &i.attrs,
            _ => return visit::visit_trait_item(self, item),
        };
        if !test_only(attrs) {
            visit::visit_trait_item(self, item);
        }
    }

    // A function's body sees none of the enclosing function's locals.
    fn visit_item_fn(&mut self, f: &'ast ItemFn) {
        let outer = std::mem::take(&mut self.bindings);
        visit::visit_item_fn(self, f);
        self.bindings = outer;
    }

    fn visit_impl_item_fn(&mut self, f: &'ast ImplItemFn) {
        let outer = std::mem::take(&mut self.bindings);
        visit::visit_impl_item_fn(self, f);
        self.bindings = outer;
    }

    fn visit_trait_item_fn(&mut self, f: &'ast TraitItemFn) {
        let outer = std::mem::take(&mut self.bindings);
        visit::visit_trait_item_fn(self, f);
        self.bindings = outer;
    }

    fn visit_block(&mut self, block: &'ast Block) {
        self.visit_stmts(&block.stmts);
    }

    fn visit_expr_closure(&mut self, closure: &'ast ExprClosure) {
        let mark = self.bindings.len();
        for input in &closure.inputs {
            self.bind(input, None);
        }
        visit::visit_expr_closure(self, closure);
        self.bindings.truncate(mark);
    }

    fn visit_expr_method_call(&mut self, call: &'ast ExprMethodCall) {
        let name = call.method.to_string();
        if call.args.is_empty() {
            if self.opts.methods.contains(&name) {
                self.record(call);
            }
            if SENDS.contains(&&*name)
                && let Some(op) = self.operation(&call.receiver, self.bindings.len())
            {
                self.record(op).sent = true;
            }
        }
        let mut above = vec![name];
        let mut cur: &Expr = &call.receiver;
        loop {
            cur = match cur {
                Expr::MethodCall(inner) => {
                    if inner.args.is_empty() {
                        let then = self.found.then.entry(key(inner.method.span())).or_default();
                        then.extend(above.iter().cloned());
                    }
                    above.push(inner.method.to_string());
                    &inner.receiver
                }
                Expr::Await(e) => &e.base,
                Expr::Try(e) => &e.expr,
                Expr::Paren(e) => &e.expr,
                _ => break,
            };
        }
        visit::visit_expr_method_call(self, call);
    }

    fn visit_expr_call(&mut self, call: &'ast ExprCall) {
        if let Expr::Path(path) = &*call.func
            && let [.., ty, f] = path.path.segments.iter().collect::<Vec<_>>().as_slice()
            && f.ident == "builder"
            && self.opts.builders.contains(&ty.ident.to_string())
        {
            self.found
                .builders
                .insert((ty.ident.span().start().line, ty.ident.to_string()));
        }
        visit::visit_expr_call(self, call);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        let tokens = mac.tokens.clone();
        if let Ok(exprs) = Punctuated::<Expr, Token![,]>::parse_terminated.parse2(tokens.clone()) {
            let mut sub = self.sub();
            for expr in &exprs {
                sub.visit_expr(expr);
            }
        } else if let Ok(stmts) = Block::parse_within.parse2(tokens.clone()) {
            self.sub().visit_stmts(&stmts);
        } else {
            self.scan(tokens);
        }
    }
}

struct Report {
    file: String,
    error: Option<String>,
    found: Found,
    canonical: PathBuf,
    test_only: bool,
}

fn list(file: &str, opts: &Options) -> Report {
    let mut report = Report {
        file: file.to_owned(),
        error: None,
        found: Found::default(),
        canonical: PathBuf::new(),
        test_only: false,
    };
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    };
    match syn::parse_file(&text) {
        Ok(ast) => {
            let mut lister = Lister {
                opts,
                found: &mut report.found,
                bindings: Vec::new(),
                in_macro: false,
                depth: 0,
            };
            lister.visit_file(&ast);
        }
        Err(e) => {
            let at = e.span().start();
            report.error = Some(format!("line {}:{}: {e}", at.line, at.column + 1));
        }
    }
    report.canonical = std::fs::canonicalize(file).unwrap_or_else(|_| PathBuf::from(file));
    report
}

/// Where `mod name;` in `file` may live.
fn module_files(file: &Path, decl: &ModDecl) -> Vec<PathBuf> {
    let parent = file.parent().unwrap_or(Path::new("."));
    if let Some(path) = &decl.path {
        return vec![parent.join(path)];
    }
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let crate_root = matches!(name, "lib.rs" | "main.rs")
        || parent.file_name().is_some_and(|d| d == "bin")
            && parent
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|d| d == "src");
    let dir = if name == "mod.rs" || crate_root {
        parent.to_path_buf()
    } else {
        parent.join(file.file_stem().unwrap_or_default())
    };
    vec![
        dir.join(format!("{}.rs", decl.name)),
        dir.join(&decl.name).join("mod.rs"),
    ]
}

/// Marks the files that are test-only modules: declared `#[cfg(test)] mod x;`,
/// or declared by such a file.
fn mark_test_only(reports: &mut [Report]) {
    let mut test_files: HashSet<PathBuf> = HashSet::new();
    loop {
        let mut grew = false;
        for r in reports.iter() {
            let file_is_test = test_files.contains(&r.canonical);
            for decl in &r.found.mods {
                if !(decl.test_only || file_is_test) {
                    continue;
                }
                for candidate in module_files(&r.canonical, decl) {
                    if let Ok(path) = std::fs::canonicalize(candidate) {
                        grew |= test_files.insert(path);
                    }
                }
            }
        }
        if !grew {
            break;
        }
    }
    for r in reports.iter_mut() {
        r.test_only = test_files.contains(&r.canonical);
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_list<I: IntoIterator<Item = String>>(items: I) -> String {
    format!("[{}]", items.into_iter().collect::<Vec<_>>().join(", "))
}

fn to_json(reports: &[Report]) -> String {
    let files = reports.iter().map(|r| {
        let error = r.error.as_deref().map_or("null".to_owned(), json_str);
        let (calls, builders, consts) = if r.test_only || r.error.is_some() {
            (String::from("[]"), String::from("[]"), String::from("[]"))
        } else {
            let calls = json_list(r.found.calls.iter().map(|(&(line, column), c)| {
                let mut then = c.then.clone();
                then.extend(r.found.then.get(&(line, column)).into_iter().flatten().cloned());
                format!(
                    "{{\"line\": {line}, \"column\": {column}, \"method\": {}, \"receiver\": {}, \"sent\": {}, \
                     \"then\": {}, \"in_macro\": {}}}",
                    json_str(&c.method),
                    json_str(&c.receiver),
                    c.sent,
                    json_list(then.iter().map(|m| json_str(m))),
                    c.in_macro,
                )
            }));
            let builders = json_list(
                r.found.builders.iter().map(|(line, ty)| format!("{{\"line\": {line}, \"type\": {}}}", json_str(ty))),
            );
            let consts = json_list(r.found.consts.iter().map(|c| {
                format!(
                    "{{\"line\": {}, \"name\": {}, \"value\": {}, \"public\": {}}}",
                    c.line,
                    json_str(&c.name),
                    c.value.as_deref().map_or("null".to_owned(), json_str),
                    c.public
                )
            }));
            (calls, builders, consts)
        };
        format!(
            "{{\"file\": {}, \"error\": {error}, \"test_only\": {}, \"calls\": {calls}, \"builders\": {builders}, \
             \"consts\": {consts}}}",
            json_str(&r.file),
            r.test_only
        )
    });
    format!("{{\"files\": {}}}\n", json_list(files))
}

fn main() -> ExitCode {
    let mut opts = Options {
        methods: HashSet::new(),
        builders: HashSet::new(),
    };
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let set = match arg.as_str() {
            "--methods" => &mut opts.methods,
            "--builders" => &mut opts.builders,
            "--" => {
                files.extend(args.by_ref());
                break;
            }
            _ if arg.starts_with("--") => {
                eprintln!("sdk-calls: unknown option {arg}");
                return ExitCode::from(2);
            }
            _ => {
                files.push(arg);
                continue;
            }
        };
        let Some(names) = args.next() else {
            eprintln!("sdk-calls: {arg} needs a comma-separated list");
            return ExitCode::from(2);
        };
        set.extend(
            names
                .split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
        );
    }
    if files.is_empty() {
        eprintln!("usage: sdk-calls [--methods a,b,..] [--builders T,U,..] FILE...");
        return ExitCode::from(2);
    }
    let mut reports: Vec<Report> = files.iter().map(|f| list(f, &opts)).collect();
    mark_test_only(&mut reports);
    print!("{}", to_json(&reports));
    ExitCode::SUCCESS
}
