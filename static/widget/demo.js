// The demo shop: drives window.Rapport the way a customer's site would. The chat itself is
// the widget's own launcher and panel, exactly what the script tag gives customers.
(function () {
  "use strict";

  var root = document.getElementById("demo");
  if (!root) return;
  var agent = root.getAttribute("data-agent");
  var signUrl = root.getAttribute("data-sign-url");
  var csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;

  function $(id) { return document.getElementById(id); }

  function show(result) {
    $("demo-output").textContent = JSON.stringify(result, null, 2);
    refreshVisitor();
    return result;
  }

  function refreshVisitor() {
    var contact = window.Rapport ? window.Rapport.contact : null;
    var status = $("demo-status");
    var identity = contact ? contact.identity : "anonymous";
    status.textContent = identity.replace("_", "-");
    status.className = "badge badge-" + identity;
    $("demo-contact").textContent = contact ? (contact.name || "(no name)") + " · " + contact.id : "none yet";
    $("demo-visitor").textContent = window.Rapport ? window.Rapport.visitorId : "";
  }

  function selectedUser() {
    var option = $("demo-user").selectedOptions[0];
    return { user_id: option.value, name: option.getAttribute("data-name"), email: option.getAttribute("data-email") };
  }

  function fillAttributes() {
    var user = selectedUser();
    $("demo-attributes").value = JSON.stringify({ name: user.name, email: user.email }, null, 2);
  }

  // The pretend customer backend: signs with the identity secret on the server side.
  function sign(mode) {
    var form = new FormData();
    form.append("csrfmiddlewaretoken", csrf);
    form.append("agent", agent);
    form.append("mode", mode);
    form.append("user_id", selectedUser().user_id);
    form.append("contact_attributes", $("demo-attributes").value);
    return fetch(signUrl, { method: "POST", body: form, credentials: "same-origin", headers: { "X-CSRFToken": csrf } })
      .then(function (response) { return response.json(); });
  }

  function identifyWithJwt() {
    sign("jwt").then(function (signed) {
      if (!signed.token) return show(signed);
      // user_metadata beside a token is not stored: the bot gets it as session context.
      return window.Rapport.identify({ token: signed.token, user_metadata: { page: "demo shop" } }).then(show);
    });
  }

  function identifyWithHmac() {
    var user = selectedUser();
    sign("hmac").then(function (signed) {
      if (!signed.user_hash) return show(signed);
      return window.Rapport.identify({
        user_id: signed.user_id,
        user_hash: signed.user_hash,
        user_metadata: { name: user.name, email: user.email },
      }).then(show);
    });
  }

  function identifySelfReported() {
    var data = {};
    ["email", "name", "phone"].forEach(function (field) {
      var value = $("demo-" + field).value.trim();
      if (value) data[field] = value;
    });
    window.Rapport.identify(data).then(show);
  }

  // What the shop's server would put on the script tag for a guest it knows from a form:
  // the page reloads with data-user-* set, and the widget identifies them on load.
  function reloadWithScriptTagUser() {
    var here = new URL(window.location.href);
    ["email", "name", "phone"].forEach(function (field) {
      var value = $("demo-" + field).value.trim();
      if (value) here.searchParams.set("user_" + field, value);
      else here.searchParams.delete("user_" + field);
    });
    window.location.assign(here.toString());
  }

  // The widget's tag as a customer would write it (the nonce is this page's own business).
  function showScriptTag() {
    var tag = document.querySelector("script[data-agent][src*='rapport.js']");
    if (!tag) return;
    var parts = ["<script src=\"" + tag.getAttribute("src") + "\""];
    [
      "data-agent", "data-help-center", "data-position", "data-color", "data-locale",
      "data-user-email", "data-user-name", "data-user-phone",
    ].forEach(function (name) {
      if (tag.hasAttribute(name)) parts.push(name + "=\"" + tag.getAttribute(name) + "\"");
    });
    $("demo-tag").textContent = parts.join("\n        ") + " async></script>";
  }

  function handoff() {
    var here = window.location.origin + window.location.pathname + "?agent=" + encodeURIComponent(agent);
    window.Rapport.linkWithIdentity(here).then(function (url) {
      var link = $("demo-handoff-link");
      link.href = url;
      link.hidden = false;
      $("demo-output").textContent = url === here ? "Only a verified visitor gets an identity link." : url;
    });
  }

  // Signing out of the shop: the widget forgets the visitor and empties its panel.
  function reset() {
    window.Rapport.reset().then(show);
  }

  function start() {
    fillAttributes();
    $("demo-user").addEventListener("change", fillAttributes);
    $("demo-jwt").addEventListener("click", identifyWithJwt);
    $("demo-hmac").addEventListener("click", identifyWithHmac);
    $("demo-self").addEventListener("click", identifySelfReported);
    $("demo-self-tag").addEventListener("click", reloadWithScriptTagUser);
    $("demo-handoff").addEventListener("click", handoff);
    $("demo-reset").addEventListener("click", reset);
    window.addEventListener("rapport:identified", refreshVisitor);
    showScriptTag();
    var params = new URLSearchParams(window.location.search);
    $("demo-arrived").hidden = !params.get("article");
    ["email", "name", "phone"].forEach(function (field) {
      var value = params.get("user_" + field);
      if (value) $("demo-" + field).value = value;
    });
    window.Rapport.ready.then(function () {
      refreshVisitor();
      root.setAttribute("data-ready", "true");
    });
  }

  // The widget loads async: it may be ready before or after this script.
  if (window.Rapport) start();
  else window.addEventListener("rapportLoaded", start);
})();
