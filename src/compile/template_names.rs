//! The names a template calls on, checked when the transform loads.
//!
//! minijinja resolves a filter (`| lower`), a test (`is defined`) or a
//! function (`range(3)`) only when the template runs, so a misspelt one
//! (`| lowercase`) would pass `xf check` and fail every record. Here the
//! template's syntax tree (minijinja's `unstable_machinery`) is walked for
//! every name used that way, including those named as strings to `map`,
//! `select`, `reject`, `selectattr` and `rejectattr`, and each is looked up
//! in the environment. Names the template binds itself (macros, `set`,
//! `for`, imports) are callable too.
//!
//! The same walk finds each `~` (minijinja's string concatenation), which
//! xf refuses: it prints a boolean or null in minijinja's own spelling
//! (`True`, `None`) through the value's `Display`, which no environment
//! setting reaches, where every other way of rendering follows xf's null
//! model (`true`, empty text).
//!
//! And it finds where a template can make a list with an operator
//! (`a + b`, `a * n`), for [`guard_sequences`].

use std::collections::HashSet;
use std::ops::Range;

use minijinja::machinery::ast::{BinOpKind, CallArg, Expr, Stmt};
use minijinja::machinery::Span;

use crate::value::template::SEQUENCE_GUARD;

/// What a template calls a name as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Filter,
    Test,
    Function,
    /// The `~` operator, refused wherever it is (its `name` is `~`).
    Concat,
}

impl NameKind {
    /// The word for it in a message: `filter`, `test`, `function`.
    pub fn word(self) -> &'static str {
        match self {
            NameKind::Filter => "filter",
            NameKind::Test => "test",
            NameKind::Function => "function",
            NameKind::Concat => "operator",
        }
    }
}

/// A name used as a filter, test or function, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameUse {
    pub kind: NameKind,
    pub name: String,
    /// Byte range of the name in the template's source.
    pub range: Range<usize>,
}

/// Every filter, test and function name `source` uses, and the names it
/// binds (which may then be called). `None` when it does not parse, which
/// compiling it reports.
pub fn names_used(
    source: &str,
    syntax: minijinja::syntax::SyntaxConfig,
) -> Option<(Vec<NameUse>, HashSet<String>)> {
    let tree = minijinja::machinery::parse(source, "<template>", syntax).ok()?;
    let mut walk = Walk::new(source);
    walk.stmt(&tree);
    Some((walk.uses, walk.bound))
}

/// Every bare name `source` reads, which at a template's top are record
/// fields unless a function, a variable, a lookup or `request` answers them;
/// `None` when the template can see more than that (it reaches another
/// template, or calls `debug()`), or does not parse.
pub fn names_read(
    source: &str,
    syntax: minijinja::syntax::SyntaxConfig,
) -> Option<HashSet<String>> {
    let tree = minijinja::machinery::parse(source, "<template>", syntax).ok()?;
    let mut walk = Walk::new(source);
    walk.stmt(&tree);
    (!walk.sees_everything).then_some(walk.read)
}

/// Every path of names `source` reads inside `request`, and where; none
/// when it does not parse or binds `request` itself (`{% set request = … %}`).
pub fn request_paths(
    source: &str,
    syntax: minijinja::syntax::SyntaxConfig,
) -> Vec<(Vec<String>, Range<usize>)> {
    let Ok(tree) = minijinja::machinery::parse(source, "<template>", syntax) else {
        return Vec::new();
    };
    let mut walk = Walk::new(source);
    walk.stmt(&tree);
    match walk.bound.contains(crate::value::REQUEST_NAME) {
        true => Vec::new(),
        false => walk.request_paths,
    }
}

/// Names that minijinja makes callable where they are used: `caller()` in a
/// macro called by `{% call %}`, `super()` in a block, `loop()` in a
/// recursive loop.
pub const ALWAYS_CALLABLE: &[&str] = &["caller", "super", "loop"];

