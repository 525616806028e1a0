// Attribute schema: drag rows to reorder (the ↑/↓ buttons do the same without JavaScript).
(function () {
  "use strict";

  var dragged = null;

  function rows(body) {
    return Array.prototype.slice.call(body.querySelectorAll("tr[data-key]"));
  }

  function clearMarks(body) {
    rows(body).forEach(function (r) { r.classList.remove("drop-before", "dragging"); });
  }

  document.addEventListener("dragstart", function (event) {
    var row = event.target.closest && event.target.closest("tr[data-key]");
    if (!row) return;
    dragged = row;
    row.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", row.getAttribute("data-key"));
  });

  document.addEventListener("dragover", function (event) {
    if (!dragged) return;
    var row = event.target.closest && event.target.closest("tr[data-key]");
    if (!row || row.parentNode !== dragged.parentNode) return;
    event.preventDefault();
    clearMarks(row.parentNode);
    dragged.classList.add("dragging");
    if (row !== dragged) row.classList.add("drop-before");
  });

  document.addEventListener("drop", function (event) {
    if (!dragged) return;
    var row = event.target.closest && event.target.closest("tr[data-key]");
    var body = dragged.parentNode;
    if (!row || row.parentNode !== body) return;
    event.preventDefault();
    if (row !== dragged) {
      var after = rows(body).indexOf(dragged) < rows(body).indexOf(row);
      body.insertBefore(dragged, after ? row.nextSibling : row);
    }
    clearMarks(body);
    var keys = rows(body).map(function (r) { return r.getAttribute("data-key"); });
    dragged = null;
    htmx.ajax("POST", body.getAttribute("data-reorder-url"), {
      target: "#attribute-table", swap: "outerHTML", values: { key: keys }
    });
  });

  document.addEventListener("dragend", function () {
    if (dragged) clearMarks(dragged.parentNode);
    dragged = null;
  });

  // The create form: options only for select attributes; the key follows the label until
  // someone edits it.
  function syncOptions() {
    var type = document.getElementById("id_type");
    var options = document.getElementById("id_options");
    if (!type || !options) return;
    var field = options.closest(".field");
    if (field) field.hidden = type.value !== "select" && !options.value;
  }

  function slug(text) {
    var key = text.toLowerCase().normalize("NFKD").replace(/[\u0300-\u036f]/g, "")
      .replace(/[^a-z0-9]+/g, "_").replace(/^[^a-z]+/, "").replace(/_+$/, "");
    return key.slice(0, 63);
  }

  document.addEventListener("change", function (event) {
    if (event.target.id === "id_type") syncOptions();
  });
  document.addEventListener("input", function (event) {
    var key = document.getElementById("id_key");
    if (!key) return;
    if (event.target === key) key.setAttribute("data-edited", key.value ? "1" : "");
    if (event.target.id === "id_label" && !key.getAttribute("data-edited")) {
      key.value = slug(event.target.value);
    }
  });
  document.addEventListener("DOMContentLoaded", syncOptions);
})();
