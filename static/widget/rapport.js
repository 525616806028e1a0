/*
 * Rapport widget script: tells Rapport who the visitor is and talks to the help desk.
 *
 *   <script src="https://YOUR-RAPPORT/static/widget/rapport.js" data-agent="ag_…" async></script>
 *
 * Optional attributes on the same tag:
 *
 *   data-help-center="help.example.com docs.example.com"
 *       Links (<a href>) to these hosts carry a verified visitor's identity: when such a visitor
 *       clicks one, the widget adds a single-use ?rapport_identity=… token to it, and the widget
 *       on the help center identifies the visitor with it. Hosts are separated by spaces and
 *       matched exactly, ignoring case (help.example.com does not cover www.help.example.com;
 *       list each host); "host:port" matches that port only. Links added later count too.
 *       Anonymous and self-reported visitors' links, and links elsewhere, are left as they are.
 *       If the token does not come within 1.5 s the link opens without it. Ctrl/⌘/Shift-click
 *       and target="_blank" open the carrying link in a new tab; other targets, middle clicks
 *       and download links are left to the browser, as they are.
 *   data-user-email="…" data-user-name="…" data-user-phone="…"
 *       Who the visitor says they are (say, from your sign-up form), sent on load as a
 *       self-reported identify, like Rapport.identify({ email, name, phone }). Values are
 *       trimmed and empty ones ignored. It is sent before anything your page calls, so a
 *       signed identify of yours always comes last and wins; and a visitor this browser has
 *       already verified stays verified (unsigned data never changes a verified contact).
 *
 * Once loaded it defines window.Rapport and fires a `rapportLoaded` event on window:
 *
 *   Rapport.identify({ token })                                 signed JWT (best)
 *   Rapport.identify({ user_id, user_hash, user_metadata })     HMAC of user_id
 *   Rapport.identify({ email, name, phone, custom_data })       self-reported
 *   Rapport.startConversation(message)  Rapport.sendMessage(conversationId, body)
 *   Rapport.getMessages(conversationId, afterId)
 *   Rapport.linkWithIdentity(url)   a help-center link that keeps a verified visitor known
 *                                   (resolves to the URL with the token; data-help-center does
 *                                   this for you on click)
 *   Rapport.ready                   resolves once the load-time identifies (a help-center
 *                                   token in the address, data-user-*) are done
 *   Rapport.reset()                 forget this visitor (call it when your user signs out)
 *
 * Every call returns a Promise that always resolves (it never rejects and never throws into
 * the host page): to the server's JSON plus `ok: true`, or to
 * `{ ok: false, status, error: { code, message, fields } }`.
 */
