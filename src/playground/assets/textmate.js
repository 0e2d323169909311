// A small TextMate tokenizer (match, begin/end, captures, patterns, include,
// repository), the same one tests/editor_grammar.rs runs in Rust, so that the
// page highlights .xf with the rules of editors/xf.tmLanguage.json.
"use strict";

const XfTextMate = (() => {
  function compileRule(raw) {
    if (raw.include) {
      return { include: raw.include.replace(/^#/, "") };
    }
    const rule = { name: raw.name || null };
    if (raw.match) {
      rule.match = new RegExp(raw.match, "dg");
      rule.captures = raw.captures || {};
    } else if (raw.begin) {
      rule.begin = new RegExp(raw.begin, "dg");
      rule.end = new RegExp(raw.end, "dg");
      rule.beginCaptures = raw.beginCaptures || raw.captures || {};
      rule.endCaptures = raw.endCaptures || raw.captures || {};
      rule.patterns = (raw.patterns || []).map(compileRule);
    } else {
      rule.patterns = (raw.patterns || []).map(compileRule);
    }
    return rule;
  }

  function compile(json) {
    const repository = {};
    for (const [name, raw] of Object.entries(json.repository || {})) {
      repository[name] = compileRule(raw);
    }
    const top = (json.patterns || []).map(compileRule);
    // The match and begin rules a list stands for, includes expanded.
    const flatCache = new Map();
    function flatten(list) {
      if (flatCache.has(list)) return flatCache.get(list);
      const out = [];
      const walk = (rules, depth) => {
        if (depth > 32) return;
        for (const rule of rules) {
          const target = rule.include ? repository[rule.include] : rule;
          if (!target) continue;
          if (target.match || target.begin) out.push(target);
          else walk(target.patterns, depth + 1);
        }
      };
      walk(list, 0);
      flatCache.set(list, out);
      return out;
    }
    return { top, flatten };
  }

  function search(regex, line, pos) {
    regex.lastIndex = pos;
    return regex.exec(line);
  }

  function applyCaptures(scopes, found, captures) {
    for (const [group, capture] of Object.entries(captures)) {
      const span = found.indices[Number(group)];
      if (!span || !capture.name) continue;
      for (let at = span[0]; at < span[1]; at++) scopes[at].push(capture.name);
    }
  }

  // Scopes for each character of one line; `stack` (open begin/end rules)
  // carries over to the next line.
  function tokenizeLine(grammar, line, stack) {
    const scopes = Array.from({ length: line.length }, () => []);
    const fill = (from, to, what) => {
      for (let at = from; at < to; at++) scopes[at] = what.slice();
    };
    let pos = 0;
    let stuck = 0;
    for (;;) {
      const base = stack.flatMap((open) => open.scopes);
      const top = stack[stack.length - 1];
      const candidates = grammar.flatten(top ? top.rule.patterns : grammar.top);
      let best = null;
      if (top) {
        const found = search(top.rule.end, line, pos);
        if (found) best = { start: found.index, rule: null, found };
      }
      for (const rule of candidates) {
        const found = search(rule.match || rule.begin, line, pos);
        if (found && (!best || found.index < best.start)) {
          best = { start: found.index, rule, found };
        }
      }
      if (!best) {
        fill(pos, line.length, base);
        break;
      }
      const end = best.start + best.found[0].length;
      fill(pos, best.start, base);
      if (!best.rule) {
        const open = stack.pop();
        fill(best.start, end, base);
        applyCaptures(scopes, best.found, open.rule.endCaptures);
      } else {
        const own = best.rule.name ? base.concat([best.rule.name]) : base;
        fill(best.start, end, own);
        if (best.rule.match) {
          applyCaptures(scopes, best.found, best.rule.captures);
        } else {
          applyCaptures(scopes, best.found, best.rule.beginCaptures);
          stack.push({ rule: best.rule, scopes: best.rule.name ? [best.rule.name] : [] });
        }
      }
      if (end === pos) {
        // A rule that matches nothing must not hold the line forever.
        if (++stuck > 16) {
          fill(pos, line.length, base);
          break;
        }
      } else {
        stuck = 0;
      }
      pos = end;
    }
    return scopes;
  }

  // Scopes for each character of a whole text (line ends get what is open).
  function tokenize(grammar, text) {
    const stack = [];
    const all = [];
    const lines = text.split("\n");
    lines.forEach((line, index) => {
      for (const scopes of tokenizeLine(grammar, line, stack)) all.push(scopes);
      if (index < lines.length - 1) all.push(stack.flatMap((open) => open.scopes));
    });
    return all;
  }

  return { compile, tokenize, tokenizeLine };
})();
