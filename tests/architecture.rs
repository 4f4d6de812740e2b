//! Who may import whom (design/README.md §3), checked on the source: every `crate::…`, `super::…` and `self::…` path
//! of every file under `src/` (use trees included, comments and string literals ignored) is resolved to the module it
//! names, giving the graph of top-level modules and, inside each folder module, the graph of its submodules. The test
//! fails, naming the file and line, on an import the layer table does not allow, on a named rule (agents never import
//! the sandbox, runner, demo or cli; `alert` never imports `agents`; `config` imports only `model`, `redact` and
//! `logging`; `model` never imports `state`; agents never name a concrete store), on an environment read outside
//! `config` and `main`, and on any import cycle. The checker itself is tested on small synthetic trees below, so a
//! broken rule really fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers: each top-level module and the top-level modules it may import (design/README.md §3). A new top-level
/// module must be added here and to the table in the design.
const LAYERS: &[(&str, &[&str])] = &[
    ("redact", &[]),
    ("clock", &[]),
    ("model", &["redact"]),
    ("logging", &["model", "redact"]),
    ("config", &["model", "redact", "logging"]),
    ("state", &["clock", "config", "logging", "model", "redact"]),
    (
        "procman",
        &["clock", "config", "logging", "model", "redact"],
    ),
    ("maint", &["clock", "config", "logging", "model", "redact"]),
    (
        "store",
        &[
            "alert", "clock", "config", "logging", "model", "redact", "state",
        ],
    ),
    (
        "vizora",
        &[
            "clock", "config", "logging", "model", "redact", "state", "store",
        ],
    ),
    (
        "alert",
        &["clock", "config", "logging", "model", "redact", "state"],
    ),
    ("sandbox", &["clock", "logging", "model", "redact"]),
    (
        "effects",
        &["alert", "clock", "logging", "model", "redact", "state"],
    ),
    (
        "agents",
        &[
            "alert", "clock", "config", "effects", "logging", "maint", "model", "procman",
            "redact", "state", "vizora",
        ],
    ),
    (
        "runtime",
        &[
            "agents", "alert", "clock", "config", "logging", "maint", "model", "procman", "redact",
            "state", "store", "vizora",
        ],
    ),
    (
        "runner",
        &[
            "agents", "alert", "clock", "config", "logging", "maint", "model", "procman", "redact",
            "runtime", "state", "store", "vizora",
        ],
    ),
    (
        "cli",
        &[
            "agents", "alert", "clock", "config", "logging", "model", "redact", "state",
        ],
    ),
    (
        "demo",
        &[
            "agents", "alert", "cli", "clock", "config", "logging", "model", "procman", "redact",
            "runner", "runtime", "sandbox", "state", "store", "vizora",
        ],
    ),
    // Test doubles (feature `test-util`): over the ports, never used by the product.
    (
        "testing",
        &["alert", "clock", "model", "procman", "sandbox"],
    ),
];

/// The named rules of design/README.md §3: `(module, modules it never imports, why)`. They hold even if the layer
/// table above is loosened by mistake.
const NEVER: &[(&str, &[&str], &str)] = &[
    (
        "agents",
        &[
            "sandbox",
            "server",
            "runner",
            "runtime",
            "demo",
            "cli",
            "daemon",
            "scheduler",
            "main",
        ],
        "agents are logic over ports: they never import the sandbox, the server, the runner, the runtime, the demo or \
         the cli",
    ),
    (
        "alert",
        &["agents"],
        "alert never imports agents (what agents raise is defined in alert::sink)",
    ),
    (
        "model",
        &["state"],
        "model is plain data; the state store reads and writes it, not the other way round",
    ),
    (
        "effects",
        &["agents", "runner", "sandbox"],
        "the effects gate wraps ports for agents; it knows no agent",
    ),
];

/// `(module, the only modules it may import, why)`.
const ONLY: &[(&str, &[&str], &str)] = &[(
    "config",
    &["model", "redact", "logging"],
    "config is built first and validated once; it imports nothing but model, redact and logging",
)];

