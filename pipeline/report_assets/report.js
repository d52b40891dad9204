/* report.html's script: the article list (search, filters, sort, paging), filters from the
   charts, the URL fragment, CSV and corrections downloads, and the review queue.
   Data: the JSON block #report-data, column by column (see pipeline/report.py article_data). */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var N = D.id.length, PAGE = 50;
  var REASONS = ["", "low_confidence", "out_of_scope"];
  var STORE = "hsj-report-corrections:" + D.run;
  var state = {}, fixes = {}, hay = null, lowHead = null, shown = [], qrank = null;
  var KEYS = ["q", "view", "cat", "ics", "cluster", "unc", "src", "id", "sort", "dir", "page"];

  function esc(t) {
    return String(t).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
  function sysOf(i) { var y = D.y[i]; return typeof y === "number" ? [y] : y; }
  function catOf(i) { return fixes[D.id[i]] !== undefined ? fixes[D.id[i]] : (D.c[i] >= 0 ? D.cats[D.c[i]] : ""); }
  function el(id) { return document.getElementById(id); }

  // ---- corrections, kept in localStorage under this run's key ----------------------------------
  try { fixes = JSON.parse(localStorage.getItem(STORE) || "{}") || {}; } catch (e) { fixes = {}; }
  function saveFixes() {
    try { localStorage.setItem(STORE, JSON.stringify(fixes)); } catch (e) { /* private mode */ }
  }
  var rowOf = null;
  function rowIndex(id) {
    if (!rowOf) { rowOf = {}; for (var i = 0; i < N; i++) rowOf[D.id[i]] = i; }
    return rowOf[id];
  }

  // ---- the controls ------------------------------------------------------------------------------
  var app = el("app");
  var clusterIds = [], seenCl = {};
  for (var i = 0; i < N; i++) if (!seenCl[D.k[i]]) { seenCl[D.k[i]] = 1; clusterIds.push(D.k[i]); }
  clusterIds.sort(function (a, b) { return a - b; });
  function options(list, all) {
    return '<option value="">' + esc(all) + "</option>" + list.map(function (v) {
      return '<option value="' + esc(v[0]) + '">' + esc(v[1]) + "</option>";
    }).join("");
  }
  var sysNames = D.sys.map(function (s) { return [s, s]; }).sort(function (a, b) { return a[0] < b[0] ? -1 : 1; });
  app.innerHTML =
    '<div class="controls" role="search">' +
    '<label>Search<input type="search" id="f-q" placeholder="words in headline or standfirst" autocomplete="off"></label>' +
    '<label>View<select id="f-view"><option value="">all articles</option><option value="queue">review queue (' + D.q.length + ')</option></select></label>' +
    '<label>Category<select id="f-cat">' + options(D.cats.map(function (c) { return [c, c]; }), "any category") + "</select></label>" +
    '<label>ICS page<select id="f-ics">' + options(sysNames, "any ICS page") + "</select></label>" +
    '<label>Cluster<select id="f-cluster">' + options(clusterIds.map(function (k) { return [String(k), String(k)]; }), "any cluster") + "</select></label>" +
    '<label>Uncertain<select id="f-unc">' + options([["yes", "uncertain (any reason)"], ["low_confidence", "low confidence"], ["out_of_scope", "out of scope"], ["no", "not uncertain"]], "any") + "</select></label>" +
    '<label>Label<select id="f-src">' + options([["model", "predicted"], ["gold", "gold"], ["fixed", "corrected here"]], "any") + "</select></label>" +
    '<button type="button" id="f-reset">Clear filters</button></div>' +
    '<div class="status"><span id="count" aria-live="polite"></span><span class="chips" id="chips"></span>' +
    '<button type="button" id="dl-csv">Download these rows (CSV)</button>' +
    '<span id="fixcount"></span><button type="button" id="dl-fix" class="primary">Download corrections (JSONL)</button>' +
    '<button type="button" id="clear-fix">Forget corrections</button></div>' +
    '<div class="scroll"><table class="cards" id="grid"><thead><tr>' +
    th("headline", "headline") + th("ics", "ICS pages") +
    '<th data-key="category confidence" aria-sort="none"><button type="button" class="sort" data-sort="category">category</button> ' +
    '(<button type="button" class="sort" data-sort="confidence">confidence</button>)</th>' +
    th("cluster", "cluster") + th("uncertain", "uncertain") + th("source", "label") +
    '</tr></thead><tbody id="rows"></tbody></table></div>' +
    '<div class="pager"><button type="button" id="prev">Previous</button><span id="pageinfo"></span>' +
    '<button type="button" id="next">Next</button></div>';
  function th(key, label) {
    return '<th data-key="' + key + '" aria-sort="none"><button type="button" class="sort" data-sort="' + key + '">' + esc(label) + "</button></th>";
  }

  // ---- state <-> URL fragment ----------------------------------------------------------------------
  function readHash() {
    var p = new URLSearchParams(location.hash.replace(/^#/, ""));
    state = {};
    KEYS.forEach(function (k) { if (p.get(k)) state[k] = p.get(k); });
  }
  function writeHash() {
    var p = new URLSearchParams();
    KEYS.forEach(function (k) { if (state[k]) p.set(k, state[k]); });
    var h = p.toString();
    var url = location.href.split("#")[0] + (h ? "#" + h : "");
    try { history.replaceState(null, "", url); } catch (e) { location.hash = h; }
  }
  var FIELDS = {q: "f-q", view: "f-view", cat: "f-cat", ics: "f-ics", cluster: "f-cluster", unc: "f-unc", src: "f-src"};
  function toControls() {
    Object.keys(FIELDS).forEach(function (k) { el(FIELDS[k]).value = state[k] || ""; });
  }
  function set(changes, keepPage) {
    Object.keys(changes).forEach(function (k) { if (changes[k] === "" || changes[k] == null) delete state[k]; else state[k] = String(changes[k]); });
    if (!keepPage) delete state.page;
    writeHash(); toControls(); update();
  }

  // ---- filter and sort --------------------------------------------------------------------------
  function filtered() {
    var out = [], i, n;
    var base = null;
    if (state.view === "queue") base = D.q;
    var cat = state.cat, ics = state.ics != null ? D.sys.indexOf(state.ics) : -2;
    var cl = state.cluster != null ? Number(state.cluster) : null;
    var unc = state.unc, src = state.src, one = state.id;
    var terms = (state.q || "").toLowerCase().split(/\s+/).filter(Boolean);
    if (terms.length && !hay) {
      hay = new Array(N);
      for (i = 0; i < N; i++) hay[i] = (D.h[i] + "\n" + D.s[i] + "\n" + D.id[i]).toLowerCase();
    }
    n = base ? base.length : N;
    for (var j = 0; j < n; j++) {
      i = base ? base[j] : j;
      if (one && D.id[i] !== one) continue;
      if (cl !== null && D.k[i] !== cl) continue;
      if (cat && catOf(i) !== cat) continue;
      if (ics !== -2) { var y = D.y[i]; if (typeof y === "number" ? y !== ics : y.indexOf(ics) < 0) continue; }
      if (unc) {
        var u = D.u[i];
        if (unc === "yes" ? u === 0 : unc === "no" ? u !== 0 : REASONS[u] !== unc) continue;
      }
      if (src) {
        if (src === "gold" ? D.g[i] !== 1 : src === "model" ? D.g[i] !== 0 : fixes[D.id[i]] === undefined) continue;
      }
      if (terms.length) {
        var t = hay[i], ok = true;
        for (var m = 0; m < terms.length; m++) if (t.indexOf(terms[m]) < 0) { ok = false; break; }
        if (!ok) continue;
      }
      out.push(i);
    }
    if (state.sort) sortRows(out, state.sort, state.dir === "desc" ? -1 : 1);
    return out;
  }
  function sortRows(rows, key, dir) {
    var v;
    if (key === "headline") {
      if (!lowHead) { lowHead = new Array(N); for (var i = 0; i < N; i++) lowHead[i] = D.h[i].toLowerCase(); }
      v = lowHead;
    } else if (key === "ics") {
      v = function (i) { var s = sysOf(i); return s.length ? D.sys[s[0]] : ""; };
    } else if (key === "category") {
      v = function (i) { return catOf(i) + "\u0000" + (99999 - D.p[i]); };
    } else if (key === "cluster") v = D.k;
    else if (key === "uncertain") v = D.u;
    else if (key === "source") v = D.g;
    else if (key === "confidence") v = D.p;
    else return;
    var keyOf = typeof v === "function" ? v : function (i) { return v[i]; };
    var keys = new Array(N);
    rows.forEach(function (i) { keys[i] = keyOf(i); });
    rows.sort(function (a, b) {
      var x = keys[a], y = keys[b];
      return x < y ? -dir : x > y ? dir : a - b;
    });
  }

  // ---- drawing ------------------------------------------------------------------------------------
  function catOptions(current) {
    var out = "";
    for (var c = 0; c < D.cats.length; c++) {
      out += '<option value="' + esc(D.cats[c]) + '"' + (D.cats[c] === current ? " selected" : "") + ">" + esc(D.cats[c]) + "</option>";
    }
    return out;
  }
  function rowHtml(i) {
    var id = D.id[i], cat = catOf(i), fixed = fixes[id] !== undefined;
    var s = sysOf(i), names = s.map(function (k) { return D.sys[k]; });
    var conf = D.p[i] >= 0 ? (D.p[i] / 10000).toFixed(2) : "";
    var more = D.s[i] ? '<button type="button" class="more" aria-expanded="false" aria-label="show standfirst">&#9656;</button>' : "";
    var reason = REASONS[D.u[i]];
    return '<tr data-i="' + i + '"' + (fixed ? ' class="fixed"' : "") + ">" +
      '<td class="hl" data-label="headline">' + more + esc(D.h[i]) +
      (D.s[i] ? '<div class="sf" hidden>' + esc(D.s[i]) + "</div>" : "") + "</td>" +
      '<td data-label="ICS pages" title="' + esc(names.join("; ")) + '">' + esc(names[0] || "") +
      (names.length > 1 ? ' <span class="muted">+' + (names.length - 1) + "</span>" : "") + "</td>" +
      '<td data-label="category"><select class="catsel" aria-label="category of ' + esc(D.h[i].slice(0, 60)) + '">' + catOptions(cat) + "</select> " +
      '<span class="small" title="margin over the runner-up ' + (D.m[i] / 10000).toFixed(2) + '">' + conf + "</span>" +
      (fixed ? ' <span class="tag">was ' + esc(D.c[i] >= 0 ? D.cats[D.c[i]] : "none") + "</span>" : "") + "</td>" +
      '<td class="num" data-label="cluster"><button type="button" class="link" data-cl="' + D.k[i] + '">' + D.k[i] + "</button></td>" +
      '<td data-label="uncertain">' + (reason ? '<span class="tag ' + reason + '">' + reason.replace(/_/g, " ") + "</span>" : "") + "</td>" +
      '<td data-label="label"><span class="tag' + (D.g[i] ? " gold" : "") + '">' + (D.g[i] ? "gold" : "predicted") + "</span></td></tr>";
  }
  function update() {
    shown = filtered();
    var pages = Math.max(1, Math.ceil(shown.length / PAGE));
    var page = Math.min(Math.max(0, (Number(state.page) || 1) - 1), pages - 1);
    var html = [];
    for (var j = page * PAGE; j < Math.min(shown.length, (page + 1) * PAGE); j++) html.push(rowHtml(shown[j]));
    el("rows").innerHTML = html.join("") || '<tr><td colspan="6" class="muted">No article matches.</td></tr>';
    el("count").textContent = shown.length.toLocaleString("en-GB") + " of " + N.toLocaleString("en-GB") + " articles" + (state.view === "queue" ? " in the review queue" : "");
    el("pageinfo").textContent = "page " + (page + 1) + " of " + pages;
    el("prev").disabled = page === 0;
    el("next").disabled = page >= pages - 1;
    var chips = [];
    ["cat", "ics", "cluster", "unc", "src", "id", "q"].forEach(function (k) {
      if (state[k]) chips.push('<button type="button" data-clear="' + k + '" aria-label="remove filter ' + k + '">' + esc(k === "id" ? "article " + state[k] : k + ": " + state[k]) + " \u00d7</button>");
    });
    el("chips").innerHTML = chips.join(" ");
    document.querySelectorAll("#grid th").forEach(function (h) {
      var on = state.sort && h.getAttribute("data-key").split(" ").indexOf(state.sort) >= 0;
      h.setAttribute("aria-sort", on ? (state.dir === "desc" ? "descending" : "ascending") : "none");
      h.querySelectorAll("button.sort").forEach(function (b) { b.classList.toggle("on", b.getAttribute("data-sort") === state.sort); });
    });
    document.querySelectorAll(".cbar").forEach(function (b) { b.classList.toggle("on", b.getAttribute("data-cat") === state.cat); });
    document.querySelectorAll(".srow").forEach(function (b) { b.classList.toggle("on", b.getAttribute("data-sys") === state.ics); });
    document.querySelectorAll("tr.crow").forEach(function (b) { b.classList.toggle("on", b.getAttribute("data-cluster") === state.cluster); });
    updateMap();
    updateFixes();
  }
  function updateMap() {
    var svg = document.querySelector("svg.map");
    if (!svg) return;
    var focus = state.cluster != null || state.id != null;
    svg.classList.toggle("focus", focus);
    svg.querySelectorAll(".hull").forEach(function (h) { h.classList.toggle("on", h.getAttribute("data-cluster") === state.cluster); });
    if (!focus && !svg._dimmed) return;
    svg._dimmed = focus;
    svg.querySelectorAll(".dots circle").forEach(function (c) {
      var i = Number(c.getAttribute("data-i"));
      var on = state.id != null ? D.id[i] === state.id : String(D.k[i]) === state.cluster;
      c.classList.toggle("dim", focus && !on);
    });
  }
  function updateFixes() {
    var n = Object.keys(fixes).length;
    el("fixcount").textContent = n ? n + " correction" + (n === 1 ? "" : "s") + " kept in this browser" : "no corrections yet";
    el("dl-fix").disabled = n === 0;
    el("clear-fix").disabled = n === 0;
  }

  // ---- downloads ----------------------------------------------------------------------------------
  function download(name, text, type) {
    var blob = new Blob([text], {type: type});
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }
  function csvCell(v) {
    var t = v == null ? "" : String(v);
    if (/^[=+\-@\t\r]/.test(t)) t = "'" + t;  // a spreadsheet must not run it as a formula
    return /[",\n\r]/.test(t) ? '"' + t.replace(/"/g, '""') + '"' : t;
  }
  function csv() {
    var lines = [["id", "headline", "standfirst", "systems", "category", "confidence", "cluster", "uncertain_reason", "label_source", "corrected_category"].join(",")];
    shown.forEach(function (i) {
      lines.push([D.id[i], D.h[i], D.s[i], sysOf(i).map(function (k) { return D.sys[k]; }).join("; "),
        D.c[i] >= 0 ? D.cats[D.c[i]] : "", D.p[i] >= 0 ? (D.p[i] / 10000).toFixed(4) : "", D.k[i],
        REASONS[D.u[i]], D.g[i] ? "gold" : "model", fixes[D.id[i]] || ""].map(csvCell).join(","));
    });
    return lines.join("\r\n") + "\r\n";
  }
  function correctionsJsonl() {
    var rows = Object.keys(fixes).map(rowIndex).filter(function (i) { return i !== undefined; }).sort(function (a, b) { return a - b; });
    return rows.map(function (i) {
      return JSON.stringify({headline: D.h[i], standfirst: D.s[i] || null, category: fixes[D.id[i]], id: D.id[i]});
    }).join("\n") + (rows.length ? "\n" : "");
  }

  // ---- events ----------------------------------------------------------------------------------------
  var timer = null;
  el("f-q").addEventListener("input", function () {
    clearTimeout(timer);
    var v = this.value;
    timer = setTimeout(function () { set({q: v.trim()}); }, 150);
  });
  ["view", "cat", "ics", "cluster", "unc", "src"].forEach(function (k) {
    el(FIELDS[k]).addEventListener("change", function () { var c = {}; c[k] = this.value; set(c); });
  });
  el("f-reset").addEventListener("click", function () { state = {}; set({}); });
  el("prev").addEventListener("click", function () { set({page: Math.max(1, (Number(state.page) || 1) - 1)}, true); });
  el("next").addEventListener("click", function () { set({page: (Number(state.page) || 1) + 1}, true); });
  el("chips").addEventListener("click", function (e) {
    var b = e.target.closest("[data-clear]");
    if (b) { var c = {}; c[b.getAttribute("data-clear")] = ""; set(c); }
  });
  document.querySelector("#grid thead").addEventListener("click", function (e) {
    var b = e.target.closest("[data-sort]");
    if (!b) return;
    var key = b.getAttribute("data-sort");
    set({sort: key, dir: state.sort === key && state.dir !== "desc" ? "desc" : ""});
  });
  var rows = el("rows");
  rows.addEventListener("click", function (e) {
    var more = e.target.closest("button.more");
    if (more) {
      var sf = more.parentNode.querySelector(".sf");
      sf.hidden = !sf.hidden;
      more.setAttribute("aria-expanded", String(!sf.hidden));
      more.innerHTML = sf.hidden ? "&#9656;" : "&#9662;";
      return;
    }
    var cl = e.target.closest("[data-cl]");
    if (cl) set({cluster: cl.getAttribute("data-cl")});
  });
  rows.addEventListener("change", function (e) {
    if (!e.target.classList.contains("catsel")) return;
    var tr = e.target.closest("tr"), i = Number(tr.getAttribute("data-i")), id = D.id[i];
    var original = D.c[i] >= 0 ? D.cats[D.c[i]] : "";
    if (e.target.value === original) delete fixes[id]; else fixes[id] = e.target.value;
    saveFixes();
    tr.outerHTML = rowHtml(i);  // keep the row in place until the next filter change
    var again = rows.querySelector('tr[data-i="' + i + '"] select.catsel');
    if (again) again.focus();
    updateFixes();
  });
  el("dl-csv").addEventListener("click", function () { download("articles-filtered.csv", csv(), "text/csv;charset=utf-8"); });
  el("dl-fix").addEventListener("click", function () { download("corrections-" + D.run + ".jsonl", correctionsJsonl(), "application/x-ndjson;charset=utf-8"); });
  el("clear-fix").addEventListener("click", function () {
    if (!window.confirm || window.confirm("Forget every correction made in this browser for this run?")) { fixes = {}; saveFixes(); update(); }
  });
  function goToList() {
    var s = el("articles");
    if (s && s.scrollIntoView) s.scrollIntoView({block: "start"});
  }
  function pick(target) {
    var t = target.closest(".pick");
    if (!t) return false;
    if (t.hasAttribute("data-cat")) set({cat: state.cat === t.getAttribute("data-cat") ? "" : t.getAttribute("data-cat")});
    else if (t.hasAttribute("data-sys")) set({ics: state.ics === t.getAttribute("data-sys") ? "" : t.getAttribute("data-sys")});
    else if (t.hasAttribute("data-cluster")) set({cluster: state.cluster === t.getAttribute("data-cluster") ? "" : t.getAttribute("data-cluster")});
    goToList();
    return true;
  }
  document.addEventListener("click", function (e) {
    if (pick(e.target)) return;
    var dot = e.target.closest && e.target.closest("svg.map .dots circle");
    if (dot) { set({id: D.id[Number(dot.getAttribute("data-i"))], view: ""}); goToList(); }
  });
  document.addEventListener("keydown", function (e) {
    if ((e.key === "Enter" || e.key === " ") && e.target.classList && e.target.classList.contains("pick")) {
      e.preventDefault();
      pick(e.target);
    }
  });
  window.addEventListener("hashchange", function () { readHash(); toControls(); update(); });

  readHash();
  toControls();
  update();
  document.documentElement.setAttribute("data-ready", "1");
})();
