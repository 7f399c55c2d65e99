// Renders the search trees from the JSON embedded in the page.
// Every piece of model text reaches the page through textContent / createTextNode only,
// never through an HTML parser, so a reply containing markup is shown as text and never runs.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("cdv-data").textContent);
  var questions = data.questions || [];
  var LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  var list = document.getElementById("tree-list");
  var onlySuccess = document.getElementById("only-success");
  var textFilter = document.getElementById("q-filter");
  var counter = document.getElementById("tree-count");

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function safeClass(s) { return String(s || "").replace(/[^a-z_]/g, ""); }
  function pct(v) { return v === null || v === undefined ? "–" : Math.round(v * 1000) / 10 + "%"; }

  // Splits text into plain and highlighted runs; marks = [{text, cls}], earlier marks win.
  function highlighted(text, marks) {
    var spans = [];
    marks.forEach(function (m) {
      if (!m.text) return;
      var at = text.indexOf(m.text);
      if (at < 0) return;
      var end = at + m.text.length;
      var clash = spans.some(function (s) { return at < s.end && end > s.start; });
      if (!clash) spans.push({ start: at, end: end, cls: m.cls });
    });
    spans.sort(function (a, b) { return a.start - b.start; });
    var frag = document.createDocumentFragment();
    var pos = 0;
    spans.forEach(function (s) {
      if (s.start > pos) frag.appendChild(document.createTextNode(text.slice(pos, s.start)));
      frag.appendChild(el("mark", s.cls, text.slice(s.start, s.end)));
      pos = s.end;
    });
    if (pos < text.length) frag.appendChild(document.createTextNode(text.slice(pos)));
    return frag;
  }

  function renderNode(n, byPath, q) {
    var box = el("div", "node " + safeClass(n.status));
    box.setAttribute("data-path", n.path);
    var head = el("div", "head");
    head.appendChild(el("span", "qid", n.path));
    head.appendChild(el("span", "badge " + safeClass(n.status), n.status));
    head.appendChild(el("span", "", "depth " + n.depth));
    head.appendChild(el("span", "", "search score " + pct(n.rate)));
    if (n.mode) head.appendChild(el("span", "", n.mode + " scoring"));
    if (n.verified === true) head.appendChild(el("span", "", "confirmed under the protocol"));
    if (n.verified === false) head.appendChild(el("span", "", "rejected by verification"));
    if (n.target_option !== null && n.target_option !== undefined)
      head.appendChild(el("span", "", "pushes: " + n.target_option));
    if (n.placement) head.appendChild(el("span", "", n.placement));
    box.appendChild(head);

    // The node's own distraction is highlighted strongly, its ancestors' ones lightly.
    var marks = [{ text: n.distraction, cls: "hl-new" }];
    var p = n.parent ? byPath[n.parent] : null;
    while (p) {
      marks.push({ text: p.distraction, cls: "hl-old" });
      p = p.parent ? byPath[p.parent] : null;
    }
    var qtext = el("div", "qtext");
    qtext.appendChild(highlighted(n.question || "", marks));
    box.appendChild(qtext);

    var ol = el("ol", "choices");
    ol.type = "A";
    (n.choices || []).forEach(function (c, i) {
      var cls = (i === n.answer ? "correct" : "") + (c === n.target_option ? " target" : "");
      var li = el("li", cls.trim(), c);
      if (n.probs && n.probs[i] !== undefined) li.appendChild(el("span", "muted", "  p=" + pct(n.probs[i])));
      ol.appendChild(li);
    });
    if ((n.choices || []).length) box.appendChild(ol);
    if (q && q.references && q.references.length) {
      // Free-form: no choices; the accepted answer and the wrong one the sentence pushes.
      var ref = el("div", "correct", "answer: " + q.references.join(" | "));
      box.appendChild(ref);
      if (n.target_option) box.appendChild(el("div", "target", "pushed: " + n.target_option));
    }

    var names = Object.keys(n.verdicts || {});
    if (names.length) {
      var ul = el("ul", "verdicts");
      names.forEach(function (name) {
        var v = n.verdicts[name] || {};
        var li = el("li");
        li.appendChild(el("span", v.passed ? "pass" : "fail", (v.passed ? "✓ " : "✗ ") + name));
        var extra = (v.reason ? ": " + v.reason : "") +
          (typeof v.score === "number" ? " (score " + Number(v.score.toPrecision(3)) + ")" : "");
        if (extra) li.appendChild(document.createTextNode(extra));
        ul.appendChild(li);
      });
      box.appendChild(ul);
    }
    if (n.error) box.appendChild(el("div", "fail", "error: " + n.error));
    var answers = n.answers || [];
    if (answers.length) {
      var right = answers.filter(function (a) { return a.correct; }).length;
      var det = el("details", "answers");
      det.appendChild(el("summary", "", "target answers: " + right + " of " + answers.length + " correct"));
      answers.forEach(function (a) {
        var said = a.choice === null || a.choice === undefined ? a.answer : LETTERS[a.choice];
        var label = (said === null || said === undefined ? a.status : said) +
          (a.correct ? " ✓" : " ✗");
        det.appendChild(el("div", a.correct ? "pass" : "fail", label));
        if (a.reply) det.appendChild(el("pre", "reply", a.reply));
      });
      box.appendChild(det);
    }
    return box;
  }

  function renderTree(q, container) {
    var byPath = {};
    var kids = {};
    var roots = [];
    q.nodes.forEach(function (n) { byPath[n.path] = n; });
    q.nodes.forEach(function (n) {
      if (n.parent && byPath[n.parent]) (kids[n.parent] = kids[n.parent] || []).push(n);
      else roots.push(n);
    });
    function build(nodes) {
      var ul = el("ul");
      nodes.forEach(function (n) {
        var li = el("li");
        li.appendChild(renderNode(n, byPath, q));
        if (kids[n.path]) li.appendChild(build(kids[n.path]));
        ul.appendChild(li);
      });
      return ul;
    }
    if (!q.nodes.length) container.appendChild(el("p", "muted", "No search tree stored for this question."));
    else container.appendChild(build(roots));
  }

  function renderQuestion(q, i) {
    var det = el("details", "q");
    det.id = "q-" + i;
    det.setAttribute("data-qid", q.id);
    det.setAttribute("data-examples", String(q.examples));
    var sum = el("summary");
    sum.appendChild(el("span", "badge " + safeClass(q.status), q.status));
    if (q.examples) sum.appendChild(el("span", "badge good", q.examples + " CDV example" + (q.examples > 1 ? "s" : "")));
    sum.appendChild(el("span", "qid", q.id + (q.source ? " · " + q.source : "") + "  "));
    var predicted = q.prefilter_p === null || q.prefilter_p === undefined ? "" : "P(enhanceable) " + q.prefilter_p.toFixed(2) + " · ";
    sum.appendChild(el("span", "muted", predicted + "right on the original " + pct(q.original_rate) + " · " + q.nodes.length + " nodes · "));
    var text = q.question || "";
    sum.appendChild(el("span", "", text.length > 140 ? text.slice(0, 139) + "…" : text));
    det.appendChild(sum);
    var body = el("div", "tree");
    det.appendChild(body);
    // Trees are built on first opening: a large run stays fast to load.
    det.addEventListener("toggle", function () { if (det.open) ensureRendered(q, det); });
    return det;
  }

  function ensureRendered(q, det) {
    if (det.getAttribute("data-rendered")) return;
    renderTree(q, det.querySelector(".tree"));
    det.setAttribute("data-rendered", "1");
  }

  var items = questions.map(function (q, i) {
    var d = renderQuestion(q, i);
    list.appendChild(d);
    return { q: q, d: d, hay: (q.id + " " + q.source + " " + q.question).toLowerCase() };
  });

  function applyFilter() {
    var only = onlySuccess && onlySuccess.checked;
    var needle = textFilter ? textFilter.value.trim().toLowerCase() : "";
    var shown = 0;
    items.forEach(function (it) {
      var hide = (only && !it.q.examples) || (needle && it.hay.indexOf(needle) < 0);
      it.d.classList.toggle("hidden", !!hide);
      if (!hide) shown++;
    });
    if (counter) counter.textContent = shown + " of " + items.length + " questions shown";
  }
  if (onlySuccess) onlySuccess.addEventListener("change", applyFilter);
  if (textFilter) textFilter.addEventListener("input", applyFilter);

  function openFromHash() {
    // #q=<question id> opens that question's tree, #success shows only successful questions.
    var h = decodeURIComponent((location.hash || "").slice(1));
    if (h === "success" && onlySuccess) { onlySuccess.checked = true; applyFilter(); }
    if (h.indexOf("q=") === 0) {
      var id = h.slice(2);
      items.forEach(function (it) {
        if (it.q.id === id) {
          ensureRendered(it.q, it.d);
          it.d.open = true;
          it.d.scrollIntoView();
        }
      });
    }
  }
  window.addEventListener("hashchange", openFromHash);
  applyFilter();
  openFromHash();
  document.body.setAttribute("data-ready", "1");
})();