/// Paths agents never name: the concrete stores (agents see the store traits of `store`, never `store::file` or the
/// file types behind them).
const AGENT_FORBIDDEN_PATHS: &[&[&str]] = &[
    &["store", "file"],
    &["store", "MemoryBudgetStore"],
    &["state", "StateStore"],
    &["state", "lock"],
    &["vizora", "RateBudget"],
    &["vizora", "budget", "RateBudget"],
    &["vizora", "Client"],
    &["alert", "Outbox"],
    &["alert", "OutboxFile"],
    &["alert", "outbox", "Outbox"],
    &["alert", "outbox", "OutboxFile"],
];

/// Known breaches of [`AGENT_FORBIDDEN_PATHS`], each `(file, path prefix, why it is still there)`. An entry that no
/// longer matches anything fails the test, so the list only shrinks.
const AGENT_PATH_EXCEPTIONS: &[(&str, &[&str], &str)] = &[
    (
        "src/agents/health_guardian/probes.rs",
        &["vizora", "budget", "RateBudget"],
        "health-guardian builds its own rate budget; it moves into the Runtime (issue 10)",
    ),
    (
        "src/agents/health_guardian/mod.rs",
        &["vizora", "Client"],
        "`Client::budget_from_config`, same as above",
    ),
    (
        "src/agents/content_lifecycle/detail_cache/file.rs",
        &["state", "lock"],
        "the detail cache is itself a file store inside agents; it moves to store/file behind DetailCache (issue 10)",
    ),
];

/// Files that may read the process environment: configuration is read once, in `config`, and the binary's `main`
/// hands it on (design/README.md §3, agents.md 8).
const ENV_READERS: &[&str] = &["src/config/", "src/main.rs"];

/// Submodule cycles that exist today, each `(folder module, its members sorted)`; must match exactly, so a new cycle
/// or a grown one fails, and a fixed one must be removed from here.
const KNOWN_CYCLES: &[(&str, &[&str])] = &[];

// ------------------------------------------------------------------------------------------------------------------
// The checker.

/// A reference to a module path: where it is and the absolute path it names (crate root first).
#[derive(Debug, Clone)]
struct Ref {
    file: String,
    line: usize,
    path: Vec<String>,
}

/// One source file: its path (e.g. `src/agents/mod.rs`) and its module path (`["agents"]`).
#[derive(Debug)]
struct Source {
    file: String,
    module: Vec<String>,
    stripped: String,
}

