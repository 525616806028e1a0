// Conversation page: keep the transcript scrolled to the newest message, send with Ctrl+Enter.
(function () {
  "use strict";

  var stickToBottom = true;

  function transcript() {
    return document.getElementById("transcript");
  }

  function scrollToEnd() {
    var el = transcript();
    if (el) el.scrollTop = el.scrollHeight;
  }

  function nearBottom(el) {
    return el.scrollHeight - el.scrollTop - el.clientHeight < 48;
  }

  document.addEventListener("DOMContentLoaded", scrollToEnd);

  // Polling replaces the transcript: follow new messages only if the reader was at the end,
  // so scrolling back through history is not interrupted.
  document.addEventListener("htmx:beforeSwap", function () {
    var el = transcript();
    stickToBottom = !el || nearBottom(el);
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail && event.detail.elt;
    if (stickToBottom || (target && target.id === "conversation-main")) scrollToEnd();
  });

  document.addEventListener("keydown", function (event) {
    var box = event.target;
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
    if (!box.matches || !box.matches(".reply-box textarea")) return;
    event.preventDefault();
    if (box.form.requestSubmit) box.form.requestSubmit();
    else box.form.submit();
  });
})();
