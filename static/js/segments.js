// Saved segments: the sidebar marks the segment the table shows, also after htmx swaps the
// table without reloading the page (the table says which segment in data-segment), and the
// name field waits for typing when the save form opens. Without this file the links and
// forms work the same.
(function () {
  "use strict";

  function markActive() {
    var table = document.getElementById("contact-table");
    var nav = document.querySelector("[data-segments]");
    if (!table || !nav) return;
    var active = table.getAttribute("data-segment") || "";
    nav.querySelectorAll("[data-segment-link]").forEach(function (link) {
      if (link.getAttribute("data-segment-link") === active) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    });
  }

  document.addEventListener("DOMContentLoaded", markActive);
  document.addEventListener("htmx:afterSettle", markActive);

  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (!details.open || !details.matches || !details.matches(".segment-save, .segment-bar details")) return;
    var name = details.querySelector("input[name=name]");
    if (name) { name.focus(); name.select(); }
  }, true);
})();