/// The module path of `file` relative to `src/`: `lib.rs` → `[]`, `main.rs` → `["main"]` (the binary), `a/mod.rs`
/// → `["a"]`, `a/b.rs` → `["a", "b"]`.
fn module_of(rel: &str) -> Vec<String> {
    let rel = rel.strip_prefix("src/").unwrap_or(rel);
    let rel = rel.strip_suffix(".rs").unwrap_or(rel);
    let mut parts: Vec<String> = rel.split('/').map(String::from).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The text with comments, string and char literals blanked (newlines kept, so line numbers stay).
fn strip(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |ch: char| if ch == '\n' { '\n' } else { ' ' };
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    while i < c.len() {
        let prev_ident = i > 0 && ident(c[i - 1]);
        if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(c[i]));
                    i += 1;
                }
            }
        } else if !prev_ident && (c[i] == 'r' || (c[i] == 'b' && c.get(i + 1) == Some(&'r'))) && {
            let mut j = i + if c[i] == 'b' { 2 } else { 1 };
            while c.get(j) == Some(&'#') {
                j += 1;
            }
            c.get(j) == Some(&'"')
        } {
            // Raw string: r"…", r#"…"#, br#"…"#.
            let start = i;
            i += if c[i] == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while c[i] == '#' {
                hashes += 1;
                i += 1;
            }
            i += 1;
            while i < c.len() {
                if c[i] == '"' && (1..=hashes).all(|k| c.get(i + k) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
            out.extend(c[start..i].iter().map(|&ch| blank(ch)));
        } else if c[i] == '"' {
            out.push(' ');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < c.len() {
                    out.push(blank(c[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c[i] == '\'' && (c.get(i + 1) == Some(&'\\') || c.get(i + 2) == Some(&'\'')) {
            // A char literal ('x', '\n', '\u{1F600}', '\''), not a lifetime ('a).
            out.push(' ');
            i += 1;
            if c[i] == '\\' {
                out.push(' ');
                i += 1;
            }
            while i < c.len() && c[i] != '\'' {
                out.push(' ');
                i += 1;
            }
            out.push(' ');
            i += 1;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Path, // `::`
    Open,
    Close,
    Comma,
    Star,
    Other,
}

fn tokens(stripped: &str) -> Vec<(Tok, usize)> {
    let mut out = Vec::new();
    for (n, line) in stripped.lines().enumerate() {
        let c: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < c.len() {
            let ch = c[i];
            if ch.is_alphabetic() || ch == '_' || ch == '$' {
                let s = i;
                i += 1;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
                let word: String = c[s..i].iter().collect();
                out.push((Tok::Ident(word.trim_start_matches('$').to_string()), n + 1));
                continue;
            }
            let t = match ch {
                ':' if c.get(i + 1) == Some(&':') => {
                    i += 1;
                    Tok::Path
                }
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                '*' => Tok::Star,
                c if c.is_whitespace() => {
                    i += 1;
                    continue;
                }
                _ => Tok::Other,
            };
            out.push((t, n + 1));
            i += 1;
        }
    }
    out
}

/// Parses a path or use tree at `toks[i]` below `prefix`, pushing every leaf path; returns the next index.
fn parse_tree(
    toks: &[(Tok, usize)],
    mut i: usize,
    mut prefix: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    loop {
        match toks.get(i).map(|t| &t.0) {
            Some(Tok::Ident(s)) => {
                if s != "self" {
                    prefix.push(s.clone());
                }
                i += 1;
                if toks.get(i).map(|t| &t.0) == Some(&Tok::Path) {
                    i += 1;
                    continue;
                }
                out.push(prefix);
                return i;
            }
            Some(Tok::Open) => {
                i += 1;
                loop {
                    match toks.get(i).map(|t| &t.0) {
                        None => return i,
                        Some(Tok::Close) => return i + 1,
                        Some(Tok::Comma) => i += 1,
                        Some(Tok::Ident(_) | Tok::Open | Tok::Star) => {
                            i = parse_tree(toks, i, prefix.clone(), out);
                            // `X as Y`: skip to the next item.
                            while let Some(t) = toks.get(i).map(|t| &t.0) {
                                if matches!(t, Tok::Comma | Tok::Close) {
                                    break;
                                }
                                i += 1;
                            }
                        }
                        Some(_) => i += 1,
                    }
                }
            }
            _ => {
                out.push(prefix);
                return i;
            }
        }
    }
}

/// Every module path `src` names, resolved from its module `module` (inline `mod x { … }` blocks included).
fn refs_of(file: &str, module: &[String], stripped: &str) -> Vec<Ref> {
    let toks = tokens(stripped);
    let mut out = Vec::new();
    // Inline modules: (name, brace depth at which it closes).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        let (t, line) = (&toks[i].0, toks[i].1);
        match t {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            Tok::Ident(k) if k == "mod" => {
                if let (Some((Tok::Ident(name), _)), Some((Tok::Open, _))) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    inline.push((name.clone(), depth));
                    depth += 1;
                    i += 3;
                    continue;
                }
            }
            Tok::Ident(k)
                if matches!(k.as_str(), "crate" | "vizora_ops" | "super" | "self")
                    && toks.get(i + 1).map(|t| &t.0) == Some(&Tok::Path)
                    // `a::self::b` does not start a path; `x.self` is not a path either.
                    && !(i > 0 && toks[i - 1].0 == Tok::Path) =>
            {
                let here: Vec<String> = module
                    .iter()
                    .cloned()
                    .chain(inline.iter().map(|(n, _)| n.clone()))
                    .collect();
                let mut base = match k.as_str() {
                    // The binary names the library `vizora_ops::`; its own `crate::` is itself.
                    "vizora_ops" => Vec::new(),
                    "crate" if module.first().is_some_and(|m| m == "main") => here.clone(),
                    "crate" => Vec::new(),
                    _ => here.clone(),
                };
                if k == "super" {
                    base.pop();
                }
                let mut j = i + 2;
                // `super::super::…`
                while let (Some((Tok::Ident(s), _)), Some((Tok::Path, _))) =
                    (toks.get(j), toks.get(j + 1))
                {
                    if s != "super" {
                        break;
                    }
                    base.pop();
                    j += 2;
                }
                let mut paths = Vec::new();
                let next = parse_tree(&toks, j, base, &mut paths);
                for p in paths {
                    out.push(Ref {
                        file: file.to_string(),
                        line,
                        path: p,
                    });
                }
                // Braces inside a use group are balanced and consumed by parse_tree.
                i = next.max(i + 1);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The graph of one level: node → node → where the edge comes from.
type Graph = BTreeMap<String, BTreeMap<String, Vec<(String, usize)>>>;

struct Analysis {
    sources: Vec<Source>,
    refs: Vec<Ref>,
    /// Top-level modules (files and folders directly under `src/`, `main` included).
    top: BTreeSet<String>,
}

fn analyze(files: &[(String, String)]) -> Analysis {
    let mut sources = Vec::new();
    let mut refs = Vec::new();
    let mut top = BTreeSet::new();
    for (file, text) in files {
        let module = module_of(file);
        if let Some(m) = module.first() {
            top.insert(m.clone());
        }
        let stripped = strip(text);
        refs.extend(refs_of(file, &module, &stripped));
        sources.push(Source {
            file: file.clone(),
            module,
            stripped,
        });
    }
    Analysis { sources, refs, top }
}

impl Analysis {
    fn module_of_file(&self, file: &str) -> &[String] {
        &self
            .sources
            .iter()
            .find(|s| s.file == file)
            .expect("known file")
            .module
    }

    /// The top-level graph.
    fn top_graph(&self) -> Graph {
        let mut g = Graph::new();
        for r in &self.refs {
            let Some(from) = self.module_of_file(&r.file).first() else {
                continue;
            };
            let Some(to) = r.path.first().filter(|t| self.top.contains(*t)) else {
                continue;
            };
            if from != to {
                g.entry(from.clone())
                    .or_default()
                    .entry(to.clone())
                    .or_default()
                    .push((r.file.clone(), r.line));
            }
        }
        g
    }

    /// The graph of `parent`'s submodules (siblings only: a child naming its parent's own items is not an edge).
    fn sub_graph(&self, parent: &str) -> Graph {
        let children: BTreeSet<&String> = self
            .sources
            .iter()
            .filter(|s| s.module.len() >= 2 && s.module[0] == parent)
            .map(|s| &s.module[1])
            .collect();
        let mut g = Graph::new();
        for r in &self.refs {
            let m = self.module_of_file(&r.file);
            if m.len() < 2 || m[0] != parent {
                continue;
            }
            if r.path.len() >= 2
                && r.path[0] == parent
                && children.contains(&r.path[1])
                && r.path[1] != m[1]
            {
                g.entry(m[1].clone())
                    .or_default()
                    .entry(r.path[1].clone())
                    .or_default()
                    .push((r.file.clone(), r.line));
            }
        }
        g
    }

    /// Folder modules (those with submodules).
    fn folders(&self) -> BTreeSet<String> {
        self.sources
            .iter()
            .filter(|s| s.module.len() >= 2)
            .map(|s| s.module[0].clone())
            .collect()
    }
}

/// The strongly connected components of more than one node (Tarjan), each sorted.
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        if let Some(next) = t.g.get(v) {
            for w in next.keys() {
                let w = w.as_str();
                if !t.index.contains_key(w) {
                    visit(t, w);
                    let lw = t.low[w];
                    let lv = t.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if t.on.contains(w) {
                    let iw = t.index[w];
                    let lv = t.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    let nodes: BTreeSet<&str> = g
        .keys()
        .map(String::as_str)
        .chain(g.values().flat_map(|m| m.keys().map(String::as_str)))
        .collect();
    for v in nodes {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out.sort();
    t.out
}

/// The edges inside one cycle, as `a -> b (file:line)` lines.
fn describe_cycle(g: &Graph, comp: &[String]) -> String {
    let mut lines = Vec::new();
    for a in comp {
        for (b, sites) in g.get(a).into_iter().flatten() {
            if comp.contains(b) {
                let (f, l) = &sites[0];
                lines.push(format!("    {a} -> {b} ({f}:{l})"));
            }
        }
    }
    lines.join("\n")
}

/// The rules, as data, so the synthetic tests can use small ones.
struct Rules<'a> {
    layers: &'a [(&'a str, &'a [&'a str])],
    never: &'a [(&'a str, &'a [&'a str], &'a str)],
    only: &'a [(&'a str, &'a [&'a str], &'a str)],
    agent_forbidden_paths: &'a [&'a [&'a str]],
    agent_path_exceptions: &'a [(&'a str, &'a [&'a str], &'a str)],
    env_readers: &'a [&'a str],
    known_cycles: &'a [(&'a str, &'a [&'a str])],
}

fn violations(a: &Analysis, rules: &Rules) -> Vec<String> {
    let mut out = Vec::new();
    let g = a.top_graph();
    let layers: BTreeMap<&str, &[&str]> = rules.layers.iter().copied().collect();
    for m in &a.top {
        if m != "main" && !layers.contains_key(m.as_str()) {
            out.push(format!("top-level module `{m}` is not in the layer table (tests/architecture.rs LAYERS, design/README.md §3)"));
        }
    }
    for (from, tos) in &g {
        for (to, sites) in tos {
            let (f, l) = &sites[0];
            if let Some(allowed) = layers.get(from.as_str())
                && !allowed.contains(&to.as_str())
            {
                out.push(format!("{f}:{l}: `{from}` may import only {allowed:?}, not `{to}` (design/README.md §3)"));
            }
            for (m, never, why) in rules.never {
                if m == from && never.contains(&to.as_str()) {
                    out.push(format!("{f}:{l}: `{from}` imports `{to}`: {why}"));
                }
            }
            for (m, only, why) in rules.only {
                if m == from && !only.contains(&to.as_str()) {
                    out.push(format!("{f}:{l}: `{from}` imports `{to}`: {why}"));
                }
            }
        }
    }
    // Concrete stores in agents.
    let mut used_exceptions = BTreeSet::new();
    for r in &a.refs {
        if a.module_of_file(&r.file).first().map(String::as_str) != Some("agents") {
            continue;
        }
        for p in rules.agent_forbidden_paths {
            if r.path.len() >= p.len() && r.path.iter().zip(p.iter()).all(|(x, y)| x == y) {
                match rules.agent_path_exceptions.iter().position(|(f, q, _)| *f == r.file && q == p) {
                    Some(k) => {
                        used_exceptions.insert(k);
                    }
                    None => out.push(format!(
                        "{}:{}: agents name the concrete store `{}`: agents use ports, never a store implementation \
                         (design/README.md §3)",
                        r.file,
                        r.line,
                        r.path.join("::")
                    )),
                }
            }
        }
    }
    for (k, (f, p, _)) in rules.agent_path_exceptions.iter().enumerate() {
        if !used_exceptions.contains(&k) {
            out.push(format!(
                "stale exception in AGENT_PATH_EXCEPTIONS: {f} no longer names {}; remove it",
                p.join("::")
            ));
        }
    }
    // Environment reads.
    for s in &a.sources {
        if rules
            .env_readers
            .iter()
            .any(|r| s.file == *r || (r.ends_with('/') && s.file.starts_with(r)))
        {
            continue;
        }
        let toks = tokens(&s.stripped);
        for w in toks.windows(3) {
            if let (Tok::Ident(e), Tok::Path, Tok::Ident(v)) = (&w[0].0, &w[1].0, &w[2].0)
                && (e == "env" || e == "dotenvy" || e == "dotenv")
                && matches!(
                    v.as_str(),
                    "var"
                        | "vars"
                        | "var_os"
                        | "vars_os"
                        | "set_var"
                        | "remove_var"
                        | "dotenv"
                        | "from_path"
                )
            {
                out.push(format!(
                    "{}:{}: reads the environment ({e}::{v}): only config reads it, once (design/README.md §3)",
                    s.file, w[0].1
                ));
            }
        }
    }
    // Cycles.
    for comp in cycles(&g) {
        out.push(format!(
            "import cycle between top-level modules {comp:?}:\n{}",
            describe_cycle(&g, &comp)
        ));
    }
    let mut seen_known = BTreeSet::new();
    for parent in a.folders() {
        let sg = a.sub_graph(&parent);
        for comp in cycles(&sg) {
            let known = rules.known_cycles.iter().position(|(p, members)| {
                *p == parent
                    && members.len() == comp.len()
                    && members.iter().zip(&comp).all(|(x, y)| x == y)
            });
            match known {
                Some(k) => {
                    seen_known.insert(k);
                }
                None => out.push(format!(
                    "import cycle between `{parent}` submodules {comp:?}:\n{}",
                    describe_cycle(&sg, &comp)
                )),
            }
        }
    }
    for (k, (p, members)) in rules.known_cycles.iter().enumerate() {
        if !seen_known.contains(&k) {
            out.push(format!(
                "KNOWN_CYCLES lists {p} {members:?}, which is no longer a cycle; remove it"
            ));
        }
    }
    out
}

fn read_src(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src dir")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            read_src(&p, root, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            let rel = p
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, std::fs::read_to_string(&p).expect("read source")));
        }
    }
}

