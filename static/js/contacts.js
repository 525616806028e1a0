// Contacts pages: bulk selection in the table, and htmx settings for inline validation.
// Everything works without this file (plain forms and links); it only adds comfort.
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  // Validation errors (422) and the duplicate-email offer (409) come back as the form to
  // show again; htmx swaps only 2xx responses unless told otherwise.
  if (window.htmx && !htmx.config.responseHandling.some(function (r) { return r.code === "4(09|22)"; })) {
    htmx.config.responseHandling.unshift({ code: "4(09|22)", swap: true });
  }

  function rowChecks(form) {
    return Array.prototype.slice.call(form.querySelectorAll("input[data-row-check]"));
  }

  function refreshBulkBar(form) {
    if (!form) return;
    var checks = rowChecks(form);
    var selected = checks.filter(function (c) { return c.checked; }).length;
    var bar = form.querySelector("[data-bulk-bar]");
    var count = form.querySelector("[data-bulk-count]");
    var all = form.querySelector("input[data-select-all]");
    if (bar) bar.hidden = selected === 0;
    if (count) count.textContent = selected + " selected";
    if (all) {
      all.checked = selected > 0 && selected === checks.length;
      all.indeterminate = selected > 0 && selected < checks.length;
    }
    checks.forEach(function (c) {
      var row = c.closest("tr");
      if (row) row.classList.toggle("is-selected", c.checked);
    });
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    var form = target.closest && target.closest("#bulk-form");
    if (!form) return;
    if (target.matches("input[data-select-all]")) {
      rowChecks(form).forEach(function (c) { c.checked = target.checked; });
    }
    refreshBulkBar(form);
  });

  // Shift-click selects a range of rows, as in a mail client.
  var lastChecked = null;
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!target.matches || !target.matches("input[data-row-check]")) return;
    var form = target.closest("#bulk-form");
    if (event.shiftKey && lastChecked && form && form.contains(lastChecked)) {
      var checks = rowChecks(form);
      var a = checks.indexOf(lastChecked), b = checks.indexOf(target);
      checks.slice(Math.min(a, b), Math.max(a, b) + 1).forEach(function (c) { c.checked = target.checked; });
      refreshBulkBar(form);
    }
    lastChecked = target;
  });

  function init() { refreshBulkBar(document.getElementById("bulk-form")); }
  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:afterSettle", init);

  // Tag suggestions: arrow keys move between the input and the suggestions.
  document.addEventListener("keydown", function (event) {
    var input = document.getElementById("tag-input");
    var box = document.getElementById("tag-suggestions");
    if (!input || !box || (event.key !== "ArrowDown" && event.key !== "ArrowUp")) return;
    var buttons = Array.prototype.slice.call(box.querySelectorAll("button"));
    if (!buttons.length) return;
    var index = buttons.indexOf(document.activeElement);
    if (event.target === input && event.key === "ArrowDown") {
      event.preventDefault();
      buttons[0].focus();
    } else if (index >= 0) {
      event.preventDefault();
      var next = index + (event.key === "ArrowDown" ? 1 : -1);
      if (next < 0) input.focus(); else if (next < buttons.length) buttons[next].focus();
    }
  });

  // "/" focuses the search box, Escape clears the tag suggestions.
  document.addEventListener("keydown", function (event) {
    var typing = /^(INPUT|TEXTAREA|SELECT)$/.test((event.target.tagName || "")) || event.target.isContentEditable;
    if (event.key === "/" && !typing) {
      var search = document.getElementById("contact-search");
      if (search) { event.preventDefault(); search.focus(); search.select(); }
    }
    if (event.key === "Escape") {
      var box = document.getElementById("tag-suggestions");
      if (box) box.innerHTML = "";
    }
  });

  // The attribute filter builder: conditions and a value input that fit the attribute
  // (a date picker for dates, a number field, the options of a select, yes/no), and no
  // value at all for "has any value" / "is empty". The server checks the same again.
  function fitBuilder(form) {
    var key = form.querySelector("[data-builder-key]");
    var op = form.querySelector("[data-builder-op]");
    var holder = form.querySelector("[data-builder-value]");
    if (!key || !op || !holder) return;
    var chosen = key.options[key.selectedIndex];
    var type = chosen ? chosen.getAttribute("data-type") : "text";
    var firstFit = null;
    Array.prototype.forEach.call(op.options, function (option) {
      var fits = (" " + option.getAttribute("data-types") + " ").indexOf(" " + type + " ") >= 0;
      option.hidden = !fits;
      option.disabled = !fits;
      if (fits && !firstFit) firstFit = option;
    });
    if (op.selectedOptions[0] && op.selectedOptions[0].disabled && firstFit) firstFit.selected = true;
    var presence = op.value === "exists" || op.value === "empty";
    holder.hidden = presence;
    var old = holder.querySelector("[name=fvalue]");
    var kept = old ? old.value : "";
    var control;
    var options = (chosen && chosen.getAttribute("data-options") || "").split("\n").filter(Boolean);
    if (type === "boolean" || type === "select") {
      control = document.createElement("select");
      var values = type === "boolean" ? [["true", "Yes"], ["false", "No"]] : options.map(function (o) { return [o, o]; });
      values.forEach(function (pair) {
        var option = document.createElement("option");
        option.value = pair[0];
        option.textContent = pair[1];
        control.appendChild(option);
      });
    } else {
      control = document.createElement("input");
      control.type = { number: "number", date: "date", datetime: "datetime-local", url: "text" }[type] || "text";
      if (type === "number") control.step = "any";
      control.value = kept;
    }
    control.name = "fvalue";
    control.required = !presence;
    control.disabled = presence;
    if (old) old.replaceWith(control); else holder.appendChild(control);
  }
  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("[data-filter-builder]");
    if (form && (event.target.matches("[data-builder-key]") || event.target.matches("[data-builder-op]"))) fitBuilder(form);
  });
  function fitAll() { document.querySelectorAll("[data-filter-builder]").forEach(fitBuilder); }
  document.addEventListener("DOMContentLoaded", fitAll);
  document.addEventListener("htmx:afterSettle", fitAll);
})();
