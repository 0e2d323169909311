// The playground page: a payload, the request headers it came with, a
// transform editor highlighted with the TextMate grammar of
// editors/xf.tmLanguage.json, and what `xf run` makes of them (POST /api/run),
// updated as one types.
"use strict";

const STARTER = `# Edit me: the output below follows as you type.
format default
label customer = "Cardify"
tag add summary = "[{{ severity }}] {{ description }}"
drop when offenseStatus == "CLOSED"
`;

const $ = (id) => document.getElementById(id);
let grammar = null;
let examples = { fixtures: [], transforms: [] };
let marks = [];
let sent = 0;
let timer = null;

// The class of a character: its innermost scope that the page colours.
const CLASSES = [
  ["punctuation.section.embedded", "tm-template-punct"],
  ["comment", "tm-comment"],
  ["constant.character.escape", "tm-escape"],
  ["invalid", "tm-invalid"],
  ["string.quoted.single.template", "tm-string"],
  ["string.quoted.double.template", "tm-string"],
  ["constant.numeric", "tm-number"],
  ["constant.language", "tm-constant"],
  ["keyword.operator", "tm-operator"],
  ["keyword", "tm-keyword"],
  ["support.function", "tm-function"],
  ["variable.other.bracket-key", "tm-bracket-key"],
  ["punctuation.definition.bracket-key", "tm-bracket-key"],
  ["meta.template", "tm-template"],
  ["string", "tm-string"],
];

function classOf(scopes) {
  for (let index = scopes.length - 1; index >= 0; index--) {
    for (const [prefix, name] of CLASSES) {
      if (scopes[index].startsWith(prefix)) return name;
    }
  }
  return "";
}

// Character offsets of each diagnostic's range (1-based line and column).
function markRanges(text) {
  const starts = [0];
  for (let at = 0; at < text.length; at++) if (text[at] === "\n") starts.push(at + 1);
  // The server counts columns in characters (code points); a JS string index counts UTF-16 units.
  const offset = (line, column) => {
    let at = starts[line - 1] ?? text.length;
    for (let left = column - 1; left > 0 && at < text.length && text[at] !== "\n"; left--) {
      at += text.codePointAt(at) > 0xffff ? 2 : 1;
    }
    return Math.min(text.length, at);
  };
  return marks.map((mark) => {
    const from = offset(mark.line, mark.column);
    let to = offset(mark.end_line, mark.end_column);
    if (to <= from) to = Math.min(text.length, from + 1);
    return { from, to, kind: mark.severity === "warning" ? "mark-warning" : "mark-error", message: mark.message };
  });
}

function escapeHtml(text) {
  return text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

function highlight() {
  const text = $("transform").value;
  const pre = $("highlight");
  if (!grammar) {
    pre.textContent = text + " ";
    return;
  }
  const scopes = XfTextMate.tokenize(grammar, text);
  const ranges = markRanges(text);
  let html = "";
  let run = "";
  let runClass = null;
  const flush = () => {
    if (run) html += runClass ? `<span class="${runClass}">${escapeHtml(run)}</span>` : escapeHtml(run);
    run = "";
  };
  for (let at = 0; at < text.length; at++) {
    const mark = ranges.find((range) => at >= range.from && at < range.to);
    const cls = [classOf(scopes[at] || []), mark ? mark.kind : ""].filter(Boolean).join(" ");
    if (cls !== runClass) {
      flush();
      runClass = cls;
    }
    run += text[at];
  }
  flush();
  pre.innerHTML = html + " ";
  syncScroll();
}

function syncScroll() {
  $("highlight").scrollTop = $("transform").scrollTop;
  $("highlight").scrollLeft = $("transform").scrollLeft;
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(run, 200);
}

async function run() {
  const id = ++sent;
  const request = { transform: $("transform").value, input: $("input").value, headers: $("headers").value };
  // No source given is no `request.source`, as `xf run` without --request-source.
  if ($("source").value !== "") request.source = $("source").value;
  const body = JSON.stringify(request);
  $("status").textContent = "running…";
  $("status").classList.remove("failed");
  let answer;
  try {
    const response = await fetch("/api/run", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body,
    });
    const text = await response.text();
    try {
      answer = JSON.parse(text);
    } catch {
      answer = { error: `${response.status}: ${text}` };
    }
    if (!response.ok && !answer.error) answer = { error: `${response.status}: ${text}` };
  } catch (error) {
    answer = { error: `the playground does not answer: ${error}` };
  }
  if (id !== sent) return; // a newer run is on its way
  show(answer);
}