const RULES: Rules = Rules {
    layers: LAYERS,
    never: NEVER,
    only: ONLY,
    agent_forbidden_paths: AGENT_FORBIDDEN_PATHS,
    agent_path_exceptions: AGENT_PATH_EXCEPTIONS,
    env_readers: ENV_READERS,
    known_cycles: KNOWN_CYCLES,
};

#[test]
fn src_follows_the_import_rules_and_has_no_cycles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    read_src(&root.join("src"), root, &mut files);
    assert!(files.len() > 40, "found only {} source files", files.len());
    let a = analyze(&files);
    // The scan sees the real graph (a scanner that finds nothing would pass every rule).
    let g = a.top_graph();
    assert!(g["runtime"].contains_key("agents"), "{g:?}");
    assert!(g["agents"].contains_key("alert"), "{g:?}");
    assert!(
        a.sub_graph("agents")
            .get("content_lifecycle")
            .is_some_and(|m| m.contains_key("common"))
    );
    let v = violations(&a, &RULES);
    assert!(
        v.is_empty(),
        "architecture rules broken (design/README.md §3):\n{}",
        v.join("\n")
    );
}

/// `(file, line)` of every read of a dry-run flag as a field (`x.dry_run`) in `files`: agents leave that decision
/// to the effects gate (`ctx.effects()`, issue 10) and ask `is_dry_run()` only for wording.
fn dry_run_reads(files: &[(String, String)]) -> Vec<(String, usize)> {
    let re = regex::Regex::new(r"\.\s*dry_run\b").unwrap();
    let mut out = Vec::new();
    for (file, text) in files {
        let stripped = strip(text);
        for (n, line) in stripped.lines().enumerate() {
            if re.is_match(line) {
                out.push((file.clone(), n + 1));
            }
        }
    }
    out
}

