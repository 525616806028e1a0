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

  // The filter builder: conditions and value inputs that fit the field or attribute (a
  // date picker for dates, a number field, the options of a select, yes/no, the agent's
  // tags), two inputs for "between", a number of days for "in the last … days", and no
  // value at all for "has any value" / "is empty". The server checks the same again.
  var INPUT_TYPES = { number: "number", count: "number", date: "date", moment: "date", seen: "date", datetime: "datetime-local" };

  function valueControl(type, op, name, kept, options) {
    var control;
    var choosing = (type === "boolean" || type === "select") && op !== "contains" && op !== "not_contains";
    if (choosing) {
      control = document.createElement("select");
      var values = type === "boolean" ? [["true", "Yes"], ["false", "No"]] : options.map(function (o) { return [o, o]; });
      values.forEach(function (pair) {
        var option = document.createElement("option");
        option.value = pair[0];
        option.textContent = pair[1];
        if (pair[0] === kept) option.selected = true;
        control.appendChild(option);
      });
    } else {
      control = document.createElement("input");
      if (op === "within" || op === "older") {
        control.type = "number";
        control.min = "1";
        control.step = "1";
      } else {
        control.type = INPUT_TYPES[type] || "text";
        if (type === "number") control.step = "any";
        if (type === "count") { control.step = "1"; control.min = "0"; }
        if (type === "tag") control.setAttribute("list", "builder-tag-options");
      }
      // Keep what was typed when it still fits the new input.
      var fitsNumber = control.type === "number" && /^-?[\d.]+$/.test(kept);
      var fitsDate = control.type === "date" && /^\d{4}-\d{2}-\d{2}$/.test(kept);
      if (control.type === "text" || fitsNumber || fitsDate) control.value = kept;
    }
    control.name = name;
    return control;
  }

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
    var condition = op.value;
    var presence = condition === "exists" || condition === "empty";
    var range = condition === "between";
    var days = condition === "within" || condition === "older";
    holder.hidden = presence;
    var label = holder.querySelector("[data-builder-value-label]");
    if (label) label.textContent = days ? "Days" : range ? "From" : "Value";
    var end = holder.querySelector("[data-builder-end]");
    if (end) end.hidden = !range;
    var options = (chosen && chosen.getAttribute("data-options") || "").split("\n").filter(Boolean);
    ["fvalue", "fvalue2"].forEach(function (name) {
      var old = holder.querySelector("[name=" + name + "]");
      if (!old) return;
      var control = valueControl(type, condition, name, old.value, options);
      var wanted = name === "fvalue" ? !presence : range;
      control.required = wanted;
      control.disabled = !wanted;
      ["aria-invalid", "aria-describedby", "placeholder"].forEach(function (attr) {
        if (old.hasAttribute(attr)) control.setAttribute(attr, old.getAttribute(attr));
      });
      if (control.type !== "text") control.removeAttribute("placeholder");
      old.replaceWith(control);
    });
  }
  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("[data-filter-builder]");
    if (form && (event.target.matches("[data-builder-key]") || event.target.matches("[data-builder-op]"))) fitBuilder(form);
  });
  function fitAll() { document.querySelectorAll("[data-filter-builder]").forEach(fitBuilder); }
  document.addEventListener("DOMContentLoaded", fitAll);
  document.addEventListener("htmx:afterSettle", fitAll);
})();