(function (window, document) {
  "use strict";

  if (window.Rapport && window.Rapport.version) {
    return; // the script tag was included twice
  }

  var VERSION = "1.1";
  var HANDOFF_PARAM = "rapport_identity";
  // How long a help-center click waits for its token before the link opens without one.
  var HANDOFF_WAIT_MS = 1500;

  var script = document.currentScript || document.querySelector("script[data-agent][src*='rapport.js']");
  var agentId = (script && script.getAttribute("data-agent")) || "";
  var apiBase = (script && script.getAttribute("data-api")) || originOf(script && script.src) || window.location.origin;
  var storageKey = "rapport:" + agentId;
  var helpCenterHosts = parseHosts(script && script.getAttribute("data-help-center"));

  // "help.example.com Docs.Example.com:8443" -> [{ hostname, port }]; a port only when given.
  function parseHosts(value) {
    var hosts = [];
    String(value || "").split(/[\s,]+/).forEach(function (entry) {
      if (!entry) return;
      try {
        var url = new URL(entry.indexOf("://") === -1 ? "http://" + entry : entry);
        hosts.push({ hostname: url.hostname, port: url.port });
      } catch (e) {
        if (window.console && window.console.warn) {
          window.console.warn("Rapport: data-help-center: " + entry + " is not a host name.");
        }
      }
    });
    return hosts;
  }

  // The visitor's self-reported details from data-user-*: trimmed, empty ones left out.
  function scriptTagUser() {
    var user = {};
    ["email", "name", "phone"].forEach(function (field) {
      var value = script && script.getAttribute("data-user-" + field);
      value = value == null ? "" : String(value).trim();
      if (value) user[field] = value;
    });
    return user;
  }

  function originOf(src) {
    try {
      return src ? new URL(src, window.location.href).origin : "";
    } catch (e) {
      return "";
    }
  }

  // --- State kept across page loads: the visitor id and the session token ---------------------

  var memoryState = null; // used when localStorage is unavailable (privacy modes, sandboxed frames)

  function loadState() {
    try {
      var raw = window.localStorage.getItem(storageKey);
      var parsed = raw ? JSON.parse(raw) : null;
      if (parsed && typeof parsed === "object") return parsed;
    } catch (e) {
      if (memoryState) return memoryState;
    }
    return {};
  }

  function saveState() {
    memoryState = state;
    try {
      window.localStorage.setItem(storageKey, JSON.stringify(state));
    } catch (e) {
      /* memory only */
    }
  }

  function randomId() {
    var cryptoApi = window.crypto || window.msCrypto;
    if (cryptoApi && typeof cryptoApi.randomUUID === "function") return cryptoApi.randomUUID();
    var bytes = new Uint8Array(16);
    if (cryptoApi && cryptoApi.getRandomValues) {
      cryptoApi.getRandomValues(bytes);
    } else {
      for (var i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
    }
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  var state = loadState();
  if (typeof state.visitorId !== "string" || !state.visitorId) {
    state = { visitorId: randomId() };
    saveState();
  }
  var sessionContext = null;

  // --- HTTP -----------------------------------------------------------------------------------

  function failure(code, message, status) {
    return { ok: false, status: status || 0, error: { code: code, message: message, fields: {} } };
  }

  function request(method, path, body) {
    if (!agentId) {
      return Promise.resolve(failure("missing_agent", "The Rapport script tag needs data-agent=\"ag_…\"."));
    }
    var headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    // The session token proves this browser is the visitor it says it is.
    if (state.sessionToken) headers.Authorization = "Bearer " + state.sessionToken;
    var url = apiBase + "/widget/v1/" + encodeURIComponent(agentId) + path;
    return window
      .fetch(url, {
        method: method,
        headers: headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        mode: "cors",
        credentials: "omit",
      })
      .then(
        function (response) {
          return response
            .json()
            .catch(function () { return null; })
            .then(function (data) {
              if (response.ok) return Object.assign({ ok: true, status: response.status }, data || {});
              var error = data && data.error ? data.error : {
                code: "http_" + response.status,
                message: "Rapport answered " + response.status + ".",
                fields: {},
              };
              return { ok: false, status: response.status, error: error };
            });
        },
        function (err) {
          return failure("network_error", "Rapport could not be reached (" + (err && err.message) + ").");
        }
      );
  }

  // Calls run one after another, so an identify finishes before a conversation starts and
  // the session token every call uses is always the latest.
  var queue = Promise.resolve();

  function enqueue(task) {
    var run = queue.then(function () {
      try {
        return Promise.resolve(task()).catch(unexpected);
      } catch (err) {
        return unexpected(err);
      }
    });
    queue = run.then(function () {}, function () {});
    return run;
  }

  function unexpected(err) {
    return failure("client_error", "Rapport widget error: " + (err && err.message ? err.message : String(err)));
  }

  function emit(name, detail) {
    try {
      window.dispatchEvent(new CustomEvent(name, { detail: detail }));
    } catch (e) {
      /* very old browsers: no events */
    }
  }

  function report(result) {
    if (!result.ok) {
      emit("rapport:error", result.error);
      if (window.console && window.console.warn) {
        window.console.warn("Rapport: " + result.error.code + ": " + result.error.message);
      }
    }
    return result;
  }

  // --- Identify -------------------------------------------------------------------------------

  function doIdentify(params) {
    var body = {};
    Object.keys(params).forEach(function (key) { body[key] = params[key]; });
    body.visitor_id = state.visitorId;
    return request("POST", "/identify", body).then(function (result) {
      if (result.ok) {
        state.sessionToken = result.session_token;
        state.contact = result.contact || null;
        saveState();
        sessionContext = result.session_context || null;
        emit("rapport:identified", { contact: state.contact, ignoredKeys: result.ignored_keys || [] });
      }
      return report(result);
    });
  }

  var pendingIdentifies = 0; // queued or running: a help-center click waits for them

  function identify(params) {
    if (params === undefined || params === null) params = {};
    if (typeof params !== "object" || Array.isArray(params)) {
      return Promise.resolve(report(failure("invalid_arguments", "Rapport.identify takes an object, e.g. { token: \"…\" }.")));
    }
    pendingIdentifies += 1;
    return enqueue(function () { return doIdentify(params); }).then(function (result) {
      pendingIdentifies -= 1;
      return result;
    });
  }

  function ensureSession() {
    if (state.sessionToken) return Promise.resolve({ ok: true });
    return doIdentify({});
  }

  // A call with the session token; when the token has expired, identify again and retry once.
  function withSession(method, path, body) {
    return ensureSession().then(function (session) {
      if (!session.ok) return session;
      return request(method, path, body).then(function (result) {
        if (result.status !== 401) return result;
        state.sessionToken = null;
        return doIdentify({}).then(function (again) {
          return again.ok ? request(method, path, body) : again;
        });
      });
    });
  }

  // --- Help desk (conversation endpoints of the widget contract) -------------------------------

  function startConversation(message) {
    var body = message === undefined || message === null ? {} : { message: String(message) };
    return enqueue(function () { return withSession("POST", "/conversations", body).then(report); });
  }

  function conversationPath(conversationId) {
    return "/conversations/" + encodeURIComponent(String(conversationId)) + "/messages";
  }

  function sendMessage(conversationId, body) {
    if (!conversationId) return Promise.resolve(report(failure("invalid_arguments", "sendMessage needs a conversation id.")));
    return enqueue(function () {
      return withSession("POST", conversationPath(conversationId), { body: String(body == null ? "" : body) }).then(report);
    });
  }

  function getMessages(conversationId, afterId) {
    if (!conversationId) return Promise.resolve(report(failure("invalid_arguments", "getMessages needs a conversation id.")));
    var query = afterId ? "?after=" + encodeURIComponent(String(afterId)) : "";
    return enqueue(function () { return withSession("GET", conversationPath(conversationId) + query).then(report); });
  }

  // --- Help-center hand-off -------------------------------------------------------------------

  function isVerified() {
    return !!(state.contact && state.contact.identity === "verified");
  }

  function identityToken() {
    return enqueue(function () {
      if (!state.sessionToken) return report(failure("not_verified", "Identify the visitor first."));
      return request("GET", "/identity-token").then(report);
    });
  }

  function withToken(url, result) {
    var target;
    try {
      target = new URL(String(url), window.location.href);
    } catch (e) {
      return String(url);
    }
    if (result.ok) target.searchParams.set(result.param || HANDOFF_PARAM, result.token);
    return target.toString();
  }

  function linkWithIdentity(url) {
    return identityToken().then(function (result) { return withToken(url, result); });
  }

  // --- Help-center links (data-help-center) ---------------------------------------------------

  function isHelpCenter(url) {
    if (url.protocol !== "https:" && url.protocol !== "http:") return false;
    for (var i = 0; i < helpCenterHosts.length; i++) {
      var host = helpCenterHosts[i];
      if (url.hostname === host.hostname && (!host.port || url.port === host.port)) return true;
    }
    return false;
  }

  function clickedLink(event) {
    var path = typeof event.composedPath === "function" ? event.composedPath() : [];
    for (var i = 0; i < path.length; i++) {
      var node = path[i];
      if (node && node.tagName === "A" && typeof node.href === "string" && node.hasAttribute("href")) return node;
    }
    var start = event.target && event.target.closest ? event.target : null;
    var link = start ? start.closest("a[href]") : null;
    return link && typeof link.href === "string" ? link : null;
  }

  // The link with a fresh token, or as it is when the visitor turns out not to be verified,
  // the token is refused, or it takes longer than HANDOFF_WAIT_MS. Queued behind identifies
  // in flight, so a click right after sign-in carries the new identity. Quiet: a visitor who
  // is not verified is the usual case, not an error to report.
  function helpCenterHref(url) {
    var token = enqueue(function () {
      if (!state.sessionToken || !isVerified()) return failure("not_verified", "Not verified.");
      return request("GET", "/identity-token");
    });
    var timeout = new Promise(function (resolve) {
      window.setTimeout(function () { resolve(failure("timeout", "No token in time.")); }, HANDOFF_WAIT_MS);
    });
    return Promise.race([token, timeout]).then(function (result) { return withToken(url, result); });
  }

  function onLinkClick(event) {
    if (event.defaultPrevented || event.button !== 0 || event.altKey) return;
    var link = clickedLink(event);
    if (!link || link.hasAttribute("download")) return;
    var url;
    try {
      url = new URL(link.href);
    } catch (e) {
      return;
    }
    if (!isHelpCenter(url)) return;
    // Only a verified visitor carries an identity; an identify in flight may make one.
    if (!isVerified() && pendingIdentifies === 0) return;
    var target = (link.getAttribute("target") || "").toLowerCase();
    var newTab = event.ctrlKey || event.metaKey || event.shiftKey || target === "_blank";
    if (!newTab && target && target !== "_self") return; // a named frame, _top, _parent
    var opened = null;
    if (newTab) {
      // Opened now, while the click still counts as the user's: a tab opened after waiting
      // for the token could be stopped by a pop-up blocker. Blocked anyway: the browser
      // follows the link itself, without the token.
      opened = window.open("", "_blank");
      if (!opened) return;
      try {
        opened.opener = null; // the help center gets no handle on this page
      } catch (e) {
        /* already detached */
      }
    }
    event.preventDefault();
    helpCenterHref(url.toString()).then(function (href) {
      if (opened) opened.location.replace(href);
      else window.location.assign(href);
    });
  }

  if (helpCenterHosts.length) document.addEventListener("click", onLinkClick, false);

  function restoreFromLink() {
    var token = null;
    try {
      var here = new URL(window.location.href);
      token = here.searchParams.get(HANDOFF_PARAM);
      if (token) {
        // Out of the address bar and history at once: the token is single-use anyway.
        here.searchParams.delete(HANDOFF_PARAM);
        window.history.replaceState(window.history.state, "", here.pathname + here.search + here.hash);
      }
    } catch (e) {
      token = null;
    }
    if (!token) return Promise.resolve(null);
    return identify({ identity_token: token });
  }

  // --- Sign-out ---------------------------------------------------------------------------------

  function reset() {
    return enqueue(function () {
      state = { visitorId: randomId() };
      sessionContext = null;
      saveState();
      emit("rapport:reset", {});
      return { ok: true };
    });
  }

  // Load-time identifies are queued now, before the page can call anything: a signed
  // identify the page makes on rapportLoaded runs after them and has the last word.
  var user = scriptTagUser();
  var ready = Promise.all([
    restoreFromLink(),
    Object.keys(user).length ? identify(user) : Promise.resolve(null),
  ]);

  window.Rapport = Object.freeze({
    version: VERSION,
    agent: agentId,
    identify: identify,
    startConversation: startConversation,
    sendMessage: sendMessage,
    getMessages: getMessages,
    identityToken: identityToken,
    linkWithIdentity: linkWithIdentity,
    reset: reset,
    ready: ready.then(function () { return window.Rapport; }),
    get visitorId() { return state.visitorId; },
    get contact() { return state.contact || null; },
    get sessionContext() { return sessionContext; },
  });

  emit("rapportLoaded", { agent: agentId, visitorId: state.visitorId });
})(window, document);
