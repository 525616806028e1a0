/*
 * Rapport widget script: tells Rapport who the visitor is and talks to the help desk.
 *
 *   <script src="https://YOUR-RAPPORT/static/widget/rapport.js" data-agent="ag_…" async></script>
 *
 * Once loaded it defines window.Rapport and fires a `rapportLoaded` event on window:
 *
 *   Rapport.identify({ token })                                 signed JWT (best)
 *   Rapport.identify({ user_id, user_hash, user_metadata })     HMAC of user_id
 *   Rapport.identify({ email, name, phone, custom_data })       self-reported
 *   Rapport.startConversation(message)  Rapport.sendMessage(conversationId, body)
 *   Rapport.getMessages(conversationId, afterId)
 *   Rapport.linkWithIdentity(url)   a help-center link that keeps a verified visitor known
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

  var VERSION = "1.0";
  var HANDOFF_PARAM = "rapport_identity";

  var script = document.currentScript || document.querySelector("script[data-agent][src*='rapport.js']");
  var agentId = (script && script.getAttribute("data-agent")) || "";
  var apiBase = (script && script.getAttribute("data-api")) || originOf(script && script.src) || window.location.origin;
  var storageKey = "rapport:" + agentId;

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

  function identify(params) {
    if (params === undefined || params === null) params = {};
    if (typeof params !== "object" || Array.isArray(params)) {
      return Promise.resolve(report(failure("invalid_arguments", "Rapport.identify takes an object, e.g. { token: \"…\" }.")));
    }
    return enqueue(function () { return doIdentify(params); });
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

  function identityToken() {
    return enqueue(function () {
      if (!state.sessionToken) return report(failure("not_verified", "Identify the visitor first."));
      return request("GET", "/identity-token").then(report);
    });
  }

  function linkWithIdentity(url) {
    return identityToken().then(function (result) {
      var target;
      try {
        target = new URL(String(url), window.location.href);
      } catch (e) {
        return String(url);
      }
      if (result.ok) target.searchParams.set(result.param || HANDOFF_PARAM, result.token);
      return target.toString();
    });
  }

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

  var ready = restoreFromLink();

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
