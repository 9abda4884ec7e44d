/* The console's few behaviours, no inline script (the Content-Security-Policy allows scripts
 * from this site only):
 * - charts: an element with data-chart="ID" draws the ECharts option held as JSON in the
 *   <script type="application/json" id="ID"> element (Django's json_script);
 * - "select all" checkboxes: data-select-all="NAME" toggles the row checkboxes named NAME;
 * - filter forms (form.filters) leave empty fields out of the URL;
 * - keyboard: j / k move between rows of a table marked data-keyboard, x ticks the row,
 *   Enter opens its first link; "/" focuses the page's first search field.
 * Each runs again on content htmx swaps in. */
(function () {
  "use strict";

  function drawCharts(root) {
    if (typeof window.echarts === "undefined") { return; }
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      var source = document.getElementById(el.dataset.chart);
      if (!source) { return; }
      var chart = window.echarts.getInstanceByDom(el) || window.echarts.init(el);
      chart.setOption(JSON.parse(source.textContent), true);
    });
  }

  function wireSelectAll(root) {
    root.querySelectorAll("[data-select-all]").forEach(function (box) {
      box.addEventListener("change", function () {
        document.querySelectorAll('input[type=checkbox][name="' + box.dataset.selectAll + '"]')
          .forEach(function (row) { row.checked = box.checked; });
      });
    });
  }

  function rowsOf(table) { return Array.prototype.slice.call(table.tBodies[0].rows); }

  function onKey(event) {
    var target = event.target;
    if (target.closest("input, textarea, select, [contenteditable]")) { return; }
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (event.key === "/") {
      var search = document.querySelector("main input[type=search], main form[role=search] input:not([type=hidden])");
      if (search) { event.preventDefault(); search.focus(); }
      return;
    }
    var table = document.querySelector("table[data-keyboard]");
    if (!table) { return; }
    var rows = rowsOf(table);
    var current = table.querySelector("tr.current");
    var index = rows.indexOf(current);
    if (event.key === "j" || event.key === "k") {
      index = event.key === "j" ? Math.min(rows.length - 1, index + 1) : Math.max(0, index - 1);
      if (current) { current.classList.remove("current"); }
      if (rows[index]) {
        rows[index].classList.add("current");
        rows[index].scrollIntoView({ block: "nearest" });
      }
    } else if (event.key === "x" && current) {
      var box = current.querySelector("input[type=checkbox]");
      if (box) { box.checked = !box.checked; }
    } else if (event.key === "Enter" && current) {
      var link = current.querySelector("a[href]");
      if (link) { link.click(); }
    }
  }

  function onSubmit(event) {
    var form = event.target;
    if (!form.matches("form.filters")) { return; }
    form.querySelectorAll("input, select").forEach(function (field) {
      if (field.name && field.value === "") { field.disabled = true; }
    });
  }

  function init(root) { drawCharts(root); wireSelectAll(root); }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function (event) { init(event.target); });
  document.addEventListener("keydown", onKey);
  document.addEventListener("submit", onSubmit);
  window.addEventListener("resize", function () {
    if (typeof window.echarts === "undefined") { return; }
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var chart = window.echarts.getInstanceByDom(el);
      if (chart) { chart.resize(); }
    });
  });
}());