#[test]
fn agents_never_read_the_dry_run_flag_they_go_through_the_effects_gate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    read_src(&root.join("src/agents"), root, &mut files);
    assert!(files.len() > 20, "found only {} agent files", files.len());
    // The context builds the gate from its flag; test doubles (a fake API's own dry-run mode) are not agents.
    let allowed =
        |f: &str| f == "src/agents/mod.rs" || f.ends_with("/tests.rs") || f.ends_with("/fake.rs");
    files.retain(|(f, _)| !allowed(f));
    let reads = dry_run_reads(&files);
    assert!(
        reads.is_empty(),
        "agents read the dry-run flag instead of going through ctx.effects() (design/README.md §3): {reads:?}"
    );
    // The scan finds a read where there is one (and not in comments or strings).
    let probe = vec![(
        "x.rs".to_string(),
        "// ctx.dry_run\nlet s = \"ctx.dry_run\";\nif self.ctx\n    .dry_run { }".to_string(),
    )];
    assert_eq!(dry_run_reads(&probe), vec![("x.rs".to_string(), 4)]);
}

// ------------------------------------------------------------------------------------------------------------------
// The checker on synthetic trees: it must really fail.

fn synthetic(files: &[(&str, &str)]) -> Analysis {
    analyze(
        &files
            .iter()
            .map(|(f, t)| (f.to_string(), t.to_string()))
            .collect::<Vec<_>>(),
    )
}

