/* Sorting and filtering of the invoice table. Plain JavaScript, no library, no network.
   Each row carries its rank under every sort column (data-k, computed when the page was
   written), so sorting places rows at their rank: linear, fast with 10,000 rows.
   The state lives in the URL fragment, e.g. review.html#sort=total:desc&flag=changed&q=acme,
   so a view can be bookmarked or sent to a colleague. */
(function () {
  "use strict";
  var COLUMNS = ["number", "customer", "contract", "period", "total", "due", "flags"];
  var FIRST_DIRECTION = { total: "desc", flags: "desc" };  // the biggest first is what one looks for
  var LOCALE = document.documentElement.getAttribute("data-locale") || undefined;  // the page's numbers'
  var table = document.getElementById("invoice-table");
  if (!table) { return; }
  var tbody = table.tBodies[0];
  var rows = Array.prototype.slice.call(tbody.rows);
  var n = rows.length;
  var ranks = COLUMNS.map(function () { return new Int32Array(n); });
  var haystack = new Array(n), flags = new Array(n), currency = new Array(n), shown = new Uint8Array(n);
  for (var i = 0; i < n; i++) {
    var row = rows[i];
    var k = row.getAttribute("data-k").split(" ");
    for (var c = 0; c < COLUMNS.length; c++) { ranks[c][i] = +k[c]; }
    haystack[i] = row.textContent.toLowerCase();
    flags[i] = " " + row.getAttribute("data-f") + " ";
    currency[i] = row.getAttribute("data-c");
    shown[i] = 1;
  }

  var $ = function (id) { return document.getElementById(id); };
  var q = $("q"), flagSelect = $("flag"), curSelect = $("cur"), count = $("count"), empty = $("empty");
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var chips = Array.prototype.slice.call(document.querySelectorAll(".chip[data-flag]"));
  var state = defaults();

  function defaults() { return { sort: "number", dir: "asc", q: "", flag: "", cur: "" }; }

  function sortRows(column, dir) {
    var started = performance.now();
    var c = COLUMNS.indexOf(column);
    if (c < 0) { return; }
    if (dir !== "desc") { dir = "asc"; }
    var rank = ranks[c], ordered = new Array(n);
    for (var i = 0; i < n; i++) { ordered[dir === "asc" ? rank[i] : n - 1 - rank[i]] = rows[i]; }
    // Reorder the body while it is out of the document: one style and layout pass instead of one per row.
    var tableTop = table.getBoundingClientRect().top, scrolled = window.scrollY;
    var parent = tbody.parentNode, next = tbody.nextSibling;
    parent.removeChild(tbody);
    if (n <= 50000) {
      tbody.replaceChildren.apply(tbody, ordered);
    } else {
      var fragment = document.createDocumentFragment();
      for (var j = 0; j < n; j++) { fragment.appendChild(ordered[j]); }
      tbody.appendChild(fragment);
    }
    parent.insertBefore(tbody, next);
    // Within the table, show the top of the new order; above it, stay where one was.
    if (tableTop < 0) { table.scrollIntoView({ block: "start" }); } else { window.scrollTo(0, scrolled); }
    state.sort = column; state.dir = dir;
    headers.forEach(function (th) {
      if (th.getAttribute("data-col") === column) {
        th.setAttribute("aria-sort", dir === "asc" ? "ascending" : "descending");
      } else {
        th.removeAttribute("aria-sort");
      }
    });
    void tbody.offsetHeight;  // count the layout in the timing
    table.setAttribute("data-sort-ms", (performance.now() - started).toFixed(1));
  }

  function filterRows() {
    var words = state.q.toLowerCase().split(/\s+/).filter(Boolean);
    var flag = state.flag === "*" ? null : (state.flag ? " " + state.flag + " " : "");
    var visible = 0;
    for (var i = 0; i < n; i++) {
      var ok = true;
      if (state.cur && currency[i] !== state.cur) { ok = false; }
      if (ok && flag === null && flags[i] === "  ") { ok = false; }
      if (ok && flag && flags[i].indexOf(flag) < 0) { ok = false; }
      for (var w = 0; ok && w < words.length; w++) {
        if (haystack[i].indexOf(words[w]) < 0) { ok = false; }
      }
      if (ok) { visible++; }
      if (shown[i] !== (ok ? 1 : 0)) { shown[i] = ok ? 1 : 0; rows[i].hidden = !ok; }
    }
    count.textContent = visible.toLocaleString(LOCALE) + " of " + n.toLocaleString(LOCALE);
    if (n) { empty.hidden = visible > 0; }
    chips.forEach(function (chip) { chip.classList.toggle("active", chip.getAttribute("data-flag") === state.flag); });
  }

  function showControls() {
    if (q && q.value !== state.q) { q.value = state.q; }
    if (flagSelect) { flagSelect.value = state.flag; if (flagSelect.value !== state.flag) { state.flag = ""; flagSelect.value = ""; } }
    if (curSelect) { curSelect.value = state.cur; if (curSelect.value !== state.cur) { state.cur = ""; curSelect.value = ""; } }
  }

  function toFragment() {
    var parts = [];
    if (state.sort !== "number" || state.dir !== "asc") { parts.push("sort=" + state.sort + ":" + state.dir); }
    if (state.flag) { parts.push("flag=" + encodeURIComponent(state.flag)); }
    if (state.cur) { parts.push("cur=" + encodeURIComponent(state.cur)); }
    if (state.q) { parts.push("q=" + encodeURIComponent(state.q)); }
    return parts.join("&");
  }

  function remember() {
    var fragment = toFragment();
    try { history.replaceState(null, "", fragment ? "#" + fragment : location.pathname + location.search); } catch (e) { /* some file: URLs refuse */ }
  }

  function fromFragment() {
    var s = defaults();
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      var at = part.indexOf("=");
      if (at < 0) { return; }
      var key = part.slice(0, at), value;
      try { value = decodeURIComponent(part.slice(at + 1).replace(/\+/g, " ")); } catch (e) { return; }
      if (key === "sort") {
        var bits = value.split(":");
        if (COLUMNS.indexOf(bits[0]) >= 0) { s.sort = bits[0]; s.dir = bits[1] === "desc" ? "desc" : "asc"; }
      } else if (key === "flag" || key === "cur" || key === "q") {
        s[key] = value;
      }
    });
    return s;
  }

  function apply(next) {
    var resort = next.sort !== state.sort || next.dir !== state.dir;
    state = next;
    showControls();
    if (resort) { sortRows(state.sort, state.dir); }
    filterRows();
  }

  headers.forEach(function (th) {
    var button = th.querySelector("button");
    if (!button) { return; }
    button.addEventListener("click", function (event) {
      var column = th.getAttribute("data-col");
      var dir = column === state.sort ? (state.dir === "asc" ? "desc" : "asc") : (FIRST_DIRECTION[column] || "asc");
      sortRows(column, dir);
      remember();
      // How long from the click until the sorted rows are on screen (read by the browser test).
      requestAnimationFrame(function () {
        setTimeout(function () { table.setAttribute("data-click-to-paint-ms", (performance.now() - event.timeStamp).toFixed(1)); }, 0);
      });
    });
  });

  var typing = null;
  if (q) {
    q.addEventListener("input", function () {
      clearTimeout(typing);
      typing = setTimeout(function () { state.q = q.value.trim(); filterRows(); remember(); }, n > 2000 ? 150 : 0);
    });
  }
  if (flagSelect) { flagSelect.addEventListener("change", function () { state.flag = flagSelect.value; filterRows(); remember(); }); }
  if (curSelect) { curSelect.addEventListener("change", function () { state.cur = curSelect.value; filterRows(); remember(); }); }
  $("reset").addEventListener("click", function () { apply(defaults()); remember(); });
  chips.forEach(function (chip) {
    chip.addEventListener("click", function () {
      var name = chip.getAttribute("data-flag");
      state.flag = state.flag === name ? "" : name;
      showControls(); filterRows(); remember();
      if (state.flag) { table.scrollIntoView({ block: "start" }); }
    });
  });
  window.addEventListener("hashchange", function () { apply(fromFragment()); });

  var initial = fromFragment();
  state = defaults();
  if (initial.sort !== "number" || initial.dir !== "asc") { state.sort = ""; }
  apply(initial);
  document.documentElement.setAttribute("data-ready", "1");
}());