/// A template's text with every outermost sum and product (`a + b + c`,
/// `a * n`) written as `(a + b + c)|__xf_sequence`, and where that text was
/// added, so that positions in it can be told in the author's text.
///
/// Why: minijinja 3.1 joins two lists with `+` lazily and charges no fuel
/// for it (nor for `list * n`), so a template that adds a list to itself in a
/// loop holds 2^30 items after 30 passes, and whatever reads them (a filter,
/// printing, minijinja's own copy past 32 joins) runs without bound. With the
/// guard, a list an operator makes is checked against the fuel left and
/// built, so the next addition starts from a list that has been paid for.
/// Operands of the same sum are not guarded apart: a sum of N parts is at
/// most N times its largest part, and the whole is checked.
pub struct Guarded {
    pub text: String,
    /// (offset in the author's text, bytes added there), in order.
    pub added: Vec<(usize, usize)>,
}

impl Guarded {
    /// A position in the guarded text as a position in the author's: text
    /// the guard added counts as the place it was added at.
    pub fn original(&self, at: usize) -> usize {
        let mut shift = 0;
        for &(offset, length) in &self.added {
            if at < offset + shift {
                break;
            }
            if at < offset + shift + length {
                return offset;
            }
            shift += length;
        }
        at - shift
    }
}

/// `source` guarded (see [`Guarded`]); `None` when it has no sum or product,
/// or does not parse (which compiling it reports, in the author's text).
pub fn guard_sequences(source: &str, syntax: minijinja::syntax::SyntaxConfig) -> Option<Guarded> {
    let tree = minijinja::machinery::parse(source, "<template>", syntax).ok()?;
    let mut walk = Walk::new(source);
    walk.stmt(&tree);
    if walk.sums.is_empty() {
        return None;
    }
    let close = format!(")|{SEQUENCE_GUARD}");
    // A sum can hold another only below a call, an item, a subscript (`a +
    // f(b + c)`), so ranges nest or are apart. At one place, closing marks go
    // first, the inner sum's first; then opening marks, the outer sum's first.
    // (place, whether it opens, the other end reversed), and the mark.
    type Mark<'m> = ((usize, bool, std::cmp::Reverse<usize>), &'m str);
    let mut marks: Vec<Mark<'_>> = Vec::new();
    for range in &walk.sums {
        marks.push(((range.start, true, std::cmp::Reverse(range.end)), "("));
        marks.push(((range.end, false, std::cmp::Reverse(range.start)), &close));
    }
    marks.sort_by_key(|&(key, _)| key);
    let mut text = String::with_capacity(source.len() + marks.len() * close.len());
    let mut added = Vec::with_capacity(marks.len());
    let mut last = 0;
    for ((at, _, _), mark) in marks {
        text.push_str(source.get(last..at)?);
        text.push_str(mark);
        added.push((at, mark.len()));
        last = at;
    }
    text.push_str(source.get(last..)?);
    Some(Guarded { text, added })
}

struct Walk<'s> {
    /// The template's text, to find a `~` between its operands.
    source: &'s str,
    uses: Vec<NameUse>,
    bound: HashSet<String>,
    /// The byte ranges of sums and products that are no operand of another.
    sums: Vec<Range<usize>>,
    /// Whether the expression walked next is an operand of a sum or product.
    in_sum: bool,
    /// Every bare name the template reads (`detail` in `{{ detail.severity }}`):
    /// at its top, a name is a record field unless something else answers it.
    read: HashSet<String>,
    /// The template can see more than its names: it reaches another template
    /// (`include`, `import`, `extends`), or prints the whole context (`debug()`).
    sees_everything: bool,
    /// Each path read inside `request` (`request.headers.x` reads
    /// `headers`, `x`), and where the whole expression is.
    request_paths: Vec<(Vec<String>, Range<usize>)>,
}