const SMALL_LAYERS: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("config", &["model"]),
    ("alert", &["config", "model"]),
    ("agents", &["alert", "config", "model"]),
];

fn small_rules() -> Rules<'static> {
    Rules {
        layers: SMALL_LAYERS,
        never: NEVER,
        only: &[("config", &["model"], "config is a leaf")],
        agent_forbidden_paths: &[&["alert", "outbox"]],
        agent_path_exceptions: &[],
        env_readers: &["src/config.rs"],
        known_cycles: &[],
    }
}

#[test]
fn checker_passes_a_clean_tree() {
    let a = synthetic(&[
        ("src/model.rs", "pub struct M;"),
        (
            "src/config.rs",
            "use crate::model::M; fn f() { std::env::var(\"X\"); }",
        ),
        (
            "src/alert/mod.rs",
            "pub mod sink;\nuse crate::{config, model::M};",
        ),
        (
            "src/alert/sink.rs",
            "use super::super::model::M;\npub trait Sink {}",
        ),
        (
            "src/agents/mod.rs",
            "pub use crate::alert::sink::Sink;\npub mod a;\npub mod b;",
        ),
        ("src/agents/a.rs", "use super::b::X; use super::Sink;"),
        (
            "src/agents/b.rs",
            "pub struct X;\n#[cfg(test)]\nmod tests { use super::*; use super::super::Sink; }",
        ),
    ]);
    let v = violations(&a, &small_rules());
    assert!(v.is_empty(), "{v:#?}");
    let g = a.top_graph();
    assert!(
        g["alert"].contains_key("config") && g["alert"].contains_key("model"),
        "{g:?}"
    );
    assert_eq!(
        a.sub_graph("agents").len(),
        1,
        "{:?}",
        a.sub_graph("agents")
    );
}

