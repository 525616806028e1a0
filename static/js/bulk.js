// The contacts table's bulk bar, beyond the selected rows (contacts.js counts those):
// "select all N matching" once the whole page is selected, as in a mail client; Merge for
// exactly two rows; a typed value input for "Set attribute"; a confirmation before an action
// on a whole view; and the table refreshed when the bulk job shown above it ends.
// Without this file the bar still acts on the selected rows.
(function () {
  "use strict";

  var ACTIVE = { queued: true, running: true };

  function bulkForm() { return document.getElementById("bulk-form"); }

  function rowChecks(form) {
    return Array.prototype.slice.call(form.querySelectorAll("input[data-row-check]"));
  }

  function scopeOf(form) {
    var scope = form.querySelector("[data-bulk-scope]");
    return scope ? scope.value : "selected";
  }

  // The words of the confirmation before an action on every matching contact.
  var CONFIRM = {
    tag: "Add this tag to every contact matching this view ({n})?",
    untag: "Remove this tag from every contact matching this view ({n})?",
    set_attribute: "Set this value on every contact matching this view ({n})?",
    delete: "Delete every contact matching this view ({n})? You can undo it afterwards.",
    restore: "Restore every contact matching this view ({n})?"
  };

  function setScope(form, mode) {
    var scope = form.querySelector("[data-bulk-scope]");
    if (scope) scope.value = mode;
    form.querySelectorAll("[data-bulk-mode]").forEach(function (el) {
      el.hidden = el.getAttribute("data-bulk-mode") !== mode;
    });
    var bar = form.querySelector("[data-bulk-bar]");
    var total = bar ? bar.getAttribute("data-total-text") : "";
    form.querySelectorAll("button[name=action][hx-post]").forEach(function (button) {
      var words = CONFIRM[button.value];
      if (mode === "all" && words) {
        button.setAttribute("hx-confirm", words.replace("{n}", total));
      } else {
        button.removeAttribute("hx-confirm");
      }
    });
    refresh(form);
  }

  function refresh(form) {
    if (!form) return;
    var checks = rowChecks(form);
    var selected = checks.filter(function (c) { return c.checked; }).length;
    var wholePage = checks.length > 0 && selected === checks.length;
    var all = form.querySelector("[data-bulk-all]");
    if (!wholePage && scopeOf(form) === "all") { setScope(form, "selected"); return; }
    if (all) all.hidden = !wholePage;
    var merge = form.querySelector("[data-bulk-merge]");
    if (merge) merge.disabled = selected !== 2;
    var count = form.querySelector("[data-bulk-count]");
    var bar = form.querySelector("[data-bulk-bar]");
    if (count && bar && scopeOf(form) === "all") {
      count.textContent = bar.getAttribute("data-total-text") + " selected";
    }
  }

  // Registered after contacts.js (scripts run in order), so this sees its checkboxes set.
  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("#bulk-form");
    if (form && event.target.matches("input[data-row-check], input[data-select-all]")) refresh(form);
  });

  document.addEventListener("click", function (event) {
    var form = bulkForm();
    if (!form || !form.contains(event.target)) return;
    if (event.target.closest("[data-bulk-choose-all]")) {
      setScope(form, "all");
      var clear = form.querySelector("[data-bulk-clear]");
      if (clear) clear.focus();
    } else if (event.target.closest("[data-bulk-clear]")) {
      rowChecks(form).forEach(function (c) { c.checked = false; });
      setScope(form, "selected");
      // contacts.js hides the bar and resets the header checkbox on a change.
      var header = form.querySelector("input[data-select-all]");
      if (header) {
        header.checked = false;
        header.dispatchEvent(new Event("change", { bubbles: true }));
        header.focus();
      }
    }
  });

  // "Set attribute": an input that fits the attribute's type, with a way to clear it.
  function fitValue(panel) {
    var key = panel.querySelector("[data-bulk-attr-key]");
    var holder = panel.querySelector("[data-bulk-attr-value]");
    if (!key || !holder) return;
    var chosen = key.options[key.selectedIndex];
    var type = chosen ? chosen.getAttribute("data-type") : "text";
    var old = holder.querySelector("[name=value]");
    var kept = old && old.tagName === "INPUT" ? old.value : "";
    var control;
    if (type === "boolean" || type === "select") {
      control = document.createElement("select");
      var options = (chosen.getAttribute("data-options") || "").split("\n").filter(Boolean);
      var pairs = type === "boolean" ? [["true", "Yes"], ["false", "No"]] : options.map(function (o) { return [o, o]; });
      pairs.push(["", "(clear the value)"]);
      pairs.forEach(function (pair) {
        var option = document.createElement("option");
        option.value = pair[0];
        option.textContent = pair[1];
        control.appendChild(option);
      });
    } else {
      control = document.createElement("input");
      control.type = { number: "number", date: "date", datetime: "datetime-local" }[type] || "text";
      if (type === "number") control.step = "any";
      control.placeholder = "Leave empty to clear the value";
      if (control.type === "text") control.value = kept;
    }
    control.name = "value";
    if (old) old.replaceWith(control); else holder.appendChild(control);
  }
  document.addEventListener("change", function (event) {
    var panel = event.target.closest && event.target.closest("[data-bulk-attribute]");
    if (panel && event.target.matches("[data-bulk-attr-key]")) fitValue(panel);
  });

  function init() {
    var form = bulkForm();
    if (!form) return;
    form.querySelectorAll("[data-bulk-attribute]").forEach(fitValue);
    setScope(form, "selected");
  }
  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.target && event.target.id === "contact-table") init();
  });

  // The job notice: when the job it follows ends, the table shows its result. The refresh
  // replaces the address bar's entry instead of adding one (same URL).
  var lastStatus = null;
  var refreshing = false;
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "bulk-job") {
      lastStatus = event.detail.target.getAttribute("data-status");
    }
  });
  document.addEventListener("htmx:afterSettle", function () {
    var panel = document.getElementById("bulk-job");
    if (!panel || lastStatus === null) return;
    var now = panel.getAttribute("data-status");
    var ended = ACTIVE[lastStatus] && !ACTIVE[now];
    lastStatus = null;
    if (ended && document.getElementById("contact-table") && window.htmx) {
      refreshing = true;
      htmx.ajax("GET", window.location.pathname + window.location.search, {
        target: "#contact-table", swap: "outerHTML"
      });
    }
  });
  document.addEventListener("htmx:beforeHistoryUpdate", function (event) {
    if (refreshing && event.detail.history) {
      event.detail.history.type = "replace";
      refreshing = false;
    }
  });
})();