impl<'s> Walk<'s> {
    fn new(source: &'s str) -> Walk<'s> {
        Walk {
            source,
            uses: Vec::new(),
            bound: HashSet::new(),
            sums: Vec::new(),
            in_sum: false,
            read: HashSet::new(),
            sees_everything: false,
            request_paths: Vec::new(),
        }
    }

    fn stmts(&mut self, stmts: &[Stmt<'_>]) {
        for stmt in stmts {
            self.stmt(stmt);
        }
    }

    fn stmt(&mut self, stmt: &Stmt<'_>) {
        match stmt {
            Stmt::Template(t) => self.stmts(&t.children),
            Stmt::EmitExpr(e) => self.expr(&e.expr),
            Stmt::EmitRaw(_) => {}
            Stmt::ForLoop(f) => {
                self.bind(&f.target);
                self.expr(&f.iter);
                self.opt(f.filter_expr.as_ref());
                self.stmts(&f.body);
                self.stmts(&f.else_body);
            }
            Stmt::IfCond(i) => {
                self.expr(&i.expr);
                self.stmts(&i.true_body);
                self.stmts(&i.false_body);
            }
            Stmt::WithBlock(w) => {
                for (target, value) in &w.assignments {
                    self.bind(target);
                    self.expr(value);
                }
                self.stmts(&w.body);
            }
            Stmt::Set(s) => {
                self.bind(&s.target);
                self.expr(&s.expr);
            }
            Stmt::SetBlock(s) => {
                self.bind(&s.target);
                self.opt(s.filter.as_ref());
                self.stmts(&s.body);
            }
            Stmt::AutoEscape(a) => {
                self.expr(&a.enabled);
                self.stmts(&a.body);
            }
            Stmt::FilterBlock(f) => {
                self.expr(&f.filter);
                self.stmts(&f.body);
            }
            Stmt::Block(b) => self.stmts(&b.body),
            Stmt::Import(i) => {
                self.sees_everything = true;
                self.expr(&i.expr);
                self.bind(&i.name);
            }
            Stmt::FromImport(i) => {
                self.sees_everything = true;
                self.expr(&i.expr);
                for (name, alias) in &i.names {
                    self.bind(alias.as_ref().unwrap_or(name));
                }
            }
            Stmt::Extends(e) => {
                self.sees_everything = true;
                self.expr(&e.name);
            }
            Stmt::Include(i) => {
                self.sees_everything = true;
                self.expr(&i.name);
            }
            Stmt::Macro(m) => {
                self.bound.insert(m.name.to_string());
                self.macro_parts(&m.args, &m.defaults, &m.body);
            }
            Stmt::CallBlock(c) => {
                self.call(&c.call.expr, &c.call.args);
                let m = &c.macro_decl;
                self.macro_parts(&m.args, &m.defaults, &m.body);
            }
            Stmt::Do(d) => self.call(&d.call.expr, &d.call.args),
        }
    }

    fn macro_parts(&mut self, args: &[Expr<'_>], defaults: &[Expr<'_>], body: &[Stmt<'_>]) {
        for arg in args {
            self.bind(arg);
        }
        for default in defaults {
            self.expr(default);
        }
        self.stmts(body);
    }

    /// A name (or tuple of names) that a statement assigns.
    fn bind(&mut self, target: &Expr<'_>) {
        match target {
            Expr::Var(v) => {
                self.bound.insert(v.id.to_string());
            }
            Expr::Tuple(t) => t.items.iter().for_each(|item| self.bind(item)),
            Expr::List(l) => l.items.iter().for_each(|item| self.bind(item)),
            // `ns.attr` assigns into a namespace: nothing new is bound.
            other => self.expr(other),
        }
    }

    fn opt(&mut self, expr: Option<&Expr<'_>>) {
        if let Some(expr) = expr {
            self.expr(expr);
        }
    }

    fn expr(&mut self, expr: &Expr<'_>) {
        // Only a sum's own operands are part of it: below them (a call's
        // argument, an item of a list) a sum is an expression of its own, whose
        // value can be kept (`m(ns.x + ns.x)` can set it in a namespace).
        let operand = std::mem::take(&mut self.in_sum);
        match expr {
            Expr::Var(v) => {
                self.read.insert(v.id.to_string());
            }
            Expr::Const(_) => {}
            Expr::Slice(s) => {
                self.expr(&s.expr);
                self.opt(s.start.as_ref());
                self.opt(s.stop.as_ref());
                self.opt(s.step.as_ref());
            }
            Expr::UnaryOp(u) => self.expr(&u.expr),
            Expr::BinOp(b) => {
                if matches!(b.op, BinOpKind::Concat) {
                    self.concat(&b.left, &b.right);
                }
                let sum = matches!(b.op, BinOpKind::Add | BinOpKind::Mul);
                if sum && !operand {
                    let span = b.span();
                    self.sums
                        .push(span.start_offset as usize..span.end_offset as usize);
                }
                self.in_sum = sum;
                self.expr(&b.left);
                self.in_sum = sum;
                self.expr(&b.right);
                self.in_sum = false;
            }
            Expr::Compare(c) => {
                self.expr(&c.expr);
                c.ops.iter().for_each(|op| self.expr(&op.expr));
            }
            Expr::IfExpr(i) => {
                self.expr(&i.test_expr);
                self.expr(&i.true_expr);
                self.opt(i.false_expr.as_ref());
            }
            Expr::Filter(f) => {
                self.used(NameKind::Filter, f.name, f.span());
                self.opt(f.expr.as_ref());
                self.named_by_string(f.name, &f.args);
                self.args(&f.args);
            }
            Expr::Test(t) => {
                self.used(NameKind::Test, t.name, t.span());
                self.expr(&t.expr);
                self.args(&t.args);
            }
            Expr::GetAttr(_) | Expr::GetItem(_) if self.request_path(expr) => {}
            Expr::GetAttr(g) => self.expr(&g.expr),
            Expr::GetItem(g) => {
                self.expr(&g.expr);
                self.expr(&g.subscript_expr);
            }
            Expr::Call(c) => self.call(&c.expr, &c.args),
            Expr::List(l) => l.items.iter().for_each(|item| self.expr(item)),
            Expr::Tuple(t) => t.items.iter().for_each(|item| self.expr(item)),
            Expr::Map(m) => {
                m.keys.iter().for_each(|key| self.expr(key));
                m.values.iter().for_each(|value| self.expr(value));
            }
        }
    }

    /// Records `expr` when it is a path of names inside `request`
    /// (`request.headers.x`, `request.headers["x"]`); true when it was.
    fn request_path(&mut self, expr: &Expr<'_>) -> bool {
        let mut names = Vec::new();
        let mut at = expr;
        loop {
            match at {
                Expr::GetAttr(g) => {
                    names.push(g.name.to_string());
                    at = &g.expr;
                }
                Expr::GetItem(g) => match &g.subscript_expr {
                    Expr::Const(c) if c.value.as_str().is_some() => {
                        names.push(c.value.as_str().unwrap_or_default().to_string());
                        at = &g.expr;
                    }
                    _ => return false,
                },
                Expr::Var(v) if v.id == crate::value::REQUEST_NAME => break,
                _ => return false,
            }
        }
        names.reverse();
        let span = expr.span();
        self.read.insert(crate::value::REQUEST_NAME.to_string());
        self.request_paths
            .push((names, span.start_offset as usize..span.end_offset as usize));
        true
    }

    fn call(&mut self, callee: &Expr<'_>, args: &[CallArg<'_>]) {
        match callee {
            Expr::Var(var) => {
                self.used(NameKind::Function, var.id, var.span());
                // A field of that name is read if no function answers it.
                self.read.insert(var.id.to_string());
                self.sees_everything |= var.id == "debug";
            }
            // A method (`x.items()`), a block (`self.body()`), a computed callee.
            other => self.expr(other),
        }
        self.args(args);
    }

    fn args(&mut self, args: &[CallArg<'_>]) {
        for arg in args {
            match arg {
                CallArg::Pos(e)
                | CallArg::Kwarg(_, e)
                | CallArg::PosSplat(e)
                | CallArg::KwargSplat(e) => self.expr(e),
            }
        }
    }

    /// The filters that take another filter's or a test's name as a string:
    /// `map("upper")`, `select("odd")`, `selectattr("x", "eq", 1)`.
    fn named_by_string(&mut self, filter: &str, args: &[CallArg<'_>]) {
        let positional: Vec<&Expr<'_>> = args
            .iter()
            .filter_map(|arg| match arg {
                CallArg::Pos(e) => Some(e),
                _ => None,
            })
            .collect();
        let named = match filter {
            "map"
                if !args
                    .iter()
                    .any(|a| matches!(a, CallArg::Kwarg("attribute", _))) =>
            {
                positional.first().map(|e| (NameKind::Filter, *e))
            }
            "select" | "reject" => positional.first().map(|e| (NameKind::Test, *e)),
            "selectattr" | "rejectattr" => positional.get(1).map(|e| (NameKind::Test, *e)),
            _ => None,
        };
        if let Some((kind, Expr::Const(c))) = named {
            if let Some(name) = c.value.as_str() {
                // Inside the quotes.
                let span = c.span();
                let start = span.start_offset as usize + 1;
                self.uses.push(NameUse {
                    kind,
                    name: name.to_string(),
                    range: start..start + name.len(),
                });
            }
        }
    }

    /// A `~` between `left` and `right`: the first `~` after the left
    /// operand ends (brackets and spaces may stand between).
    fn concat(&mut self, left: &Expr<'_>, right: &Expr<'_>) {
        let from = left.span().end_offset as usize;
        let to = (right.span().start_offset as usize).max(from);
        let at = self
            .source
            .get(from..to)
            .and_then(|between| between.find('~'))
            .map_or(from, |offset| from + offset);
        self.uses.push(NameUse {
            kind: NameKind::Concat,
            name: "~".to_string(),
            range: at..at + 1,
        });
    }

    fn used(&mut self, kind: NameKind, name: &str, span: Span) {
        let start = span.start_offset as usize;
        self.uses.push(NameUse {
            kind,
            name: name.to_string(),
            range: start..start + name.len(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guarded(source: &str) -> Option<Guarded> {
        guard_sequences(source, minijinja::syntax::SyntaxConfig::default())
    }

    /// Each outermost sum or product is wrapped once, a sum below a call
    /// on its own; positions in the guarded text map back to the author's.
    #[test]
    fn sums_and_products_are_guarded_and_positions_map_back() {
        let source = "{% set ns.x = ns.x + ns.x + [1] %}{{ a * 2 + f(b + c) }}{{ d - e }}";
        let guard = guarded(source).unwrap();
        assert_eq!(
            guard.text,
            "{% set ns.x = (ns.x + ns.x + [1])|__xf_sequence %}\
             {{ (a * 2 + f((b + c)|__xf_sequence))|__xf_sequence }}{{ d - e }}"
        );
        for word in ["ns.x + ns.x", "f(", "b + c", "d - e", "}}"] {
            let author = source.find(word).unwrap();
            let compiled = guard.text.find(word).unwrap();
            assert_eq!(guard.original(compiled), author, "{word}");
        }
        // Added text counts as the place it was added at.
        let open = guard.text.find("(ns.x").unwrap();
        assert_eq!(guard.original(open), source.find("ns.x + ns.x").unwrap());
        assert_eq!(guard.original(guard.text.len()), source.len());
    }

    #[test]
    fn templates_without_sums_or_that_do_not_parse_are_left_alone() {
        assert!(guarded("{{ a ~ b }}{% for x in y %}{{ x - 1 }}{% endfor %}").is_none());
        assert!(guarded("{{ a + }}").is_none());
    }
}