#[test]
fn checker_reports_a_top_level_cycle_with_file_and_line() {
    let a = synthetic(&[
        ("src/model.rs", ""),
        ("src/config.rs", ""),
        ("src/alert/mod.rs", "pub mod sink;"),
        (
            "src/alert/sink.rs",
            "// crate::agents in a comment is no import\nuse crate::agents::{Sink as S};\n",
        ),
        ("src/agents/mod.rs", "use crate::alert::sink;"),
    ]);
    let v = violations(&a, &small_rules());
    let all = v.join("\n");
    assert!(
        all.contains("import cycle between top-level modules [\"agents\", \"alert\"]"),
        "{all}"
    );
    assert!(
        all.contains("alert -> agents (src/alert/sink.rs:2)"),
        "{all}"
    );
    assert!(
        all.contains("src/alert/sink.rs:2: `alert` imports `agents`: alert never imports agents"),
        "{all}"
    );
    assert!(!all.contains("sink.rs:1"), "comment counted: {all}");
}

#[test]
fn checker_reports_forbidden_edges_env_reads_and_concrete_stores() {
    let a = synthetic(&[
        (
            "src/model.rs",
            "fn f() -> String { \"crate::sandbox::x\".into() }",
        ),
        ("src/config.rs", "use crate::alert;"),
        ("src/sandbox.rs", ""),
        ("src/alert/mod.rs", "pub mod outbox;"),
        (
            "src/alert/outbox.rs",
            "fn f() { let _ = std::env::var_os(\"HOME\"); }",
        ),
        (
            "src/agents/mod.rs",
            "fn f() { crate::sandbox::start(); }\nuse crate::alert::outbox::File;",
        ),
    ]);
    let all = violations(&a, &small_rules()).join("\n");
    for want in [
        "src/config.rs:1: `config` may import only [\"model\"], not `alert`",
        "src/config.rs:1: `config` imports `alert`: config is a leaf",
        "src/agents/mod.rs:1: `agents` imports `sandbox`: agents are logic over ports",
        "src/agents/mod.rs:2: agents name the concrete store `alert::outbox::File`",
        "src/alert/outbox.rs:1: reads the environment (env::var_os)",
        "top-level module `sandbox` is not in the layer table",
    ] {
        assert!(all.contains(want), "missing {want:?} in:\n{all}");
    }
    assert!(
        !all.contains("src/model.rs"),
        "a string literal was read as a path:\n{all}"
    );
}