function show(answer) {
  if (answer.error) {
    $("status").textContent = answer.error;
    $("status").classList.add("failed");
    $("errors").textContent = `error: ${answer.error}`;
    return;
  }
  const loaded = answer.loaded;
  $("status").textContent = loaded ? "ok" : "the transform does not load";
  $("status").classList.toggle("failed", !loaded || answer.errors.length > 0);
  $("output").textContent = answer.pretty;
  $("diagnostics").textContent = answer.diagnostics.rendered;
  $("warnings").textContent = answer.warnings.rendered;
  $("errors").textContent = answer.errors.join("\n");
  const stats = answer.stats;
  $("counts").textContent = stats
    ? `${stats.read} read, ${stats.written} written, ${stats.dropped} dropped, ${stats.failed} failed`
    : "";
  marks = answer.diagnostics.items.concat(answer.warnings.items);
  $("transform").title = marks.map((mark) => `${mark.line}:${mark.column}: ${mark.message}`).join("\n");
  if (answer.trace !== undefined) {
    $("trace-pane").hidden = false;
    $("trace").textContent = answer.trace.length === 0
      ? "no record was traced"
      : answer.trace.map((entry) => `record ${entry.record}\n${entry.text}`).join("\n\n");
  } else {
    $("trace-pane").hidden = true;
  }
  highlight();
}

// A fixture comes with the headers it was sent with (GitHub's event is named only
// in X-GitHub-Event): they replace the headers field, emptied for one without.
function pickFixture(fixture) {
  $("input").value = fixture.text;
  $("fixture").value = fixture.name;
  $("headers").value = fixture.headers || "";
}

function fill(select, list) {
  for (const entry of list) {
    const option = document.createElement("option");
    option.value = entry.name;
    option.textContent = entry.name;
    select.appendChild(option);
  }
}

async function start() {
  $("transform").value = STARTER;
  const [grammarJson, list] = await Promise.all([
    fetch("/assets/xf.tmLanguage.json").then((r) => r.json()),
    fetch("/api/examples").then((r) => r.json()),
  ]);
  grammar = XfTextMate.compile(grammarJson);
  examples = list;
  fill($("fixture"), examples.fixtures);
  fill($("example"), examples.transforms);
  const first = examples.fixtures.find((f) => f.name === "armor/detection-only.json") || examples.fixtures[0];
  if (first) pickFixture(first);
  highlight();
  run();
}

document.addEventListener("DOMContentLoaded", () => {
  $("transform").addEventListener("input", () => {
    highlight();
    schedule();
  });
  $("transform").addEventListener("scroll", syncScroll);
  $("transform").addEventListener("keydown", (event) => {
    if (event.key === "Tab" && !event.shiftKey && !event.ctrlKey && !event.altKey) {
      event.preventDefault();
      document.execCommand("insertText", false, "  ");
    }
  });
  $("input").addEventListener("input", () => {
    $("fixture").value = "";
    schedule();
  });
  $("headers").addEventListener("input", schedule);
  $("source").addEventListener("input", schedule);
  $("fixture").addEventListener("change", () => {
    const pick = examples.fixtures.find((f) => f.name === $("fixture").value);
    if (pick) {
      pickFixture(pick);
      schedule();
    }
  });
  $("example").addEventListener("change", () => {
    const pick = examples.transforms.find((t) => t.name === $("example").value);
    if (pick) {
      $("transform").value = pick.text;
      highlight();
      schedule();
    }
  });
  start().catch((error) => {
    $("status").textContent = `cannot start: ${error}`;
    $("status").classList.add("failed");
  });
});
