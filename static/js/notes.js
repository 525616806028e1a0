// The contact page's notes and its "Merge with…" search. Everything works without this
// file (plain forms and pages); it only adds keyboard comfort.
(function () {
  "use strict";

  // Ctrl+Enter (⌘+Enter on a Mac) in a note's text saves it, as in a chat composer.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
    var field = event.target;
    if (!field.matches || !field.matches(".note-form textarea")) return;
    event.preventDefault();
    var form = field.closest("form");
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  });

  // The "Merge with…" search opened inside the page closes with its Close link or Escape,
  // and the button that opened it gets the focus back.
  function closeMergeSearch() {
    var slot = document.getElementById("merge-with");
    if (!slot || !slot.firstElementChild) return false;
    slot.innerHTML = "";
    var button = document.getElementById("merge-with-button");
    if (button) button.focus();
    return true;
  }
  document.addEventListener("click", function (event) {
    var close = event.target.closest && event.target.closest("#merge-with [data-merge-close]");
    if (close && closeMergeSearch()) event.preventDefault();
  });
  // Opened, it takes the focus to its search field (after the shared handler that puts
  // the focus back on the button that was pressed).
  document.addEventListener("htmx:afterSettle", function (event) {
    if (!event.detail || !event.detail.target || event.detail.target.id !== "merge-with") return;
    var field = document.getElementById("merge-q");
    if (field) field.focus();
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var slot = document.getElementById("merge-with");
    if (slot && slot.contains(event.target)) closeMergeSearch();
  });

  // Arrow down from the search field goes through the results' links, up comes back.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    var input = document.getElementById("merge-q");
    var box = document.getElementById("merge-candidates");
    if (!input || !box) return;
    var links = Array.prototype.slice.call(box.querySelectorAll("a"));
    if (!links.length) return;
    var index = links.indexOf(document.activeElement);
    if (event.target === input && event.key === "ArrowDown") {
      event.preventDefault();
      links[0].focus();
    } else if (index >= 0) {
      event.preventDefault();
      var next = index + (event.key === "ArrowDown" ? 1 : -1);
      if (next < 0) input.focus(); else if (next < links.length) links[next].focus();
    }
  });
})();