#[test]
fn checker_reports_submodule_cycles_and_stale_known_cycles() {
    let files = [
        ("src/model.rs", ""),
        (
            "src/agents/mod.rs",
            "pub mod table; pub mod cache; pub mod other;",
        ),
        ("src/agents/table.rs", "use super::cache::DetailCache;"),
        (
            "src/agents/cache.rs",
            "use crate::agents::{other, table::{Span, self}};",
        ),
        (
            "src/agents/other.rs",
            "fn f() { let c = 'x'; let s = r#\"super::table\"#; }",
        ),
    ];
    let a = synthetic(&files);
    let all = violations(&a, &small_rules()).join("\n");
    assert!(
        all.contains("import cycle between `agents` submodules [\"cache\", \"table\"]"),
        "{all}"
    );
    assert!(
        all.contains("cache -> table (src/agents/cache.rs:1)"),
        "{all}"
    );
    assert!(
        all.contains("table -> cache (src/agents/table.rs:1)"),
        "{all}"
    );
    assert!(
        !a.sub_graph("agents").contains_key("other"),
        "raw string read as a path"
    );
    // Listed as known, it passes; a known cycle that is gone must be removed from the list.
    let mut rules = small_rules();
    rules.known_cycles = &[("agents", &["cache", "table"])];
    assert!(
        violations(&a, &rules).is_empty(),
        "{:?}",
        violations(&a, &rules)
    );
    let fixed = synthetic(&[
        files[0],
        files[1],
        ("src/agents/table.rs", ""),
        files[3],
        files[4],
    ]);
    let all = violations(&fixed, &rules).join("\n");
    assert!(all.contains("no longer a cycle; remove it"), "{all}");
}

#[test]
fn strip_keeps_lines_and_drops_literals_and_comments() {
    let s = strip(
        "a /* QA\n QB */ b // QC\n\"QD\\\"QE\" 'Q' '\\n' fn g<'a>(x: &'a str) {}\nr##\"QF\"# QG\"## br\"QH\" end",
    );
    assert_eq!(s.lines().count(), 4, "{s:?}");
    assert!(!s.contains('Q'), "a literal or comment kept: {s:?}");
    assert!(
        s.contains("fn g<'a>(") && s.contains("&'a str") && s.contains(" end"),
        "{s:?}"
    );
}
