// Filters and sorts the example gallery (written into the page, so it shows without this
// script) and renders the search trees from the JSON embedded in the page.
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
      var right = i === n.answer;
      var pushed = c === n.target_option;
      var li = el("li", ((right ? "correct" : "") + (pushed ? " target" : "")).trim(), c);
      if (right) li.appendChild(el("span", "tag right", "✓ right"));
      if (pushed) li.appendChild(el("span", "tag pushed", "➜ pushed"));
      if (n.probs && n.probs[i] !== undefined && n.probs[i] !== null)
        li.appendChild(el("span", "muted", "  p=" + pct(n.probs[i])));
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
        // passed null: a check never asked (the judge deferred by judge_last), not a failure.
        var asked = v.passed === true || v.passed === false;
        var cls = !asked ? "pending" : v.passed ? "pass" : "fail";
        var sign = !asked ? "○ " : v.passed ? "✓ " : "✗ ";
        li.appendChild(el("span", cls, sign + name));
        var extra = (v.reason ? ": " + v.reason : "") +
          (typeof v.score === "number" ? " (score " + Number(v.score.toPrecision(3)) + ")" : "");
        if (extra) li.appendChild(document.createTextNode(extra));
        ul.appendChild(li);
      });
      box.appendChild(ul);
    }
    if (n.error) box.appendChild(el("div", "fail", "error: " + n.error));
    if (n.mode === "exact" && n.rate !== null && n.rate !== undefined)
      box.appendChild(el("div", "read", "scored from probabilities: P(right) = " + pct(n.rate)));
    // The replies that decided the node: the search's samples, and the confirmation under the
    // protocol where one was asked (the only replies of a node scored from probabilities).
    appendAnswers(box, "target answers", n.answers || []);
    if (n.verify) appendAnswers(box, "confirmation under the protocol", n.verify.answers || []);
    // A node scored on several targets: each one's verdict and replies under its own name.
    (n.targets || []).forEach(function (t) {
      box.appendChild(el("div", "read", t.target + ": " + t.verdict +
        (typeof t.score === "number" ? " (search score " + pct(t.score) + ")" : "")));
      appendAnswers(box, t.target + " answers", t.answers || []);
    });
    return box;
  }

  function appendAnswers(box, what, answers) {
    if (!answers.length) return;
    var right = answers.filter(function (a) { return a.correct; }).length;
    var det = el("details", "answers");
    det.appendChild(el("summary", "", what + ": " + right + " of " + answers.length + " correct"));
    answers.forEach(function (a) {
      var said = a.choice === null || a.choice === undefined ? a.answer : LETTERS[a.choice];
      var label = (said === null || said === undefined || said === "" ? a.status : said) +
        (a.correct ? " ✓" : " ✗");
      det.appendChild(el("div", a.correct ? "pass" : "fail", label));
      if (a.reply) det.appendChild(el("pre", "reply", a.reply));
    });
    box.appendChild(det);
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

  // The gallery's cards carry what the filters read as data-* attributes.
  function setUpGallery() {
    var gallery = document.getElementById("gallery");
    var controls = document.getElementById("gallery-controls");
    if (!gallery || !controls) return;
    var cards = Array.prototype.slice.call(gallery.querySelectorAll("article.ex"));
    var pick = function (id) { var e = document.getElementById(id); return e ? e.value : ""; };
    var count = document.getElementById("g-count");
    function num(card, name) {
      var v = card.getAttribute(name);
      return v === null || v === "" ? -2 : Number(v);
    }
    var orders = {
      drop: function (a, b) {
        return num(b, "data-drop") - num(a, "data-drop") ||
          num(b, "data-sdrop") - num(a, "data-sdrop") || num(a, "data-order") - num(b, "data-order");
      },
      added: function (a, b) {
        return num(b, "data-added") - num(a, "data-added") || orders.drop(a, b);
      },
      "added-asc": function (a, b) {
        return num(a, "data-added") - num(b, "data-added") || orders.drop(a, b);
      },
      run: function (a, b) { return num(a, "data-order") - num(b, "data-order"); }
    };
    function apply() {
      var dataset = pick("g-dataset"), subject = pick("g-subject");
      var fooled = pick("g-fooled"), depth = pick("g-depth");
      var shown = 0;
      cards.forEach(function (c) {
        var ok = (!dataset || c.getAttribute("data-dataset") === dataset) &&
          (!subject || c.getAttribute("data-subject") === subject) &&
          (!depth || c.getAttribute("data-depth") === depth) &&
          (!fooled || (c.getAttribute("data-fooled") || "").indexOf(" " + fooled + " ") >= 0);
        c.classList.toggle("hidden", !ok);
        if (ok) shown++;
      });
      var sorted = cards.slice().sort(orders[pick("g-sort")] || orders.drop);
      sorted.forEach(function (c) { gallery.appendChild(c); });
      if (count) count.textContent = shown + " of " + cards.length + " examples shown";
    }
    controls.querySelectorAll("select").forEach(function (s) { s.addEventListener("change", apply); });
    controls.hidden = false;
    apply();
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
    // #q=<question id>[&node=<path>] opens that question's tree (and shows that node);
    // #success shows only successful questions. Each part is encoded on its own.
    var h = (location.hash || "").slice(1);
    if (h === "success" && onlySuccess) { onlySuccess.checked = true; applyFilter(); }
    var args = {};
    h.split("&").forEach(function (part) {
      var at = part.indexOf("=");
      if (at > 0) {
        try { args[part.slice(0, at)] = decodeURIComponent(part.slice(at + 1)); } catch (e) { /* not ours */ }
      }
    });
    if (args.q === undefined) return;
    items.forEach(function (it) {
      if (it.q.id !== args.q) return;
      ensureRendered(it.q, it.d);
      it.d.open = true;
      var target = it.d;
      if (args.node !== undefined) {
        it.d.querySelectorAll(".node").forEach(function (box) {
          var on = box.getAttribute("data-path") === args.node;
          box.classList.toggle("focus", on);
          if (on) target = box;
        });
      }
      target.scrollIntoView();
    });
  }
  window.addEventListener("hashchange", openFromHash);
  applyFilter();
  setUpGallery();
  openFromHash();
  document.body.setAttribute("data-ready", "1");
})();
