// Small behaviours shared by every dashboard page. No inline scripts: the CSP forbids them.
(function () {
  "use strict";

  // <details class="switcher"> closes when clicking elsewhere.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.switcher[open], details.menu[open]").forEach(function (el) {
      if (!el.contains(event.target)) el.removeAttribute("open");
    });
  });

  // Buttons and forms with data-confirm ask before going ahead.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var message = form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  }, true);

  // Copy-to-clipboard buttons: <button data-copy="#element-id">.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.value || source.textContent || "").then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });

  // Import mapping: a row's "new attribute type" shows only while it creates that attribute.
  document.addEventListener("change", function (event) {
    var select = event.target.closest("select[id^='map-']");
    if (!select) return;
    var row = select.closest("tr");
    var type = row && row.querySelector("[data-new-type]");
    if (type) type.hidden = select.value !== type.getAttribute("data-new-type");
  });

  // An avatar URL that fails to load shows the initials instead of a broken image.
  function initialsFor(img) {
    var avatar = img.closest(".avatar");
    if (avatar) avatar.textContent = avatar.getAttribute("data-initials") || "?";
  }
  document.addEventListener("error", function (event) {
    if (event.target instanceof HTMLImageElement) initialsFor(event.target);
  }, true);
  // One that failed before this script ran (it is deferred) is found by its empty size.
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".avatar img").forEach(function (img) {
      if (img.complete && img.naturalWidth === 0) initialsFor(img);
    });
  });

  // Keyboard users keep their place: after an htmx swap, the control that had focus (by
  // id) gets it back, so sorting with Enter or moving an attribute with ↑/↓ does not send
  // focus to the top of the page.
  var focusedId = null;
  document.addEventListener("htmx:beforeSwap", function () {
    var active = document.activeElement;
    focusedId = active && active !== document.body ? active.id || active.getAttribute("data-focus-id") : null;
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!focusedId) return;
    var again = document.getElementById(focusedId) ||
      document.querySelector("[data-focus-id='" + CSS.escape(focusedId) + "']");
    // A button that became disabled (moved to the top: no more "up") hands focus to its
    // enabled neighbour.
    if (again && again.disabled) again = again.parentElement.querySelector("button:not([disabled])");
    if (again && again !== document.activeElement) again.focus();
    focusedId = null;
    focusFirstError();
  });

  // A form that comes back with errors puts the cursor on the first field to fix.
  function focusFirstError() {
    var field = document.querySelector(".has-error input, .has-error select, .has-error textarea");
    if (field && !field.contains(document.activeElement)) field.focus();
  }
  document.addEventListener("DOMContentLoaded", focusFirstError);

  // Times are shown in the viewer's time zone: tell the server which one the browser uses.
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && document.cookie.indexOf("tz=" + encodeURIComponent(zone)) === -1) {
      document.cookie = "tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; samesite=lax";
    }
  } catch (e) { /* an old browser: times stay in UTC */ }
})();
